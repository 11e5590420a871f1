"""Loading, resampling and validation of audio files."""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio import load
from spokenlm.audio.constants import SAMPLE_RATE
from spokenlm.audio.load import (AudioError, audio_info, check_header, load_audio, printable,
                                 resample, save_wav, validate_audio)
from spokenlm.common.errors import InputError


def _tone(seconds: float, sr: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_resample_length():
    wav = _tone(1.0, 44_100)
    out = resample(wav, 44_100, SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(out.shape[0] - SAMPLE_RATE) <= 1


def test_stereo_44k_is_mixed_to_mono_and_resampled(tmp_path):
    left = _tone(0.5, 44_100)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 44_100)
    wav = load_audio(path)
    assert wav.ndim == 1 and abs(wav.shape[0] - SAMPLE_RATE // 2) <= 1
    assert 0.2 < np.abs(wav).max() < 0.3  # the mean of a 0.5 tone and silence


def test_save_then_load_roundtrip(tmp_path):
    wav = _tone(0.3, SAMPLE_RATE)
    path = save_wav(tmp_path / "a.wav", wav)
    assert sf.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(load_audio(path), wav, atol=1e-3)


def test_nan_is_rejected_and_error_names_file(tmp_path):
    wav = _tone(0.3, SAMPLE_RATE)
    wav[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wav, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        load_audio(path)


@pytest.mark.parametrize("name, content, reason", [
    ("empty.wav", b"", "empty file"),
    ("junk.wav", b"\x00\x01not audio at all" * 64, "not readable as audio"),
])
def test_bad_files_name_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError, match=f"{name}: {reason}"):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")


def test_silent_and_short_are_rejected():
    with pytest.raises(AudioError, match="silent"):
        validate_audio(np.zeros(SAMPLE_RATE, np.float32), "quiet.wav")
    with pytest.raises(AudioError, match="too short"):
        validate_audio(_tone(0.01, SAMPLE_RATE), "short.wav")


# --- hostile headers: refused from the header, before any sample is decoded ----------------

def _wav(sample_rate: int, payload: bytes, *, channels: int = 1, bits: int = 16,
         declared: int | None = None) -> bytes:
    """A RIFF/WAVE file (PCM) whose fmt and data chunks claim what the caller says."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, bits)
    declared = len(payload) if declared is None else declared
    riff = 4 + 8 + len(fmt) + 8 + min(declared, 0xFFFFFFFF - 36)
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt))
            + fmt + b"data" + struct.pack("<I", declared) + payload)


_PAYLOAD = (np.random.default_rng(0).standard_normal(32 * 1024) * 3000).astype("<i2").tobytes()


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches the decoder."""
    def refuse(*args, **kwargs):
        raise AssertionError("decoded a file whose header should have been refused")
    monkeypatch.setattr(load, "decode_audio", refuse)


def test_header_claiming_1hz_is_refused_before_decoding(tmp_path, no_decoding):
    path = tmp_path / "1hz.wav"
    path.write_bytes(_wav(1, _PAYLOAD))  # 64 KB "at 1 Hz": 9.1 hours, 2 GB once resampled
    assert sf.info(path).duration > 9 * 3600
    with pytest.raises(AudioError, match="1hz.wav: header claims a sample rate of 1 Hz"):
        load_audio(path)
    with pytest.raises(AudioError, match="sample rate of 1 Hz"):
        audio_info(path, max_duration=None)  # the rate check does not depend on the limit


def test_header_claiming_1000_channels_is_refused(tmp_path, no_decoding):
    path = tmp_path / "many.wav"
    path.write_bytes(_wav(16_000, _PAYLOAD, channels=1000))
    with pytest.raises(AudioError, match="many.wav: header claims 1000 channels"):
        load_audio(path)


def test_data_chunk_claiming_gigabytes_reads_only_what_the_file_holds(tmp_path):
    """libsndfile clamps a data chunk that claims more than the file (as truncated or
    streamed WAVs do), so the header's 4 GB never reaches an allocation."""
    path = tmp_path / "huge.wav"
    path.write_bytes(_wav(16_000, _PAYLOAD, declared=0xFFFFFF00))
    assert path.stat().st_size < 70_000
    tracemalloc.start()
    wav = load_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert wav.shape == (len(_PAYLOAD) // 2,)
    assert peak < 4 * 2**20


def _info(**kw) -> SimpleNamespace:
    return SimpleNamespace(**{"samplerate": 16_000, "channels": 1, "frames": 16_000,
                              "format": "WAV", "subtype": "PCM_16", **kw})


def test_check_header_frames_beyond_file_size():
    """Defence for readers that trust the header's frame count (libsndfile clamps)."""
    with pytest.raises(AudioError, match=r"x.wav: header claims 1000000 frames \(2000000 bytes "
                                         r"of PCM_16\) but the file has 65580 bytes"):
        check_header(_info(frames=1_000_000), "x.wav", file_size=65_580)
    check_header(_info(frames=32_768), "x.wav", file_size=65_580)
    # compressed: frames are not bounded by the file size, only by the duration limit
    check_header(_info(frames=1_000_000, format="FLAC"), "x.flac", file_size=65_580)
    with pytest.raises(AudioError, match=r"x.flac: header says 9000.0 s long, over the 7200 s"):
        check_header(_info(frames=9000 * 16_000, format="FLAC"), "x.flac", file_size=65_580)
    with pytest.raises(AudioError, match="sample rate of 500000 Hz"):
        check_header(_info(samplerate=500_000), "x.wav")


def test_max_duration_is_checked_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(0.5, SAMPLE_RATE), SAMPLE_RATE)
    assert load_audio(path, max_duration=None).shape == (SAMPLE_RATE // 2,)
    monkeypatch.setattr(load, "decode_audio", None)  # not reached when refused
    with pytest.raises(AudioError, match=r"long.wav: header says 0.5 s long, over the 0.2 s "
                                         r"limit; split it"):
        load_audio(path, max_duration=0.2)


def test_block_decoding_matches_whole_file_decoding(tmp_path, monkeypatch):
    """Stereo 44.1 kHz decoded 1000 frames at a time gives the one-shot result exactly."""
    rng = np.random.default_rng(1)
    stereo = (0.3 * rng.standard_normal((22_050 + 17, 2))).astype(np.float32)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 44_100, subtype="FLOAT")
    whole = resample(stereo.mean(axis=1), 44_100, SAMPLE_RATE)
    monkeypatch.setattr(load, "BLOCK_FRAMES", 1000)
    np.testing.assert_array_equal(load_audio(path), whole)
    mono_8k = tmp_path / "m.wav"
    sf.write(mono_8k, stereo[:, 0], 8_000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(mono_8k), resample(stereo[:, 0], 8_000))


def test_inf_is_rejected():
    wav = _tone(0.3, SAMPLE_RATE)
    wav[7] = -np.inf
    with pytest.raises(AudioError, match="NaN or Inf"):
        validate_audio(wav, "inf.wav")


# --- things that are not regular files, and names that are not UTF-8 ------------------------

def test_non_files_name_the_reason(tmp_path):
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    (tmp_path / "dir.wav").mkdir()
    os.mkfifo(tmp_path / "pipe.wav")  # opening it for reading would block forever
    with pytest.raises(AudioError, match=r"gone.wav: dangling symlink -> .*nowhere.wav"):
        load_audio(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match="dir.wav: a directory, not a file"):
        load_audio(tmp_path / "dir.wav")
    with pytest.raises(AudioError, match="pipe.wav: not a regular file"):
        load_audio(tmp_path / "pipe.wav")


def test_non_utf8_file_name_loads_and_errors_print(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff\xfe.wav"
    sf.write(raw, _tone(0.3, SAMPLE_RATE), SAMPLE_RATE)
    name = os.fsdecode(raw)  # str with surrogate escapes, as os.listdir gives it
    assert load_audio(name).shape == (int(0.3 * SAMPLE_RATE),)
    assert save_wav(name, _tone(0.2, SAMPLE_RATE)) == Path(name)
    assert load_audio(Path(name)).shape == (int(0.2 * SAMPLE_RATE),)

    bad = os.fsdecode(os.fsencode(tmp_path) + b"/bad-\xff.wav")
    Path(bad).write_bytes(b"\x00junk" * 100)
    with pytest.raises(AudioError) as e:
        load_audio(bad)
    assert "bad-\\xff.wav: not readable as audio" in str(e.value)
    str(e.value).encode("utf-8")  # printable: no lone surrogates
    assert printable(bad).endswith("bad-\\xff.wav")


# --- segments: rows with start/duration read only their part of the file --------------------

def _noise_file(path: Path, seconds: float, sr: int = SAMPLE_RATE, channels: int = 1) -> Path:
    data = 0.1 * np.random.default_rng(0).standard_normal((int(seconds * sr), channels))
    sf.write(path, data.astype(np.float32), sr, subtype="PCM_16")
    return path


def test_segment_is_the_slice_of_the_whole_file(tmp_path):
    path = _noise_file(tmp_path / "a.flac", 3.0)
    whole = load_audio(path)
    seg = load.load_row({"id": "a_0", "path": str(path), "start": 0.5, "duration": 1.25})
    np.testing.assert_array_equal(seg, whole[8000:8000 + 20000])
    tail = load.load_row({"id": "a_1", "path": str(path), "start": 2.0})  # to the end
    np.testing.assert_array_equal(tail, whole[32000:])
    # without start, a row is the whole file whatever its duration says
    assert len(load.load_row({"id": "a", "path": str(path), "duration": 0.2})) == len(whole)


def test_segment_of_a_44k_stereo_file_is_mixed_and_resampled(tmp_path):
    path = _noise_file(tmp_path / "st.wav", 2.0, sr=44_100, channels=2)
    whole = load_audio(path)
    row = {"id": "s", "path": str(path), "start": 0.5, "duration": 1.0}
    seg = load.load_row(row)
    assert len(seg) == load.row_num_samples(row) == SAMPLE_RATE
    # away from the segment's edges (resampler transients) it is the slice of the whole
    np.testing.assert_allclose(seg[400:-400], whole[8400:24000 - 400], atol=2e-3)
    assert load.row_num_samples({"path": str(path)}) == len(whole)


def test_segment_outside_the_file_is_a_clear_error(tmp_path):
    path = _noise_file(tmp_path / "b.wav", 2.0)
    with pytest.raises(AudioError, match=r"b.wav: segment \[1.500, 2.500\] s lies outside the "
                                         r"file \(2.000 s long\)"):
        load.load_row({"id": "b", "path": str(path), "start": 1.5, "duration": 1.0})
    with pytest.raises(AudioError, match="lies outside"):
        load_audio(path, start=2.0)
    # rounding of stored values: a few ms past the end is cut at the end
    assert len(load_audio(path, start=1.0, duration=1.005)) == SAMPLE_RATE
    with pytest.raises(AudioError, match="over the 0.5 s limit"):
        load_audio(path, start=0.0, duration=1.0, max_duration=0.5)
    for bad in ("1.0", -0.5, float("nan"), True):
        with pytest.raises(InputError, match="start"):
            load.load_row({"id": "b", "path": str(path), "start": bad, "duration": 1.0})


def test_segment_of_a_long_file_does_not_decode_the_rest(tmp_path):
    path = _noise_file(tmp_path / "long.flac", 120.0)  # 7.7 MB as float32
    tracemalloc.start()
    try:
        seg = load_audio(path, start=100.0, duration=1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seg) == SAMPLE_RATE and peak < 1_000_000


def test_stream_audio_blocks_join_to_the_whole_file(tmp_path):
    for name, sr, ch in (("m.wav", SAMPLE_RATE, 1), ("s.flac", 22_050, 2)):
        path = _noise_file(tmp_path / name, 3.1, sr=sr, channels=ch)
        blocks = list(load.stream_audio(path, block_seconds=0.7))
        assert len(blocks) >= 4 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
        np.testing.assert_allclose(np.concatenate(blocks), load_audio(path), atol=1e-6)
