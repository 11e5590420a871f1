"""Loading, resampling and validation of audio files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio.constants import SAMPLE_RATE
from spokenlm.audio.load import AudioError, load_audio, resample, save_wav, validate_audio


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
