"""libri-light's ABX re-implemented loop for loop, for tests and benchmarks (slow).

The reference is ``zerospeech-libriabx2`` 0.9.8 (``zrc_abx2``, libri-light's ABX as the
ZeroSpeech toolkit packages it): ``ABXFeatureLoader`` (null-frame singularity),
``ABXIterators`` (categories, ``random.sample`` subsampling, iteration order),
``abx_group_computation`` (cosine distance, DTW per pair, ``1 - theta`` per group),
``dtw.pyx`` (the float32 recurrence and its backtracked path length) and ``eval_ABX._ABX``
(the averages). Nothing here is shared with :mod:`spokenlm.eval.abx`: it is the
independent check that the fast implementation gives the reference's numbers. Each pair is
aligned by a Python double loop, again in every group that needs it, as the reference does.

Input: per token its frames, already cut from the features (libri-light keeps frames
``ceil(f * onset - 0.5) <= i < floor(f * offset - 0.5)``), and its (context, label,
speaker); unit ids are compared as one-hot vectors, as a submission of units is.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def singular_normalise(x: np.ndarray) -> np.ndarray:
    """libri-light's ``normalize_with_singularity``: unit rows plus one coordinate, 1e-12 for
    a non-null frame, -2e12 (and 1/sqrt(D) everywhere else) for a null one. (L, D) -> (L, D+1)"""
    x = np.asarray(x, np.float32).copy()
    norm = (x ** 2).sum(1, keepdims=True)
    zero = norm[:, 0] == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        x = x / np.sqrt(norm)
    x[zero] = 1 / math.sqrt(x.shape[1])
    border = np.full((len(x), 1), 1e-12, np.float32)
    border[zero] = -2e12
    return np.concatenate([x, border], 1).astype(np.float32)


def dtw(dist: np.ndarray) -> float:
    """DTW cost over the backtracked path length (``dtw.pyx``), in float32."""
    n, m = dist.shape
    cost = np.empty((n, m), np.float32)
    cost[0, 0] = dist[0, 0]
    for i in range(1, n):
        cost[i, 0] = dist[i, 0] + cost[i - 1, 0]
    for j in range(1, m):
        cost[0, j] = dist[0, j] + cost[0, j - 1]
    for i in range(1, n):
        for j in range(1, m):
            cost[i, j] = dist[i, j] + min(cost[i - 1, j], cost[i - 1, j - 1], cost[i, j - 1])
    length, i, j = 1, n - 1, m - 1
    while i > 0 and j > 0:
        up, left, diag = cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1]
        if diag <= left and diag <= up:
            i, j = i - 1, j - 1
        elif left <= up:
            j -= 1
        else:
            i -= 1
        length += 1
    length += j if i == 0 else 0
    length += i if j == 0 else 0
    return float(np.float32(float(cost[n - 1, m - 1]) / length))


def _cosine_dtw(x: np.ndarray, y: np.ndarray) -> float:
    prod = (x[:, None, :] * y[None, :, :]).sum(-1, dtype=np.float32)
    return dtw((np.arccos(np.clip(prod, -1, 1)) / np.float32(math.pi)).astype(np.float32))


def reference_abx(frames: Sequence[np.ndarray], tokens: Sequence[tuple[str, str, str]], *,
                  speaker_mode: str = "within", context_mode: str = "within",
                  max_size_group: int = 10, max_x_across: int = 5, seed: int = 3459,
                  id_order: Sequence[tuple[str, str, str]] | None = None) -> float:
    """One ABX error rate. ``frames[i]``: (L_i, D) float, or (L_i,) int unit ids;
    ``tokens[i]``: (context, label, speaker); ``id_order``: the item file's lines, whose
    first appearances number contexts, labels and speakers (default ``tokens``)."""
    ids: list[dict[str, int]] = [{}, {}, {}]
    for key in list(id_order or []) + list(tokens):
        for table, value in zip(ids, key):
            if value not in table:
                table[value] = len(table)
    dim = max((int(np.max(f)) + 1 for f in frames if np.ndim(f) == 1), default=0)
    data = [singular_normalise(np.eye(dim, dtype=np.float32)[np.asarray(f)]
                               if np.ndim(f) == 1 else f) for f in frames]
    ctx = [ids[0][t[0]] if context_mode == "within" else 0 for t in tokens]
    lab = [ids[1][t[1]] for t in tokens]
    spk = [ids[2][t[2]] for t in tokens]
    order = sorted(range(len(tokens)), key=lambda i: (ctx[i], spk[i], lab[i]))
    # nested[context] -> list of speaker groups -> list of (start, end) in ``order``
    nested: list[list[list[tuple[int, int]]]] = []
    start, last = 0, None
    for pos in range(1, len(order) + 1):
        if pos < len(order) and (ctx[order[pos]], spk[order[pos]], lab[order[pos]]) == \
                (ctx[order[start]], spk[order[start]], lab[order[start]]):
            continue
        first = order[start]
        if last is None or ctx[first] != last[0]:
            nested.append([[]])
        elif spk[first] != last[1]:
            nested[-1].append([])
        nested[-1][-1].append((start, pos))
        start, last = pos, (ctx[first], spk[first])
    rng = random.Random(seed)

    def take(span: tuple[int, int]) -> list[int]:
        picks = list(range(*span))
        if len(picks) > max_size_group:
            picks = rng.sample(picks, k=max_size_group)
        return [order[p] for p in picks]

    def theta(a: list[int], b: list[int], x: list[int], symmetric: bool) -> float:
        dxb = [[_cosine_dtw(data[i], data[j]) for j in b] for i in x]
        dxa = [[0.0] * len(a) for _ in x]
        for p, i in enumerate(x):
            for q in range(p if symmetric else 0, len(a)):
                if symmetric and p == q:
                    continue
                dxa[p][q] = _cosine_dtw(data[i], data[a[q]])
                if symmetric:
                    dxa[q][p] = dxa[p][q]
        good = total = 0.0
        for p in range(len(x)):
            for q in range(len(a)):
                if symmetric and p == q:
                    continue
                for r in range(len(b)):
                    good += 1.0 if dxa[p][q] < dxb[p][r] else 0.5 if dxa[p][q] == dxb[p][r] \
                        else 0.0
                    total += 1
        return float(np.float32(good / total))

    scores: dict[tuple[int, ...], float] = {}
    for c_groups in nested:
        said_by: dict[int, list[tuple[int, tuple[int, int]]]] = defaultdict(list)
        for s_group in c_groups:
            for span in s_group:
                said_by[lab[order[span[0]]]].append((spk[order[span[0]]], span))
        for s_group in c_groups:
            if len(s_group) == 1:
                continue
            for ia, span_a in enumerate(s_group):
                la, s = lab[order[span_a[0]]], spk[order[span_a[0]]]
                c = ctx[order[span_a[0]]]
                if speaker_mode == "within":
                    if span_a[1] - span_a[0] == 1:
                        continue
                    for ib, span_b in enumerate(s_group):
                        if ib != ia:
                            b = take(span_b)
                            a = take(span_a)
                            scores[(c, la, lab[order[span_b[0]]], s)] = \
                                1 - theta(a, b, a, symmetric=True)
                    continue
                others = [sp for sp in said_by[la] if sp[0] != s]
                if len(others) > max_x_across:
                    others = rng.sample(others, k=max_x_across)
                for s_x, span_x in others:
                    for ib, span_b in enumerate(s_group):
                        if ib != ia:
                            a, b, x = take(span_a), take(span_b), take(span_x)
                            scores[(c, la, lab[order[span_b[0]]], s, s_x)] = \
                                1 - theta(a, b, x, symmetric=False)
    return _average(scores)


def _average(scores: dict[tuple[int, ...], float]) -> float:
    """``eval_ABX._ABX``: mean over contexts (and X speakers) per (s, a, b), over speakers
    per (a, b), then over (a, b)."""
    per_sab: dict[tuple[int, int, int], list[float]] = defaultdict(list)
    for key, value in scores.items():
        per_sab[(key[3], key[1], key[2])].append(value)
    per_ab: dict[tuple[int, int], list[float]] = defaultdict(list)
    for (s, a, b), values in per_sab.items():
        per_ab[(a, b)].append(sum(values) / len(values))
    if not per_ab:
        return float("nan")
    return sum(sum(v) / len(v) for v in per_ab.values()) / len(per_ab)
