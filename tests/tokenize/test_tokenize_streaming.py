"""Long audio tokenizes chunk by chunk in bounded memory: the spectral encoders give the
units of the one-piece path exactly (several chunk sizes, chunk and block boundaries at odd
sample positions, MFCC deltas and two-pass CMN), HF encoders approximately (measured on
tiny models), and ``tokenize`` streams rows longer than ``STREAM_ABOVE_S`` from disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.audio import chunking
from spokenlm.audio.chunking import AudioStream, sample_chunks
from spokenlm.audio.framing import Framing
from spokenlm.audio.load import AudioError, load_row, save_wav
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.tokenize import tokenizer as tokenizer_module
from spokenlm.tokenize.encoders import build_encoder
from spokenlm.tokenize.kmeans import KMeans
from spokenlm.tokenize.run import tokenize_manifest
from spokenlm.tokenize.tokenizer import SpeechTokenizer

SPECTRAL = [{"name": "mfcc"}, {"name": "mfcc", "cmn": True}, {"name": "logmel"},
            {"name": "mfcc", "frame_rate": 25.0}, {"name": "mfcc", "deltas": False}]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blocks(wav: np.ndarray, size: int):
    """A re-callable source of ``wav`` in blocks of ``size`` samples."""
    return lambda: (wav[i:i + size] for i in range(0, len(wav), size))


def _tokenizer(config: dict, wav: np.ndarray, k: int = 16) -> SpeechTokenizer:
    encoder = build_encoder(config)
    with torch.no_grad():
        feats = encoder(torch.from_numpy(wav)[None])[0].numpy()
    return SpeechTokenizer(encoder, KMeans.fit(feats, k, seed=0), device="cpu")


def _long_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Cheap non-stationary audio of any length: gliding tones, a syllable-rate envelope
    and noise (not periodic, so every chunk differs)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f = 150 + 60 * np.sin(2 * np.pi * 0.13 * t) + 40 * np.sin(2 * np.pi * 0.71 * t)
    phase = 2 * np.pi * np.cumsum(f) / 16000
    wav = sum(np.sin(h * phase) / h for h in (1, 2, 3, 5, 8))
    wav = wav * (0.5 + 0.5 * np.sin(2 * np.pi * 4.3 * t)) + 0.05 * rng.standard_normal(len(t))
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


@pytest.mark.parametrize("n_samples", [400, 401, 719, 720, 721, 16000, 16_321])
@pytest.mark.parametrize("block", [1, 333, 100_000])
def test_sample_chunks_keep_every_frame_once(n_samples: int, block: int) -> None:
    framing = Framing(320, 400)
    wav = np.arange(n_samples, dtype=np.float32)
    kept, frame = 0, 0
    for samples, skip, keep in sample_chunks(_blocks(wav, block)(), framing, 7, 3):
        first = samples[0] / 320  # chunks start on a frame boundary of the whole
        assert first == int(first) and framing.num_frames(len(samples)) >= skip + keep
        assert int(first) + skip == frame  # the kept frames follow on
        assert skip <= 3 and (skip == 3 or int(first) == 0)
        frame += keep
        kept += keep
    assert kept == framing.num_frames(n_samples)


@pytest.mark.parametrize("config", SPECTRAL, ids=lambda c: "-".join(map(str, c.values())))
def test_spectral_encoders_stream_exactly(config: dict) -> None:
    wav = random_speech_like_wav(5.0, seed=1)[:-123]  # ends mid-frame
    tok = _tokenizer(config, wav)
    whole_feats = tok.features(wav)
    whole = tok.encode(wav, dedup=False).units
    assert tok.encoder.chunking.exact
    for chunk_s, block in [(0.02, 777), (0.33, 16_000), (1.0, 5), (2.77, 50_001), (99.0, 10**6)]:
        parts = list(tok.extractor.features_stream(_blocks(wav, block), chunk_seconds=chunk_s))
        feats = np.concatenate(parts)
        assert feats.shape == whole_feats.shape
        np.testing.assert_allclose(feats, whole_feats, atol=1e-4, rtol=1e-5)
        units = tok.encode_stream(_blocks(wav, block), dedup=False, chunk_seconds=chunk_s)
        np.testing.assert_array_equal(units.units, whole)  # the same units, frame for frame
    dedup = tok.encode_stream(_blocks(wav, 4000), chunk_seconds=0.5)
    ref = tok.encode(wav)
    np.testing.assert_array_equal(dedup.units, ref.units)
    np.testing.assert_array_equal(dedup.durations, ref.durations)
    assert dedup.n_frames == ref.n_frames


def test_too_little_context_would_change_mfcc_deltas() -> None:
    """The declared context is needed: with none, frames next to chunk edges differ."""
    wav = random_speech_like_wav(3.0, seed=2)
    tok = _tokenizer({"name": "mfcc"}, wav)
    assert tok.encoder.chunking.context_frames == 4  # delta-deltas: 2 + 2 frames each side
    whole = tok.features(wav)
    bare = np.concatenate(list(tok.extractor.features_stream(_blocks(wav, 8000),
                                                             chunk_seconds=0.4,
                                                             context_frames=0)))
    assert np.abs(bare - whole).max() > 1e-2


def test_three_minutes_with_small_chunks_give_the_one_piece_units() -> None:
    wav = _long_signal(180.0)
    tok = _tokenizer({"name": "mfcc"}, wav[:16000 * 20], k=32)
    whole = tok.encode(wav, dedup=False).units
    units = tok.encode_stream(_blocks(wav, 48_017), dedup=False, chunk_seconds=1.37)
    assert len(whole) == 8999
    np.testing.assert_array_equal(units.units, whole)


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2"])
def test_hf_encoders_stream_approximately(kind: str, hubert_dir: Path,
                                          wav2vec2_dir: Path) -> None:
    """Self-attention sees only its chunk (and HuBERT Base's group norm over time takes
    its statistics per chunk), so units agree only approximately. Measured on these tiny
    random models (24 s, 8 s chunks with 2 s of context): HuBERT 94 % of frames, the
    wav2vec 2.0 Large layout (layer-norm convs) 100 %."""
    path = hubert_dir if kind == "hubert" else wav2vec2_dir
    wav = np.concatenate([random_speech_like_wav(4.0, seed=s) for s in range(6)])
    tok = _tokenizer({"name": kind, "path": str(path), "layer": 4}, wav, k=20)
    assert not tok.encoder.chunking.exact
    assert tok.encoder.chunking.context_frames == 250  # 5 s each side by default
    whole = tok.encode(wav, dedup=False).units
    feats = list(tok.extractor.features_stream(_blocks(wav, 30_000), chunk_seconds=8.0,
                                               context_frames=100))
    units = np.concatenate([tok.kmeans.assign(f) for f in feats])
    assert units.shape == whole.shape
    assert (units == whole).mean() >= (0.9 if kind == "hubert" else 0.99)


def test_encode_row_streams_long_rows_from_disk(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    wav = random_speech_like_wav(6.0, seed=3)
    path = save_wav(tmp_path / "long.wav", wav)
    tok = _tokenizer({"name": "mfcc", "cmn": True}, wav)
    row = {"id": "long", "path": str(path)}
    seg = {"id": "seg", "path": str(path), "start": 1.013, "duration": 3.5}
    whole, whole_seg = tok.encode(load_row(row)), tok.encode(load_row(seg))
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    monkeypatch.setattr(tokenizer_module, "load_row", _refuse)  # long rows are never loaded
    units, n = tok.encode_row(row)
    assert n == len(load_row(row))
    np.testing.assert_array_equal(units.units, whole.units)
    np.testing.assert_array_equal(units.durations, whole.durations)
    units, _ = tok.encode_row(seg)  # a segment of the file: only that segment is read
    np.testing.assert_array_equal(units.units, whole_seg.units)


def test_audio_stream_checks_like_load_row(tmp_path: Path) -> None:
    silent = save_wav(tmp_path / "silent.wav", np.zeros(32_000, np.float32))
    with pytest.raises(AudioError, match="silent"):
        list(AudioStream(silent, block_seconds=0.5))
    short = save_wav(tmp_path / "short.wav", 0.1 * np.ones(800, np.float32))
    with pytest.raises(AudioError, match="too short"):
        list(AudioStream(short))
    ok = save_wav(tmp_path / "ok.wav", random_speech_like_wav(1.3))
    stream = AudioStream(ok, block_seconds=0.25)
    np.testing.assert_array_equal(np.concatenate(list(stream)), load_row({"path": str(ok)}))
    assert stream.num_samples == stream.expected_samples() == int(1.3 * 16000)


def test_tokenize_command_streams_long_rows(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a manifest mixing short files, a long file and a broken one gives the
    rows of the one-piece run, in manifest order."""
    wavs = [random_speech_like_wav(s, seed=i) for i, s in enumerate((0.7, 5.0, 1.1))]
    paths = [save_wav(tmp_path / "wavs" / f"u{i}.wav", w) for i, w in enumerate(wavs)]
    (tmp_path / "wavs" / "bad.wav").write_bytes(b"RIFF not audio")
    rows = [{"id": f"u{i}", "path": str(p)} for i, p in enumerate(paths)]
    rows.insert(2, {"id": "bad", "path": str(tmp_path / "wavs" / "bad.wav")})
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    tok_dir = _tokenizer({"name": "mfcc"}, wavs[1]).save_pretrained(tmp_path / "tok")
    one_piece = tokenize_manifest(manifest=manifest, tokenizer=tok_dir,
                                  output=tmp_path / "a" / "units.jsonl", pack=False)
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    streamed = tokenize_manifest(manifest=manifest, tokenizer=tok_dir,
                                 output=tmp_path / "b" / "units.jsonl", pack=False)
    a, b = read_jsonl(one_piece), read_jsonl(streamed)
    assert [r["id"] for r in b] == ["u0", "u1", "u2"]
    assert [r["units"] for r in a] == [r["units"] for r in b]
    assert [r["durations"] for r in a] == [r["durations"] for r in b]
    assert read_jsonl(tmp_path / "b" / "units.skipped.jsonl")[0]["id"] == "bad"


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("a long row was loaded whole")
