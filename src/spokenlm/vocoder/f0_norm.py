"""F0 in Hz -> the F0 input of a speech-resynthesis vocoder (its dataset options).

speech-resynthesis' ``CodeDataset`` turns YAAPT F0 into generator input with these config
keys, reproduced by :func:`prepare_f0`:

- ``f0_interp``: unvoiced frames filled from their voiced neighbours (YAAPT's
  ``samp_interp``; approximated here by linear interpolation, edges held, 100 Hz when
  nothing is voiced);
- ``f0_normalize``: voiced frames become ``(f0 - mean) / std`` with the speaker's
  ``f0_mean`` / ``f0_std`` from the ``f0_stats`` file (the global ones for a speaker it does
  not list); unvoiced frames stay 0;
- ``f0_median``: with normalisation, unvoiced frames take the utterance's median voiced F0
  first (so they are normalised too);
- ``f0_feats``: the speaker's ``(mean, std)`` are two more generator input channels.

The ``f0_stats`` file is ``torch.save`` of ``{"f0_mean": m, "f0_std": s}`` (LJSpeech) and/or
``{speaker_index: {"f0_mean": m, "f0_std": s}, ...}`` (VCTK), speaker indices being those of
the speaker embedding; values are numpy or Python floats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..common.errors import InputError

#: YAAPT's F0 for a clip with no voiced frame at all when interpolating (``PTCH_TYP``)
TYPICAL_F0 = 100.0


@dataclass
class F0Stats:
    """F0 mean / std in Hz: global and per speaker index (either may be missing)."""

    mean: float | None = None
    std: float | None = None
    speakers: dict[int, tuple[float, float]] = field(default_factory=dict)

    def lookup(self, speaker: int | None) -> tuple[float, float]:
        """(mean, std) for a speaker index: its own, else the global ones."""
        if speaker is not None and speaker in self.speakers:
            return self.speakers[speaker]
        if self.mean is None or self.std is None:
            raise InputError(f"the vocoder's F0 stats have no entry for speaker index {speaker} "
                             f"and no global f0_mean / f0_std; pick a speaker among "
                             f"{sorted(self.speakers)[:10]} or re-import with --f0-stats")
        return self.mean, self.std

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std,
                "speakers": {str(k): list(v) for k, v in sorted(self.speakers.items())}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> F0Stats:
        return cls(d.get("mean"), d.get("std"),
                   {int(k): (float(v[0]), float(v[1])) for k, v in d.get("speakers", {}).items()})

    def to_original(self) -> dict[Any, Any]:
        """The dict speech-resynthesis ``torch.save``s as ``f0_stats`` (plain floats)."""
        out: dict[Any, Any] = {k: {"f0_mean": m, "f0_std": s}
                               for k, (m, s) in sorted(self.speakers.items())}
        if self.mean is not None and self.std is not None:
            out.update(f0_mean=self.mean, f0_std=self.std)
        return out


def _numpy_globals() -> list[Any]:
    """The numpy scalar / dtype classes an ``f0_stats`` pickle names (safe to rebuild)."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtypes = [np.dtypes.Float64DType, np.dtypes.Float32DType, np.dtypes.Float16DType,
              np.dtypes.Int64DType, np.dtypes.Int32DType]
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
            (np.dtype, "numpy.dtype"), *dtypes]


def _number(value: Any, path: Path, key: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {key!r} is {value!r}, not a number; an f0_stats file holds "
                         f"f0_mean / f0_std numbers") from None


def load_f0_stats(path: str | os.PathLike) -> F0Stats:
    """Read a speech-resynthesis ``f0_stats`` file (``torch.load(weights_only=True)``, with
    numpy scalars allowed; no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: F0 stats file not found; pass the f0_stats file the vocoder "
                         f"was trained with (--f0-stats)")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: not a readable torch-saved F0 stats dict ({e})") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not the f0_stats dict "
                         f"{{'f0_mean': ..., 'f0_std': ..., speaker_index: {{...}}}}")
    stats = F0Stats()
    for key, value in obj.items():
        if key in ("f0_mean", "f0_std"):
            setattr(stats, key[3:], _number(value, path, key))
        elif isinstance(value, dict) and {"f0_mean", "f0_std"} <= set(value):
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise InputError(f"{path}: speaker key {key!r} is not a speaker index; "
                                 f"speech-resynthesis keys per-speaker stats by index") from None
            stats.speakers[index] = (_number(value["f0_mean"], path, key),
                                     _number(value["f0_std"], path, key))
    if (stats.mean is None or stats.std is None) and not stats.speakers:
        raise InputError(f"{path}: no f0_mean / f0_std entries (keys: {list(obj)[:8]})")
    return stats


@dataclass
class F0Config:
    """How a vocoder turns F0 into generator input (saved under ``"f0"`` in its config).

    ``quantizer``: the original ``f0_quantizer`` params (``f0_encoder_params``,
    ``f0_vq_params``, ``f0_decoder_params``) when F0 goes through the VQ-VAE, else None (raw
    F0 channel). ``fallback``: what :meth:`default_input` does when no F0 is given.
    """

    quantizer: dict[str, Any] | None = None
    normalize: bool = False
    median: bool = False
    interp: bool = False
    feats: bool = False
    stats: F0Stats | None = None
    fallback: Literal["mean", "error"] = "mean"

    def to_json(self) -> dict[str, Any]:
        return {"quantizer": self.quantizer, "normalize": self.normalize, "median": self.median,
                "interp": self.interp, "feats": self.feats, "fallback": self.fallback,
                "stats": None if self.stats is None else self.stats.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> F0Config:
        stats = d.get("stats")
        return cls(quantizer=d.get("quantizer"), normalize=bool(d.get("normalize")),
                   median=bool(d.get("median")), interp=bool(d.get("interp")),
                   feats=bool(d.get("feats")), fallback=d.get("fallback", "mean"),
                   stats=None if stats is None else F0Stats.from_json(stats))

    def speaker_stats(self, speaker: int | None) -> tuple[float, float]:
        """(mean, std) in Hz used for ``speaker`` (index or None)."""
        if self.stats is None:
            raise InputError("this vocoder has no F0 stats; re-import it with --f0-stats")
        return self.stats.lookup(speaker)

    def prepare(self, f0_hz: np.ndarray, speaker: int | None) -> np.ndarray:
        """F0 in Hz (T0,), 0 = unvoiced -> generator input (T0,) float32, as the original
        dataset computes it."""
        f0 = np.asarray(f0_hz, dtype=np.float64).reshape(-1).copy()
        if f0.size and (not np.isfinite(f0).all() or f0.min() < 0):
            raise InputError("F0 values must be finite Hz >= 0 (0 = unvoiced)")
        if self.interp:
            f0 = interpolate_unvoiced(f0)
        if self.normalize:
            mean, std = self.speaker_stats(speaker)
            voiced = f0 != 0
            out = np.zeros_like(f0)
            if self.median and voiced.any():
                out[~voiced] = (np.median(f0[voiced]) - mean) / std
            out[voiced] = (f0[voiced] - mean) / std
            f0 = out
        return f0.astype(np.float32)

    def default_input(self, n: int, speaker: int | None) -> np.ndarray:
        """Generator input (n,) when no F0 is given: a flat contour at the speaker's mean F0
        (0 once normalised), or an error with ``fallback="error"``."""
        if self.fallback == "error":
            raise InputError("this vocoder is conditioned on F0 and none was given; pass f0= "
                             "(Hz at 200 frames/s, spokenlm.vocoder.f0.extract_f0 on the source "
                             "audio)")
        if self.normalize:
            return np.zeros(n, dtype=np.float32)
        if self.stats is None:
            raise InputError("this vocoder takes F0 in Hz, has no F0 stats for a default "
                             "contour, and none was given; pass f0= or re-import it with "
                             "--f0-stats")
        return np.full(n, self.speaker_stats(speaker)[0], dtype=np.float32)


def interpolate_unvoiced(f0: np.ndarray) -> np.ndarray:
    """Fill unvoiced (0) frames of (T0,) F0 linearly from voiced neighbours, holding the
    first / last voiced value at the edges; :data:`TYPICAL_F0` when none is voiced."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = np.nonzero(f0)[0]
    if voiced.size == 0:
        return np.full_like(f0, TYPICAL_F0)
    return np.interp(np.arange(len(f0)), voiced, f0[voiced])
