"""Duration-penalised unit assignment: k-means units chosen by dynamic programming.

Nearest-centroid assignment picks each frame's unit on its own, so a phone whose frames lie
between two centroids alternates between them and its deduplicated unit count depends on
noise. The duration-penalised dynamic programme of Kamper (2022, "DPDP": "Word
segmentation on discovered phone units with dynamic programming and self-supervised
scoring") instead picks the frame unit sequence ``u`` minimising

    sum_t ||x_t - c_{u_t}||^2  +  penalty * #{t : u_t != u_{t-1}}

i.e. each new segment costs ``penalty`` (the same as rewarding long segments). ``penalty``
0 is nearest-centroid assignment; larger values give fewer, longer segments. It is solved
exactly by a Viterbi pass over (frames x centroids) in O(F K), with the previous frame's
best cost shared by every switch.

The penalty is given relative to the tokenizer's mean squared distance of a training frame
to its nearest centroid (``distance_scale``, recorded at training), so one value means the
same thing for any encoder, feature scale or unit count.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..common.errors import InputError


def check_penalty(penalty: float, source: str = "--unit-penalty") -> float:
    """``penalty`` as a float if it is finite and >= 0, else :class:`InputError`."""
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float, np.floating)) \
            or not np.isfinite(penalty) or penalty < 0:
        raise InputError(f"{source} {penalty!r}: the duration penalty must be a number >= 0 "
                         f"(0: nearest-centroid units; 1: a new unit costs one mean "
                         f"frame-to-centroid distance)")
    return float(penalty)


class ViterbiAssigner:
    """Incremental duration-penalised assignment: feed (F_i, K) squared-distance chunks in
    order with :meth:`push`, then :meth:`finish` returns the (sum F_i,) int64 frame units of
    the whole sequence, the same as :func:`dp_assign` on the concatenation.

    Memory: the (K,) running costs plus, per frame, one bit per centroid (stay or switch) and
    one int32 (the best previous centroid): ~K/8 + 4 bytes a frame (16 bytes at K=100).
    """

    def __init__(self, penalty: float) -> None:
        self.penalty = float(penalty)
        self._cost: np.ndarray | None = None  # (K,) float64: best cost ending in each unit
        self._stay: list[np.ndarray] = []     # per chunk (F_i, ceil(K/8)) uint8 packed bits
        self._prev: list[np.ndarray] = []     # per chunk (F_i,) int32: argmin at frame t-1
        self._k = 0

    def push(self, dist: np.ndarray) -> None:
        """Add the squared distances (F, K) of the next F frames to every centroid."""
        d = np.asarray(dist, dtype=np.float64)
        if d.ndim != 2 or (self._k and d.shape[1] != self._k):
            raise InputError(f"duration-penalised assignment: distances of shape {d.shape} "
                             f"do not match {self._k} centroids")
        if not len(d):
            return
        self._k = d.shape[1]
        stay = np.ones(d.shape, dtype=bool)
        prev = np.zeros(len(d), dtype=np.int32)
        cost = self._cost
        start = 0
        if cost is None:
            cost = d[0].copy()
            start = 1
        for t in range(start, len(d)):
            j = int(cost.argmin())
            switch = cost[j] + self.penalty
            s = cost <= switch
            stay[t] = s
            prev[t] = j
            cost = np.where(s, cost, switch) + d[t]
        self._cost = cost
        self._stay.append(np.packbits(stay, axis=1))
        self._prev.append(prev)

    def finish(self) -> np.ndarray:
        """The optimal frame units (F,) int64 of everything pushed (empty if nothing was)."""
        if self._cost is None:
            return np.zeros(0, dtype=np.int64)
        stay = np.concatenate(self._stay)
        prev = np.concatenate(self._prev)
        n = len(prev)
        units = np.empty(n, dtype=np.int64)
        k = int(self._cost.argmin())
        for t in range(n - 1, -1, -1):
            units[t] = k
            if t and not (stay[t, k >> 3] >> (7 - (k & 7))) & 1:
                k = int(prev[t])
        return units


def dp_assign(dist: np.ndarray | Iterable[np.ndarray], penalty: float) -> np.ndarray:
    """Squared distances (F, K) of frames to centroids (or chunks of them, in order) ->
    (F,) int64 frame units minimising distance + ``penalty`` per change of unit (absolute,
    in the distances' units). ``penalty`` 0 gives each frame its nearest centroid.

    Frames ``[0, 0, 1, 0, 0]`` of distances ``[[0, 9], [0, 9], [5, 4], [0, 9], [0, 9]]``:
    penalty 0 -> ``[0, 0, 1, 0, 0]``; penalty 2 -> ``[0, 0, 0, 0, 0]`` (one frame's
    saving of 1 is worth less than the two changes it costs).
    """
    check_penalty(penalty, "duration penalty")
    chunks = [dist] if isinstance(dist, np.ndarray) else dist
    a = ViterbiAssigner(penalty)
    for c in chunks:
        a.push(c)
    return a.finish()
