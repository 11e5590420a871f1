"""Run-length deduplication of unit sequences (GSLM's "deduplicated units")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dedup(units: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse runs of repeated units.

    Args:
        units: (F,) frame units.
    Returns:
        units: (N,) int64, no two neighbours equal; durations: (N,) int64 frames per unit,
        summing to F. ``[5, 5, 2, 2, 2, 5] -> ([5, 2, 5], [2, 3, 1])``.
    """
    u = np.asarray(units, dtype=np.int64).reshape(-1)
    if u.size == 0:
        return u.copy(), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))  # (N,)
    durations = np.diff(np.concatenate([starts, [u.size]]))
    return u[starts], durations.astype(np.int64)


def expand(units: Sequence[int] | np.ndarray,
           durations: Sequence[int] | np.ndarray) -> np.ndarray:
    """Inverse of :func:`dedup`: repeat ``units[i]`` ``durations[i]`` times -> (sum(d),) int64."""
    u = np.asarray(units, dtype=np.int64).reshape(-1)
    d = np.asarray(durations, dtype=np.int64).reshape(-1)
    if u.shape != d.shape:
        raise ValueError(f"units {u.shape} and durations {d.shape} differ in length")
    if np.any(d < 0):
        raise ValueError("durations must be >= 0")
    return np.repeat(u, d)
