"""Batched frame distances and dynamic time warping (DTW), vectorised with torch.

``dtw_batch`` aligns many pairs of sequences at once. Per pair the recurrence is the one of
libri-light's ABX (``ABX_src/dtw.pyx``)::

    C[i, j] = d[i, j] + min(C[i-1, j], C[i-1, j-1], C[i, j-1]),   C[0, 0] = d[0, 0]

and the result is ``C[n-1, m-1] / L`` with ``L`` the number of cells on the optimal path.
Rows are computed one after the other for the whole batch; within a row the left-to-right
dependency is a prefix minimum: with ``a[k] = min(C[i-1, k], C[i-1, k-1])`` and ``S`` the
prefix sums of row ``i`` of ``d``,

    C[i, j] = S[j] + min_{k <= j} (a[k] - S[k-1])      (torch.cummin)

so the only Python loop is over the rows of the longest sequence, never over frame pairs.
The cummin indices give the predecessor of each cell, hence the path length.
"""

from __future__ import annotations

import math

import torch


def frame_distances(x: torch.Tensor, y: torch.Tensor, kind: str = "angular") -> torch.Tensor:
    """Distances between every frame of ``x`` (B, N, D) and of ``y`` (B, M, D) -> (B, N, M).

    kind: ``angular`` = arccos(cosine similarity) / pi in [0, 1] (libri-light's feature
    distance), ``euclidean``, or ``onehot`` = 0 where unit ids are equal else 1 (then
    ``x`` and ``y`` are (B, N) and (B, M) integer ids).
    """
    if kind == "onehot":
        return (x[:, :, None] != y[:, None, :]).to(torch.float32)
    if kind == "angular":
        xn = torch.nn.functional.normalize(x.float(), dim=-1)
        yn = torch.nn.functional.normalize(y.float(), dim=-1)
        cos = torch.bmm(xn, yn.transpose(1, 2)).clamp(-1.0, 1.0)
        return torch.arccos(cos) / math.pi
    if kind == "euclidean":
        return torch.cdist(x.float(), y.float())
    raise ValueError(f"distance {kind!r}: choose angular, euclidean or onehot")


def dtw_batch(dist: torch.Tensor, n: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Path-length-normalised DTW cost of each pair.

    Args:
        dist: (B, N, M) frame distances; cells beyond a pair's lengths are ignored.
        n, m: (B,) int lengths of the two sequences of each pair (>= 1).
    Returns:
        (B,) float64 costs.
    """
    dist = dist.double()
    B, N, M = dist.shape
    inf = torch.tensor(float("inf"), dtype=dist.dtype)
    cols = torch.arange(M)
    prev_c = prev_l = None
    rows_c = torch.empty(B, N, M, dtype=dist.dtype)
    rows_l = torch.empty(B, N, M, dtype=torch.long)
    for i in range(N):
        s = dist[:, i].cumsum(1)  # (B, M) prefix sums S[j]
        s_before = torch.cat([torch.zeros(B, 1, dtype=dist.dtype), s[:, :-1]], 1)  # S[k-1]
        if prev_c is None:  # row 0: only the start cell feeds the row
            a = torch.full((B, M), float("inf"), dtype=dist.dtype)
            a[:, 0] = 0.0
            a_len = torch.zeros(B, M, dtype=torch.long)
        else:
            diag = torch.cat([torch.full((B, 1), float("inf"), dtype=dist.dtype),
                              prev_c[:, :-1]], 1)
            diag_len = torch.cat([torch.zeros(B, 1, dtype=torch.long), prev_l[:, :-1]], 1)
            take_diag = diag <= prev_c  # ties prefer the diagonal (as libri-light)
            a = torch.where(take_diag, diag, prev_c)
            a_len = torch.where(take_diag, diag_len, prev_l)
        best, k = torch.cummin(a - s_before, dim=1)
        cost = s + best
        length = a_len.gather(1, k) + (cols[None] - k + 1)
        cost = torch.where(torch.isnan(cost), inf, cost)
        rows_c[:, i], rows_l[:, i] = cost, length
        prev_c, prev_l = cost, length
    idx = torch.arange(B)
    final = rows_c[idx, n - 1, m - 1]
    return final / rows_l[idx, n - 1, m - 1].double()


def dtw_pairs(seqs: list[torch.Tensor], pairs: torch.Tensor, kind: str = "angular",
              max_cells: int = 4_000_000) -> torch.Tensor:
    """DTW cost of ``seqs[i]`` vs ``seqs[j]`` for each row ``(i, j)`` of ``pairs`` (P, 2).

    ``seqs``: (L_i, D) float features, or (L_i,) int unit ids for ``onehot``. Pairs are
    sorted by length and batched under ``max_cells`` (B x N x M) per call. Returns (P,).
    """
    lengths = torch.tensor([len(s) for s in seqs])
    if len(pairs) == 0:
        return torch.zeros(0, dtype=torch.float64)
    li, lj = lengths[pairs[:, 0]], lengths[pairs[:, 1]]
    order = torch.argsort(li * 100_000 + lj)
    out = torch.empty(len(pairs), dtype=torch.float64)
    start = 0
    while start < len(order):
        n_max = int(li[order[start]])
        end = start
        m_max = 0
        while end < len(order):  # lengths grow along `order`, so extend while it fits
            cand_n = max(n_max, int(li[order[end]]))
            cand_m = max(m_max, int(lj[order[end]]))
            if end > start and (end - start + 1) * cand_n * cand_m > max_cells:
                break
            n_max, m_max = cand_n, cand_m
            end += 1
        chunk = order[start:end]
        a = _pad([seqs[int(i)] for i in pairs[chunk, 0]], n_max)
        b = _pad([seqs[int(j)] for j in pairs[chunk, 1]], m_max)
        out[chunk] = dtw_batch(frame_distances(a, b, kind), li[chunk], lj[chunk])
        start = end
    return out


def _pad(xs: list[torch.Tensor], length: int) -> torch.Tensor:
    """Stack (L_i, ...) tensors into (B, length, ...) with zero padding."""
    out = xs[0].new_zeros((len(xs), length, *xs[0].shape[1:]))
    for b, x in enumerate(xs):
        out[b, :len(x)] = x
    return out
