from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import ArtifactError
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.tokenizers import tiny_mfcc_tokenizer
from spokenlm.tokenize import SpeechTokenizer, build_encoder, expand
from spokenlm.tokenize.kmeans import KMeans


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mfcc_tokenizer(tmp_path_factory.mktemp("tok"), n_units=8)


def test_train_writes_artifacts(trained: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    assert config["encoder"]["name"] == "mfcc"
    assert (config["n_units"], config["dim"], config["frame_rate"]) == (8, 39, 50.0)
    assert (trained / "centroids.safetensors").exists()
    stats = json.loads((trained / "kmeans_stats.json").read_text())
    assert stats["n_frames"] > 8 and stats["inertia"] > 0 and stats["n_files"] == 4


def test_round_trip_gives_identical_units(trained: Path, tmp_path: Path) -> None:
    tok = SpeechTokenizer.from_pretrained(trained, device="cpu")
    wav = random_speech_like_wav(1.3, seed=42)
    units = tok.encode(wav)
    again = SpeechTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "copy"), device="cpu")
    other = again.encode(wav)
    np.testing.assert_array_equal(units.units, other.units)
    np.testing.assert_array_equal(units.durations, other.durations)
    assert units.n_frames == tok.encoder.num_frames(len(wav)) == int(units.durations.sum())
    raw = tok.encode(wav, dedup=False)
    assert raw.durations is None and np.array_equal(expand(units.units, units.durations), raw.units)
    assert raw.units.min() >= 0 and raw.units.max() < tok.n_units


def test_encode_batch_matches_one_at_a_time(trained: Path) -> None:
    tok = SpeechTokenizer.from_pretrained(trained, device="cpu")
    wavs = [random_speech_like_wav(s, seed=i) for i, s in enumerate([0.5, 0.7, 0.5, 0.5])]
    batch = tok.encode_batch(wavs, batch_seconds=1.0)
    for wav, u in zip(wavs, batch):
        np.testing.assert_array_equal(u.units, tok.encode(wav).units)


def test_from_pretrained_errors(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a tokenizer directory"):
        SpeechTokenizer.from_pretrained(tmp_path / "nothing")
    config = json.loads((trained / "config.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="centroids file not found"):
        SpeechTokenizer.from_pretrained(bad)
    KMeans.load(trained / "centroids.safetensors").save(bad / "centroids.safetensors")
    (bad / "config.json").write_text(json.dumps({**config, "spokenlm_version": "9.0.0"}))
    with pytest.raises(ArtifactError, match="written by spokenlm 9.0.0"):
        SpeechTokenizer.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps({**config, "encoder": {"name": "cpc"}}))
    with pytest.raises(ArtifactError, match="unknown encoder 'cpc'"):
        SpeechTokenizer.from_pretrained(bad)
    (bad / "config.json").write_text(json.dumps({**config, "n_units": 9}))
    with pytest.raises(ArtifactError, match="different runs"):
        SpeechTokenizer.from_pretrained(bad)


def test_hubert_tokenizer_records_path_and_layer(hubert_dir: Path, tmp_path: Path) -> None:
    enc = build_encoder({"name": "hubert", "path": str(hubert_dir), "layer": 3})
    km = KMeans(np.random.default_rng(0).normal(size=(5, 32)).astype(np.float32))
    out = SpeechTokenizer(enc, km, device="cpu").save_pretrained(tmp_path / "t")
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"]["path"] == str(hubert_dir) and config["encoder"]["layer"] == 3
    tok = SpeechTokenizer.from_pretrained(out, device="cpu")
    assert len(tok.encoder.model.encoder.layers) == 3
    assert tok.encode(random_speech_like_wav(0.5, 1)).n_frames == 24
