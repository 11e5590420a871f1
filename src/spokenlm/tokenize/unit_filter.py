"""A mode filter over frame units: one-frame flicker removed before deduplication.

k-means on frame features often alternates between two nearby centroids inside one phone
(``48 73 48``); after run-length dedup every alternation is a token, so the number of
units a phone gets depends on noise. Replacing each frame's unit by the most common unit of
the ``width`` frames centred on it removes that flicker (a window of 5 frames at 50 Hz is
100 ms, shorter than most phones) and shortens the deduplicated sequence.
"""

from __future__ import annotations

import numpy as np

from ..common.errors import InputError


def check_width(width: int, source: str = "--unit-filter") -> int:
    """``width`` as an int if it is odd and >= 1, else :class:`InputError` naming ``source``."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1 \
            or width % 2 == 0:
        raise InputError(f"{source} {width!r}: the mode filter's width must be an odd number "
                         f"of frames >= 1 (1: no filter, 5: 100 ms at 50 Hz)")
    return int(width)


def mode_filter(units: np.ndarray, width: int) -> np.ndarray:
    """(F,) int frame units -> (F,) int64: each frame's unit replaced by the most common unit
    among the ``width`` frames centred on it (the ends repeat the edge frame). A tie that
    includes the frame's own unit keeps it; other ties go to the earliest frame of the window.
    ``width`` 1 returns the units unchanged (the int64 view of the input, not a copy).

    ``[1, 1, 2, 1, 1, 3, 3, 4, 3, 3]`` with width 3 -> ``[1, 1, 1, 1, 1, 3, 3, 3, 3, 3]``.
    """
    u = np.asarray(units, dtype=np.int64).reshape(-1)
    width = check_width(width, "mode filter width")
    if width == 1 or u.size == 0:
        return u
    h = width // 2
    win = np.lib.stride_tricks.sliding_window_view(np.pad(u, (h, h), mode="edge"), width)
    votes = np.zeros(win.shape, dtype=np.int64)  # (F, width): how often each slot's unit occurs
    for j in range(width):
        votes += win == win[:, j:j + 1]
    best = win[np.arange(u.size), votes.argmax(1)]
    return np.where(votes[:, h] >= votes.max(1), u, best)
