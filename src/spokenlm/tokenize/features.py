"""Feature extraction with any :class:`Encoder`: numpy waveforms in, numpy features out,
on a chosen device and precision, batching only utterances of equal length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..common.device import resolve_device, resolve_dtype
from ..common.errors import InputError
from .encoders import Encoder

#: audio per encoder call when batching utterances of equal length
DEFAULT_BATCH_SECONDS = 60.0


class FeatureExtractor:
    """Runs ``encoder`` on ``device`` (``auto``: CUDA if present) under ``precision``
    (``fp32``; ``bf16`` autocast; ``auto``: bf16 only where it is native, so fp32 on CPUs
    without bf16 units)."""

    def __init__(self, encoder: Encoder, *, device: str = "auto", precision: str = "fp32") -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)  # autocast dtype or None
        self.encoder = encoder.to(self.device).eval()

    @torch.no_grad()
    def features_batch(self, wavs: Sequence[np.ndarray],
                       batch_seconds: float = DEFAULT_BATCH_SECONDS) -> list[np.ndarray]:
        """Features of each waveform (T_i,) float32 at 16 kHz: list of float32 (F_i, D).

        Zero-padding changes features (HuBERT Base's group norm over time, CMN, deltas at
        the edges), so only utterances of *equal length* share an encoder call, up to
        ``batch_seconds`` of audio per call; the others go one at a time.
        """
        out: list[np.ndarray] = [np.empty(0)] * len(wavs)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(wavs):
            by_length.setdefault(int(np.asarray(w).shape[-1]), []).append(i)
        for length, idx in by_length.items():
            per_call = max(1, int(batch_seconds * SAMPLE_RATE) // max(length, 1))
            for start in range(0, len(idx), per_call):
                group = idx[start:start + per_call]
                feats = self._run(np.stack([_as_mono(wavs[i]) for i in group]))  # (B, F, D)
                for i, f in zip(group, feats):
                    out[i] = f
        return out

    def features(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform (T,) float32 at 16 kHz -> float32 (F, D)."""
        return self.features_batch([wav])[0]

    def _run(self, wav: np.ndarray) -> np.ndarray:
        """(B, T) float32 -> (B, F, D) float32 numpy."""
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16,
                            enabled=self.dtype is not None):
            feats = self.encoder(x)  # (B, F, D)
        return feats.float().cpu().numpy()


def _as_mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise InputError(f"expected a mono waveform of shape (T,), got {wav.shape}; "
                         f"load it with spokenlm.audio.load.load_audio")
    return wav
