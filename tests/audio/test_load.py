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
