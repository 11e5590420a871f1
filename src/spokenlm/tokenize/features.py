"""Feature extraction with any :class:`Encoder`: numpy waveforms in, numpy features out,
on a chosen device and precision, batching only utterances of equal length; inputs of any
length chunk by chunk in bounded memory (:meth:`FeatureExtractor.features_stream`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..audio.chunking import Chunking, sample_chunks
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

    def chunking(self, chunk_seconds: float | None = None) -> Chunking:
        """The encoder's :class:`Chunking`, with ``chunk_seconds`` of frames per chunk when
        given (its default otherwise)."""
        spec = self.encoder.chunking
        if chunk_seconds is None:
            return spec
        frames = max(1, self.encoder.framing.frames(chunk_seconds))
        return Chunking(frames, spec.context_frames, spec.exact, spec.two_pass, spec.note)

    @torch.no_grad()
    def features_stream(self, blocks: Callable[[], Iterable[np.ndarray]], *,
                        chunk_seconds: float | None = None,
                        context_frames: int | None = None) -> Iterator[np.ndarray]:
        """Features of one waveform of any length, chunk by chunk: float32 (F_k, D) arrays
        whose concatenation is the features of the whole (F, D).

        ``blocks()`` returns the waveform as consecutive float32 (B,) blocks at 16 kHz (an
        :class:`~spokenlm.audio.chunking.AudioStream`); it is called twice when the encoder
        needs whole-input statistics (``chunking.two_pass``: MFCC ``cmn``). Each chunk holds
        ``chunk_seconds`` of frames (default: the encoder's) and is encoded with the
        encoder's context (or ``context_frames``) on each side, then trimmed. Exact encoders
        (``chunking.exact``: mfcc, logmel) give the one-piece features to float rounding;
        the others (HuBERT, wav2vec 2.0: self-attention over the whole input, HuBERT Base's
        group norm over time, per-utterance ``normalize``) only approximately. Memory: one
        chunk with its context, whatever the length.
        """
        spec = self.chunking(chunk_seconds)
        context = spec.context_frames if context_frames is None else int(context_frames)
        framing = self.encoder.framing
        stats = None
        if spec.two_pass:
            for wav, _, _ in sample_chunks(blocks(), framing, spec.chunk_frames, 0):
                s = self.encoder.stream_stats(self._tensor(wav[None]))  # (1, S)
                stats = s if stats is None else stats + s
        for wav, skip, keep in sample_chunks(blocks(), framing, spec.chunk_frames, context):
            feats = self._run(wav[None], stats)[0]  # (F_chunk, D)
            yield feats[skip: skip + keep]

    def _tensor(self, wav: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)

    def _run(self, wav: np.ndarray, stats: torch.Tensor | None = None) -> np.ndarray:
        """(B, T) float32 -> (B, F, D) float32 numpy (``stats``: first-pass statistics of a
        two-pass encoder, :meth:`features_stream`)."""
        x = self._tensor(wav)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16,
                            enabled=self.dtype is not None):
            feats = (self.encoder(x) if stats is None
                     else self.encoder.forward_with_stats(x, stats))  # (B, F, D)
        return feats.float().cpu().numpy()


def _as_mono(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise InputError(f"expected a mono waveform of shape (T,), got {wav.shape}; "
                         f"load it with spokenlm.audio.load.load_audio")
    return wav
