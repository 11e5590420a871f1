"""The TWIST / Slam speech tokenizer: fairseq mHuBERT-25Hz + its joblib k-means (``.bin``)
-> a 25 Hz spokenlm tokenizer, checked against the reference forward of the original model."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.cluster import MiniBatchKMeans

from spokenlm.interop.checkpoint import load_fairseq_checkpoint
from spokenlm.interop.fairseq_hubert import convert_hubert
from spokenlm.interop.sklearn_kmeans import import_kmeans
from spokenlm.testing.fairseq import (CONV_LAYERS_25HZ, reference_hubert_features,
                                      tiny_fairseq_hubert)
from spokenlm.tokenize.encoders import build_encoder
from spokenlm.tokenize.tokenizer import SpeechTokenizer


@pytest.fixture(scope="module")
def mhubert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mhubert")
    ckpt = tiny_fairseq_hubert(root / "mhubert_base_25hz.pt", seed=3, layers=3,
                               conv_layers=CONV_LAYERS_25HZ, label_rate=25.0)
    return ckpt, convert_hubert(checkpoint=ckpt, output=root / "hf")


@pytest.mark.parametrize("layer", [1, 3])
def test_converted_25hz_model_matches_reference_at_any_layer(mhubert: tuple[Path, Path],
                                                             layer: int) -> None:
    ckpt, hf = mhubert
    config = json.loads((hf / "config.json").read_text())
    assert config["conv_stride"] == [5, 2, 2, 2, 2, 2, 2, 2]
    encoder = build_encoder({"name": "hubert", "path": str(hf), "layer": layer})
    assert (encoder.framing.hop_length, encoder.frame_rate) == (640, 25.0)
    fairseq = load_fairseq_checkpoint(ckpt)
    wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1))
    ref = reference_hubert_features(fairseq["model"], fairseq["cfg"]["model"], wav, layer)
    with torch.no_grad():
        ours = encoder(wav)
    assert ours.shape == ref.shape and ours.shape[1] == encoder.num_frames(16000) == 24
    assert (ours - ref).abs().max().item() < 1e-4


def test_kmeans_bin_imports_as_a_25hz_tokenizer(mhubert: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    ckpt, hf = mhubert
    fairseq = load_fairseq_checkpoint(ckpt)
    wavs = [torch.randn(1, 8000 + 1600 * i, generator=torch.Generator().manual_seed(i))
            for i in range(6)]
    feats = [reference_hubert_features(fairseq["model"], fairseq["cfg"]["model"], w, 3)[0]
             .numpy() for w in wavs]
    km = MiniBatchKMeans(n_clusters=8, n_init=3, random_state=0, batch_size=64)
    km.fit(np.concatenate(feats))
    joblib.dump(km, tmp_path / "mhubert_base_25hz_L3_km8.bin")  # as TWIST ships it (L11_km500)
    tok_dir = import_kmeans(km_path=tmp_path / "mhubert_base_25hz_L3_km8.bin",
                            output=tmp_path / "tok", encoder="hubert", encoder_path=hf, layer=3)
    config = json.loads((tok_dir / "config.json").read_text())
    assert (config["frame_rate"], config["hop_length"]) == (25.0, 640)
    tok = SpeechTokenizer.from_pretrained(tok_dir, device="cpu")
    for wav, f in zip(wavs, feats):
        units = tok.encode(wav[0].numpy(), dedup=False)
        np.testing.assert_array_equal(units.units, km.predict(f))
