"""Framing: how an encoder cuts 16 kHz audio into unit frames (hop, window, frame rate).

The frame rate is a property of the tokenizer, not a constant: HuBERT Base and the GSLM
encoders give 50 Hz frames (hop 320 samples), mHuBERT-25Hz (TWIST, Slam) 25 Hz (hop 640),
codec tokenizers 12.5 Hz (hop 1280). A :class:`Framing` is recorded in every artifact that
depends on it (tokenizer config, units JSONL/packed meta, the LM's ``spokenlm_lm.json``, the
vocoder config) as ``{"frame_rate": ..., "hop_length": ..., "win_length": ...}``, and every
consumer reads it from there. Artifacts written before the frame rate was recorded are
50 Hz (:data:`DEFAULT_FRAMING`).

Frame ``i`` covers samples ``[hop * i, hop * i + window)``; ``T`` samples give
``floor((T - window) / hop) + 1`` frames (0 when ``T < window``), the frame count of a
wav2vec 2.0 / HuBERT conv front-end with receptive field ``window`` and stride ``hop``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..common.errors import InputError
from .constants import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH

#: The keys a framing occupies in an artifact's JSON.
FRAMING_KEYS = ("frame_rate", "hop_length", "win_length")


@dataclass(frozen=True)
class Framing:
    """Hop and window (samples at ``sample_rate``) of an encoder's frames."""

    hop_length: int = HOP_LENGTH
    win_length: int = WIN_LENGTH
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.hop_length <= 0 or self.win_length <= 0:
            raise InputError(f"framing: hop_length={self.hop_length} and "
                             f"win_length={self.win_length} must be positive")

    @property
    def frame_rate(self) -> float:
        """Frames per second: ``sample_rate / hop_length`` (50.0 for hop 320)."""
        return self.sample_rate / self.hop_length

    @classmethod
    def from_rate(cls, frame_rate: float, sample_rate: int = SAMPLE_RATE) -> Framing:
        """The spectral framing at ``frame_rate`` Hz: hop ``sample_rate / frame_rate`` (must
        be a whole number of samples) and a window 1.25 hops long (25 ms at 50 Hz, 50 ms at
        25 Hz, 100 ms at 12.5 Hz), so neighbouring frames overlap as at 50 Hz."""
        hop = sample_rate / float(frame_rate)
        if frame_rate <= 0 or abs(hop - round(hop)) > 1e-9:
            raise InputError(f"--frame-rate {frame_rate:g}: {sample_rate} Hz audio needs a rate "
                             f"that gives a whole hop in samples (e.g. 50, 25, 12.5, 100)")
        hop = int(round(hop))
        return cls(hop, hop + hop // 4, sample_rate)

    def num_frames(self, num_samples: int) -> int:
        """``floor((T - win_length) / hop_length) + 1`` frames, 0 when ``T < win_length``."""
        if num_samples < self.win_length:
            return 0
        return (num_samples - self.win_length) // self.hop_length + 1

    def samples(self, n_frames: int) -> int:
        """Samples a vocoder produces for ``n_frames`` frames: ``n_frames * hop_length``."""
        return int(n_frames) * self.hop_length

    def seconds(self, n_frames: float) -> float:
        """Duration of ``n_frames`` frames in seconds (``n_frames / frame_rate``)."""
        return float(n_frames) / self.frame_rate

    def frames(self, seconds: float) -> int:
        """Whole frames in ``seconds`` (rounded to the nearest frame)."""
        return int(round(float(seconds) * self.frame_rate))

    def centres(self, n_frames: int) -> np.ndarray:
        """Centre time (seconds) of frames ``0..n_frames-1``: ``(hop i + win / 2) / sr``.

        Returns:
            float64 array of shape (n_frames,).
        """
        return self.centre_times(np.arange(n_frames))

    def centre_times(self, frames: np.ndarray) -> np.ndarray:
        """Centre time (seconds) of frame positions ``frames`` (any shape; fractional
        positions fall between frames): ``(hop i + win / 2) / sr``, same shape, float64."""
        frames = np.asarray(frames, dtype=np.float64)
        return (frames * self.hop_length + self.win_length / 2) / self.sample_rate

    def to_json(self) -> dict[str, Any]:
        """``{"frame_rate", "hop_length", "win_length"}`` for an artifact's JSON."""
        return {"frame_rate": self.frame_rate, "hop_length": self.hop_length,
                "win_length": self.win_length}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, source: str = "<config>") -> Framing:
        """Read the framing an artifact recorded; 50 Hz (:data:`DEFAULT_FRAMING`) when it
        recorded none (artifacts written before frame rates were recorded). A ``frame_rate``
        alone (older tokenizer configs) gives the spectral framing at that rate."""
        data = data or {}
        try:
            if "hop_length" in data:
                hop = int(data["hop_length"])
                win = int(data.get("win_length", hop + hop // 4 if hop != HOP_LENGTH
                                   else WIN_LENGTH))
                framing = cls(hop, win)
            elif "frame_rate" in data and data["frame_rate"] is not None:
                rate = float(data["frame_rate"])
                framing = (DEFAULT_FRAMING if math.isclose(rate, DEFAULT_FRAMING.frame_rate)
                           else cls.from_rate(rate))
            else:
                return DEFAULT_FRAMING
        except (TypeError, ValueError) as e:
            raise InputError(f"{source}: bad frame rate fields "
                             f"{ {k: data.get(k) for k in FRAMING_KEYS} } ({e})") from e
        if "frame_rate" in data and data["frame_rate"] is not None and not math.isclose(
                float(data["frame_rate"]), framing.frame_rate, rel_tol=1e-6):
            raise InputError(f"{source}: frame_rate={data['frame_rate']} disagrees with "
                             f"hop_length={framing.hop_length} at {framing.sample_rate} Hz")
        return framing

    def describe(self) -> str:
        """``"50 Hz (hop 320)"``."""
        return f"{self.frame_rate:g} Hz (hop {self.hop_length})"


#: The framing of HuBERT Base / wav2vec 2.0 and of every artifact that records none: 50 Hz.
DEFAULT_FRAMING = Framing()


def check_same_framing(a: Framing, a_name: str, b: Framing, b_name: str) -> None:
    """Raise :class:`InputError` naming both artifacts unless their frame hops agree (a
    25 Hz LM cannot be spoken by a 50 Hz vocoder)."""
    if a.hop_length != b.hop_length:
        raise InputError(f"{a_name} works at {a.describe()} but {b_name} at {b.describe()}; "
                         f"use artifacts trained on the same tokenizer frame rate")


def conv_framing(kernels: list[int] | tuple[int, ...], strides: list[int] | tuple[int, ...],
                 sample_rate: int = SAMPLE_RATE) -> Framing:
    """Framing of a stack of 1-D convolutions without padding (wav2vec 2.0 / HuBERT feature
    extractor): hop = product of strides, receptive field from the kernels.

    HuBERT Base (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2): hop 320, window 400.
    """
    hop, field = 1, 1
    for k, s in zip(kernels, strides):
        field += (int(k) - 1) * hop
        hop *= int(s)
    return Framing(hop, field, sample_rate)


class UnitsFraming:
    """The one frame rate of a stream of units rows (units JSONL), checked row by row.

    Rows written since frame rates were recorded carry ``frame_rate``; older rows carry
    none and count as 50 Hz. Rows of two rates in one file (``cat`` of two runs) are an
    error naming the file::

        rates = UnitsFraming(path)
        for row in rows:
            rates.add(row)
        rates.framing  # Framing of the file
    """

    def __init__(self, source: object) -> None:
        self.source = str(source)
        self._rate: float | None = None
        self._first: object = None

    def add(self, row: Mapping[str, Any]) -> None:
        rate = float(row.get("frame_rate") or DEFAULT_FRAMING.frame_rate)
        if self._rate is None:
            self._rate, self._first = rate, row.get("id")
        elif not math.isclose(rate, self._rate):
            raise InputError(f"{self.source}: utterance {row.get('id')!r} has units at "
                             f"{rate:g} Hz but {self._first!r} at {self._rate:g} Hz; one "
                             f"units file holds one tokenizer's units, tokenize them apart")

    @property
    def framing(self) -> Framing:
        return Framing.from_json({"frame_rate": self._rate}, self.source)


def units_framing(rows: Iterable[Mapping[str, Any]], source: object) -> Framing:
    """The frame rate of units rows (see :class:`UnitsFraming`); 50 Hz when none is recorded."""
    rates = UnitsFraming(source)
    for row in rows:
        rates.add(row)
    return rates.framing
