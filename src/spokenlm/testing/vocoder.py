"""Tiny vocoder builders for tests: a units corpus with matching audio, and tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..audio.constants import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH
from ..audio.load import save_wav
from ..common.files import write_jsonl
from ..vocoder.base import VocoderModel, vocoder_class


def tone_for_units(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """A (F * 320 + 80,) float32 signal where each frame's unit sets the pitch of a
    harmonic tone (f0 = 100 + 25 * unit Hz): a unit -> sound mapping a vocoder can learn."""
    rng = np.random.default_rng(seed)
    f0 = np.repeat(100.0 + 25.0 * frames, HOP_LENGTH)
    f0 = np.pad(f0, (0, WIN_LENGTH - HOP_LENGTH), mode="edge")
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wav = sum(np.sin(h * phase) / h for h in (1, 2, 3, 4))
    wav = 0.3 * wav / np.abs(wav).max() + 0.003 * rng.standard_normal(len(wav))
    return wav.astype(np.float32)


def write_units_corpus(root: str | os.PathLike, n_utts: int = 2, n_units: int = 8,
                       n_frames: int = 50, speakers: tuple[str, ...] = ("spk0", "spk1"),
                       seed: int = 0) -> Path:
    """Write ``wavs/*.wav`` and ``units.jsonl`` (deduplicated units with durations, relative
    paths) under ``root``; return the JSONL path. Audio has exactly ``n_frames`` frames."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_utts):
        units, durations = [], []
        while sum(durations) < n_frames:
            u = int(rng.integers(n_units))
            if units and u == units[-1]:
                continue
            units.append(u)
            durations.append(int(min(rng.integers(1, 6), n_frames - sum(durations))))
        frames = np.repeat(np.array(units), durations)
        uid = f"utt{i:03d}"
        save_wav(root / "wavs" / f"{uid}.wav", tone_for_units(frames, seed + i))
        rows.append({"id": uid, "units": units, "durations": durations, "n_frames": n_frames,
                     "path": f"wavs/{uid}.wav", "speaker": speakers[i % len(speakers)],
                     "text": "", "split": "train"})
    return write_jsonl(root / "units.jsonl", rows)


def tiny_vocoder(type: str = "fast", n_units: int = 8, speakers: list[str] | None = None,
                 seed: int = 0) -> VocoderModel:
    """A randomly initialised tiny vocoder of ``type`` ("fast" | "hifigan")."""
    torch.manual_seed(seed)
    return vocoder_class(type).build("tiny", n_units, speakers)  # type: ignore[attr-defined]


def save_tiny_vocoder(path: str | os.PathLike, type: str = "fast", n_units: int = 8,
                      speakers: list[str] | None = None, seed: int = 0) -> Path:
    """Save :func:`tiny_vocoder` to ``path`` (a dir ``load_vocoder`` reads)."""
    return tiny_vocoder(type, n_units, speakers, seed).save_pretrained(path)
