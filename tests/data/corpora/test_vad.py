"""Silero VAD run streaming over blocks, speech intervals, and cutting them into segments."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from spokenlm.audio.manifest import read_manifest, skip_report_path, write_manifest
from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.data.corpora.vad import (SileroVad, VadOptions, cut_segments, segment_manifest,
                                       silero_model_path, speech_intervals)
from spokenlm.data.tts import SPEAKERS, synthesize

SR = 16_000


def _quiet(seconds: float, seed: int) -> np.ndarray:
    """Room-tone: faint noise, not digital silence."""
    return (0.002 * np.random.default_rng(seed).standard_normal(int(seconds * SR))
            ).astype(np.float32)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    """A 44.1 kHz stereo file: quiet, speech, quiet, speech, quiet; and where the speech is."""
    speech = [synthesize("the quick brown fox jumps over the lazy dog", SPEAKERS[0], pad=0.0),
              synthesize("seven big ships sailed to the island at dawn", SPEAKERS[1], pad=0.0)]
    parts, spans, t = [], [], 0.0
    for i, w in enumerate(speech):
        parts.append(_quiet(1.5 + i, seed=i))
        t += 1.5 + i
        parts += [w]
        spans.append((t, t + len(w) / SR))
        t += len(w) / SR
    parts.append(_quiet(1.5, seed=9))
    wav = np.concatenate(parts)
    path = tmp_path_factory.mktemp("vad") / "bursts.wav"
    hi = soxr.resample(wav, SR, 44_100)
    sf.write(path, np.stack([hi, hi], axis=1), 44_100, subtype="PCM_16")
    return path, spans


def test_intervals_surround_the_bursts(bursts) -> None:
    path, spans = bursts
    found = SileroVad().detect(path, block_seconds=1.3)  # many blocks, odd size
    assert len(found) == len(spans)
    for (s, e), (ref_s, ref_e) in zip(found, spans):
        assert ref_s - 0.35 <= s <= ref_s + 0.3, (found, spans)
        assert ref_e - 0.3 <= e <= ref_e + 0.35, (found, spans)


def test_streaming_equals_one_piece_and_faster_whisper(bursts) -> None:
    from faster_whisper.vad import SileroVADModel

    wav = sf.read(bursts[0], dtype="float32")[0][: 5 * SR + 123, 0]  # (T,), T % 512 != 0
    wav = soxr.resample(wav, 44_100, SR).astype(np.float32)
    vad = SileroVad()
    whole = vad.probabilities([wav])
    blocks = vad.probabilities([wav[i:i + 3001] for i in range(0, len(wav), 3001)])
    np.testing.assert_array_equal(whole, blocks)
    ref = SileroVADModel(str(silero_model_path()))(np.pad(wav, (0, 512 - len(wav) % 512)))
    np.testing.assert_allclose(whole, np.asarray(ref).reshape(-1)[: len(whole)], atol=1e-6)
    assert len(whole) == -(-len(wav) // 512)


def test_speech_intervals_hysteresis_and_padding() -> None:
    w = 512 / SR  # one window, s
    probs = np.array([0.0] * 10 + [0.9] * 20 + [0.4] * 3 + [0.9] * 5 + [0.0] * 20
                     + [0.9] * 3 + [0.0] * 10)
    got = speech_intervals(probs, VadOptions(threshold=0.5, min_speech=0.25, min_silence=0.3,
                                             pad=0.0))
    # 0.4 is between the thresholds: it does not end speech; 3 windows (96 ms) of speech are
    # shorter than min_speech and dropped
    assert got == [(pytest.approx(10 * w), pytest.approx(38 * w))]
    padded = speech_intervals(probs, VadOptions(min_speech=0.05, pad=0.1),
                              n_samples=len(probs) * 512)
    assert len(padded) == 2 and padded[0][0] == pytest.approx(10 * w - 0.1)


@pytest.mark.parametrize("intervals, expected", [
    ([(0.5, 1.5), (1.7, 3.0), (3.2, 4.0)], [(0.5, 4.0)]),             # joined, pauses kept
    ([(0.0, 3.0), (7.0, 10.0)], [(0.0, 3.0), (7.0, 10.0)]),           # a 4 s gap ends one
    ([(0.0, 1.0), (10.0, 13.0)], [(10.0, 13.0)]),                     # 1 s alone is too short
    ([(0.0, 12.0), (12.5, 22.0)], [(0.0, 12.0), (12.5, 22.0)]),       # 22 s > max
    ([(0.0, 45.0)], [(0.0, 15.0), (15.0, 30.0), (30.0, 45.0)]),       # split in equal parts
    ([(-1.0, 3.0), (2.0, 2.5), (58.0, 70.0)], [(0.0, 3.0), (58.0, 60.0)]),  # clipped, merged
])
def test_cut_segments(intervals, expected) -> None:
    got = cut_segments(intervals, min_segment=2.0, max_segment=20.0, max_gap=3.0,
                       file_duration=60.0)
    assert got == [(pytest.approx(s), pytest.approx(e)) for s, e in expected]


def test_missing_faster_whisper_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(InputError, match="pip install faster-whisper"):
        SileroVad()


def test_data_segment_cuts_a_manifest_of_recordings(bursts, tmp_path: Path) -> None:
    path, spans = bursts
    length = sf.info(path).duration
    rows = [{"id": "rec", "path": str(path), "duration": length, "sample_rate": 44_100,
             "num_channels": 2, "speaker": "s1", "text": "the whole recording"},
            {"id": "part", "path": str(path), "start": 3.0, "duration": length - 3.0,
             "sample_rate": 44_100, "num_channels": 2, "speaker": "s1"},
            {"id": "gone", "path": str(tmp_path / "gone.wav"), "duration": 1.0,
             "sample_rate": SR, "num_channels": 1}]
    manifest = write_manifest(rows, tmp_path / "long.jsonl")
    out = segment_manifest(manifest=manifest, output=tmp_path / "seg.jsonl", max_gap=1.0)
    segs = read_manifest(out)
    whole = [r for r in segs if r["recording"] == "rec"]
    assert [r["id"] for r in whole] == ["rec_0000", "rec_0001"]  # the 2.5 s pause ends one
    for r, (s, e) in zip(whole, spans):
        assert s - 0.35 <= r["start"] <= s + 0.3
        assert e - 0.3 <= r["start"] + r["duration"] <= e + 0.35
        assert r["speaker"] == "s1" and "text" not in r and r["sample_rate"] == 44_100
    # a row that is itself a segment: VAD over that part only, times still in the file
    (part,) = [r for r in segs if r["recording"] == "part"]
    assert part["start"] == pytest.approx(whole[1]["start"], abs=0.05)
    assert read_jsonl(skip_report_path(out))[0]["id"] == "gone"
    assert main(["data", "segment", str(manifest), "--output", str(tmp_path / "c.jsonl"),
                 "--min-segment", "30"]) == 1  # no segment that long: a one-line error
