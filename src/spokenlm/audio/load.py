"""Load, resample, validate and save audio.

Any format soundfile reads (wav, flac, ogg, ...) is mixed to mono and resampled to
:data:`SAMPLE_RATE` with soxr. Bad audio raises :class:`AudioError` naming the file and
what to do about it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..common.errors import InputError
from ..common.files import atomic_path
from .constants import MIN_DURATION_S, SAMPLE_RATE

#: Peak amplitude below which a file counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4


class AudioError(InputError):
    """An audio file is unreadable, empty, silent, too short or contains NaN/Inf."""


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header of ``path`` (sample rate, channels, frames) without decoding the samples."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found; check the path or regenerate the manifest")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); remove it or re-export the recording")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{path}: not readable as audio ({e}); convert it to wav/flac "
                         f"or remove it") from e


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *,
               validate: bool = True) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate``.

    Returns:
        wav: float32 array of shape (T,), values in [-1, 1].
    """
    path = Path(path)
    audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path}: could not decode audio ({e}); the file may be truncated "
                         f"or corrupt, re-export it or remove it") from e
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    wav = resample(wav, sr, sample_rate)
    if validate:
        validate_audio(wav, path, sample_rate)
    return wav


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a (T,) float32 signal with soxr (high quality); identity when rates match."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def validate_audio(wav: np.ndarray, path: str | os.PathLike = "<array>",
                   sample_rate: int = SAMPLE_RATE, min_duration: float = MIN_DURATION_S) -> None:
    """Raise :class:`AudioError` if ``wav`` (T,) is empty, too short, non-finite or silent."""
    if wav.size == 0:
        raise AudioError(f"{path}: contains no samples; remove it or re-export the recording")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{path}: contains NaN or Inf samples; re-export the recording")
    duration = wav.shape[0] / sample_rate
    if duration < min_duration:
        raise AudioError(f"{path}: too short ({duration:.3f} s < {min_duration} s); "
                         f"remove it or pad it")
    peak = float(np.abs(wav).max())
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path}: silent (peak amplitude {peak:.2e}); remove it or check "
                         f"the recording level")


def save_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write (T,) float audio as 16-bit PCM wav, atomically; values are clipped to [-1, 1]."""
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype="PCM_16", format="WAV")
    return path
