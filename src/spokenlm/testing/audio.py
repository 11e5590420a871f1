"""Tiny audio builders for tests: speech-like random waveforms, wav folders, manifests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..audio.constants import SAMPLE_RATE
from ..audio.load import save_wav
from ..common.files import write_jsonl


def random_speech_like_wav(seconds: float = 1.0, seed: int = 0,
                           sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A non-silent, speech-like signal: harmonics of a wandering f0 (90-250 Hz) shaped by
    a few moving formants, syllable-rate amplitude modulation, and a little noise.

    Returns:
        float32 (T,) with T = round(seconds * sample_rate), peak about 0.5.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(90, 250) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t
                                                   + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate  # (T,)
    formants = rng.uniform([300, 900, 2200], [900, 2200, 3200])
    drift = 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(1, 4, size=3)[:, None] * t[None])
    wav = np.zeros(n)
    for h in range(1, 30):
        freq = h * f0  # (T,)
        gain = sum(np.exp(-0.5 * ((freq - f * d) / 150.0) ** 2) for f, d in zip(formants, drift))
        wav += (gain + 0.02) * np.sin(h * phase) / h
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
    wav = wav * envelope + 0.01 * rng.standard_normal(n)
    wav = 0.5 * wav / max(np.abs(wav).max(), 1e-9)
    return wav.astype(np.float32)


def write_wav_folder(root: str | os.PathLike, n: int = 4, seed: int = 0,
                     seconds: tuple[float, float] = (0.5, 1.5),
                     sample_rate: int = SAMPLE_RATE) -> list[Path]:
    """Write ``n`` speech-like wavs ``root/utt{i:03d}.wav`` of random length in ``seconds``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    paths = []
    for i in range(n):
        secs = float(rng.uniform(*seconds))
        wav = random_speech_like_wav(secs, seed=seed * 1000 + i, sample_rate=sample_rate)
        paths.append(save_wav(root / f"utt{i:03d}.wav", wav, sample_rate))
    return paths


def write_test_manifest(path: str | os.PathLike, wav_paths: list[Path],
                        **extra: list) -> Path:
    """A manifest JSONL (``id``, absolute ``path``, ``duration``, ``sample_rate``) for
    ``wav_paths`` without reading them (so broken files can be listed); ``extra`` adds
    per-row columns, e.g. ``speaker=["a", "b"]``."""
    import soundfile as sf

    rows = []
    for i, p in enumerate(wav_paths):
        p = Path(p).resolve()
        try:
            info = sf.info(str(p))
            duration, sr = info.frames / info.samplerate, info.samplerate
        except Exception:  # noqa: BLE001 - broken test files are listed on purpose
            duration, sr = 1.0, SAMPLE_RATE
        row = {"id": p.stem, "path": str(p), "duration": duration, "sample_rate": sr}
        row.update({k: v[i] for k, v in extra.items()})
        rows.append(row)
    return write_jsonl(path, rows)
