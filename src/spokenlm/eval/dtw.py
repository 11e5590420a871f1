"""Frame distances and dynamic time warping (DTW) for ABX, batched with torch (CPU or GPU).

Per pair the recurrence and normalisation are libri-light's (``ABX_src/dtw.pyx``, as
packaged in ``zerospeech-libriabx2``), in float32 as there::

    C[i, j] = d[i, j] + min(C[i-1, j], C[i-1, j-1], C[i, j-1]),   C[0, 0] = d[0, 0]

and the result is ``C[n-1, m-1] / L``, ``L`` the number of cells on the optimal path traced
back from the end, preferring the diagonal, then ``j - 1``, then ``i - 1`` on ties (ties
are everywhere with unit ids, so the order matters). The batch walks the anti-diagonals:
every cell of one anti-diagonal depends only on the two before it, so each step is a few
elementwise ops over (cells, pairs), and the only Python loop is over ``n + m - 1`` steps,
never over frame pairs. Each cell keeps the length of its path, so no backtrack is needed.

Frame distances (``kind``): ``angular`` = arccos(cosine) / pi of L2-normalised frames,
with libri-light's singularity (a frame of norm 0 is at distance 1 from every other frame
and 0 from another null frame); ``euclidean``; ``onehot`` for unit ids (0 if equal, else
1: twice the angular distance of one-hot vectors, so every DTW comparison is the same).

:func:`slice_dtw` and :func:`block_dtw` serve ABX: the frame distances of a *block* of
tokens come from one matmul and every pair of the block reads its sub-matrix, so distances
shared by many triplets are computed once. :func:`slice_dtw` blocks are contiguous
stretches of the bank (a triphone context, or two of its (context, speaker) runs: views,
nothing copied -- gathering frames costs more than the matmul); :func:`block_dtw` blocks are
token lists, gathered first (context-free ABX resamples its categories for every group).
:func:`dtw_pairs` is the plain interface (a list of sequences, a list of pairs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

KINDS = ("angular", "euclidean", "onehot")


def normalise_frames(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, D) float frames -> (unit-norm frames (T, D) float32, null frames (T,) bool)."""
    x = x.float()
    norm = x.norm(dim=-1, keepdim=True)
    zero = norm[:, 0] == 0
    return x / norm.clamp_min(torch.finfo(torch.float32).tiny), zero


def _angular(cos: torch.Tensor, zero_x: torch.Tensor | None,
             zero_y: torch.Tensor | None) -> torch.Tensor:
    """Cosines (B, N, M) -> angular distances, null frames at distance 1 (0 between two)."""
    if zero_x is not None and zero_y is not None and (bool(zero_x.any()) or bool(zero_y.any())):
        zx, zy = zero_x[:, :, None], zero_y[:, None, :]
        cos = torch.where(zx & zy, 1.0, torch.where(zx | zy, -1.0, cos))
    return torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi


def frame_distances(x: torch.Tensor, y: torch.Tensor, kind: str = "angular") -> torch.Tensor:
    """Distances between every frame of ``x`` (B, N, D) and of ``y`` (B, M, D) -> (B, N, M).

    For ``onehot``, ``x`` and ``y`` are (B, N) and (B, M) integer unit ids.
    """
    if kind == "onehot":
        return (x[:, :, None] != y[:, None, :]).to(torch.float32)
    if kind == "angular":
        (xn, zx), (yn, zy) = (normalise_frames(t.reshape(-1, t.shape[-1])) for t in (x, y))
        cos = torch.bmm(xn.view(x.shape), yn.view(y.shape).transpose(1, 2))
        return _angular(cos, zx.view(x.shape[:2]), zy.view(y.shape[:2]))
    if kind == "euclidean":
        return torch.cdist(x.float(), y.float())
    raise ValueError(f"distance {kind!r}: choose one of {', '.join(KINDS)}")


def dtw_batch(dist: torch.Tensor, n: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Path-length-normalised DTW cost of each pair (libri-light's, in float32).

    Args:
        dist: (B, N, M) frame distances; cells beyond a pair's own lengths are ignored
            (no cell of the pair's matrix depends on them).
        n, m: (B,) int lengths of the two sequences of each pair (1 <= n <= N, 1 <= m <= M).
    Returns:
        (B,) float32 costs.
    """
    B, N, M = dist.shape
    device = dist.device
    if B == 0:
        return torch.zeros(0, dtype=torch.float32, device=device)
    K = N + M - 1
    i = torch.arange(N, device=device)
    j = torch.arange(K, device=device)[:, None] - i[None, :]  # (K, N): column of cell i, diag k
    valid = (j >= 0) & (j < M)
    flat = (i[None, :] * M + j.clamp(0, M - 1)).reshape(-1)
    skew = dist.float().reshape(B, N * M)[:, flat].view(B, K, N).permute(1, 2, 0).contiguous()
    skew.masked_fill_(~valid[:, :, None], float("inf"))  # (K, N, B): diagonal k, cell i

    # three rotating diagonals, row 0 a sentinel (+inf) so that cell i-1 of i=0 is "none"
    cost = [torch.full((N + 1, B), float("inf"), device=device) for _ in range(3)]
    length = [torch.zeros((N + 1, B), dtype=torch.int32, device=device) for _ in range(3)]
    cost[0][1] = skew[0, 0]  # diagonal k lives in buffer k % 3
    length[0][1] = 1
    n_d, m_d = n.to(device).long(), m.to(device).long()
    ends = (n_d + m_d - 2).cpu().numpy()
    order = np.argsort(ends, kind="stable")
    stops, starts = np.unique(ends[order], return_index=True)
    at = {int(k): torch.from_numpy(order[s:e]).to(device)
          for k, s, e in zip(stops, starts, list(starts[1:]) + [len(order)])}
    out_c = torch.empty(B, device=device)
    out_l = torch.empty(B, dtype=torch.int32, device=device)

    def record(k: int, c: torch.Tensor, ln: torch.Tensor) -> None:
        idx = at.get(k)
        if idx is not None:
            out_c[idx], out_l[idx] = c[n_d[idx], idx], ln[n_d[idx], idx]

    record(0, cost[0], length[0])
    for k in range(1, K):
        p2, p1, cur = cost[(k + 1) % 3], cost[(k + 2) % 3], cost[k % 3]
        l2, l1, lcur = length[(k + 1) % 3], length[(k + 2) % 3], length[k % 3]
        up, left, diag = p1[:-1], p1[1:], p2[:-1]  # C[i-1, j], C[i, j-1], C[i-1, j-1]
        take_diag = (diag <= left) & (diag <= up)
        take_left = left <= up
        best = torch.where(take_diag, diag, torch.where(take_left, left, up))
        best_l = torch.where(take_diag, l2[:-1], torch.where(take_left, l1[1:], l1[:-1]))
        torch.add(skew[k], best, out=cur[1:])
        torch.add(best_l, 1, out=lcur[1:])
        record(k, cur, lcur)
    return (out_c.double() / out_l.double()).float()


@dataclass
class FrameBank:
    """Every token's frames in one flat tensor, prepared for ``kind``.

    ``frames``: (T, D) float32 (unit-normalised for ``angular``) or (T,) int64 unit ids
    (``onehot``); token ``t`` owns rows ``offsets[t] : offsets[t] + lengths[t]``.
    """

    frames: torch.Tensor
    zero: torch.Tensor | None  # (T,) bool null frames (angular only)
    offsets: np.ndarray  # (n_tokens,) int64
    lengths: np.ndarray  # (n_tokens,) int64
    kind: str

    @classmethod
    def build(cls, seqs: Sequence[torch.Tensor], kind: str = "angular",
              device: str | torch.device = "cpu", order: np.ndarray | None = None) -> FrameBank:
        """From per-token frames (L_i, D) float or (L_i,) int ids (``onehot``), L_i >= 1,
        stored in the token order ``order`` (default: as given), so that tokens adjacent
        in it are adjacent in ``frames``."""
        if kind not in KINDS:
            raise ValueError(f"distance {kind!r}: choose one of {', '.join(KINDS)}")
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        if len(lengths) and lengths.min() < 1:
            raise ValueError("every sequence needs at least one frame")
        order = np.arange(len(seqs)) if order is None else np.asarray(order, dtype=np.int64)
        offsets = np.empty(len(seqs), dtype=np.int64)
        offsets[order] = np.concatenate([[0], np.cumsum(lengths[order])[:-1]]) if len(seqs) \
            else np.zeros(0, np.int64)
        if kind == "onehot":
            flat = torch.cat([torch.as_tensor(seqs[t]).long().reshape(-1) for t in order]) \
                if len(seqs) else torch.zeros(0, dtype=torch.long)
            return cls(flat.to(device), None, offsets, lengths, kind)
        flat = torch.cat([torch.as_tensor(seqs[t]).float() for t in order]).to(device)
        if kind == "angular":  # in place: the bank is the largest thing ABX holds
            norm = flat.norm(dim=-1, keepdim=True)
            zero = norm[:, 0] == 0
            flat.div_(norm.clamp_min_(torch.finfo(torch.float32).tiny))
            return cls(flat, zero, offsets, lengths, kind)
        return cls(flat, None, offsets, lengths, kind)

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def distances(self, rows: Blocks, cols: Blocks) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Frame distances (n_blocks, R, C) between the row tokens and the column tokens of
        each block (one batched matmul), and each token's first frame within its block
        (aligned with ``rows.tokens`` / ``cols.tokens``)."""
        (r_idx, r_off), (c_idx, c_off) = rows.layout(self.lengths, self.offsets), \
            cols.layout(self.lengths, self.offsets)
        rt, ct = torch.from_numpy(r_idx).to(self.device), torch.from_numpy(c_idx).to(self.device)
        xr, xc = (torch.index_select(self.frames, 0, t.clamp_min(0).reshape(-1)).view(
            *t.shape, *self.frames.shape[1:]) for t in (rt, ct))
        if self.kind == "onehot":
            d = (xr[:, :, None] != xc[:, None, :]).to(torch.float32)
        elif self.kind == "euclidean":
            d = torch.cdist(xr, xc)
        else:
            cos = torch.bmm(xr, xc.transpose(1, 2))
            d = _angular(cos, self.zero[rt.clamp_min(0)] & (rt >= 0),
                         self.zero[ct.clamp_min(0)] & (ct >= 0))
        return d, r_off, c_off


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, counts)])``, vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(first - np.asarray(starts), counts)


@dataclass
class Blocks:
    """Token lists of several blocks, packed (CSR): block ``b`` is
    ``tokens[ptr[b]:ptr[b + 1]]``."""

    tokens: np.ndarray  # (n,) int64 token ids
    ptr: np.ndarray  # (n_blocks + 1,) int64

    @classmethod
    def from_ranges(cls, order: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> Blocks:
        """Blocks that are ranges ``order[start:start + count]`` of one token order."""
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(order[ranges(starts, counts)], ptr)

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def select(self, blocks: np.ndarray) -> Blocks:
        counts = np.diff(self.ptr)[blocks]
        return Blocks.from_ranges(self.tokens, self.ptr[blocks], counts)

    def frames(self, lengths: np.ndarray) -> np.ndarray:
        """Frames of each block: (n_blocks,)."""
        csum = np.concatenate([[0], np.cumsum(lengths[self.tokens])])
        return csum[self.ptr[1:]] - csum[self.ptr[:-1]]

    def layout(self, lengths: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n_blocks, F) frame indices of each block's frames, padded with -1; (n,) the
        offset of each token's first frame within its block)."""
        ln = lengths[self.tokens]
        csum = np.concatenate([[0], np.cumsum(ln)])
        block_of = np.repeat(np.arange(len(self)), np.diff(self.ptr))
        local = csum[:-1] - csum[self.ptr[:-1]][block_of]
        width = max(1, int(self.frames(lengths).max(initial=1)))
        idx = np.full((len(self), width), -1, dtype=np.int64)
        flat = ranges(block_of * width + local, ln)
        idx.reshape(-1)[flat] = ranges(offsets[self.tokens], ln)
        return idx, local


def block_dtw(bank: FrameBank, rows: Blocks, cols: Blocks, pairs: np.ndarray, *,
              max_cells: int = 4_000_000, max_block_cells: int = 8_000_000) -> np.ndarray:
    """DTW of token pairs that lie in blocks.

    Args:
        rows, cols: per block, the tokens of its rows and of its columns.
        pairs: (P, 3) int (block, index into the block's rows, index into its columns);
            the row token is the first sequence of the DTW (the ``i`` of ``C[i, j]``).
        max_cells: bound on pairs x N x M per DTW call; ``max_block_cells``: on blocks x
            row frames x column frames per distance matmul (and four times it on the
            frames x feature dim gathered for it). Blocks are sorted by size first, so
            padding stays small.
    Returns:
        (P,) float32 costs.
    """
    n_r, n_c = rows.frames(bank.lengths), cols.frames(bank.lengths)
    dim = int(bank.frames.shape[1]) if bank.frames.dim() == 2 else 1
    rank = np.lexsort((n_c, n_r))  # blocks by size
    sr, sc = n_r[rank], n_c[rank]

    def window_stop(start: int) -> int:
        window = min(len(rank) - start, max_block_cells // max(1, int(sr[start])) + 1)
        r, c = sr[start:start + window], np.maximum.accumulate(sc[start:start + window])
        count = np.arange(1, window + 1)
        cost = np.maximum(count * r * c, count * (r + c) * dim // 4)
        return start + max(1, int(np.searchsorted(cost, max_block_cells, side="right")))

    def costs(start: int, stop: int, sub: np.ndarray) -> np.ndarray:
        blocks = rank[start:stop]
        local = np.empty(len(rank), dtype=np.int64)
        local[blocks] = np.arange(len(blocks))
        sub = np.stack([local[sub[:, 0]], sub[:, 1], sub[:, 2]], 1)
        return _dtw_in_blocks(bank, rows.select(blocks), cols.select(blocks), sub, max_cells)

    return _costs_by_window(pairs, rank, window_stop, costs)


def _costs_by_window(pairs: np.ndarray, walk: np.ndarray, window_stop: Callable[[int], int],
                     costs: Callable[[int, int, np.ndarray], np.ndarray]) -> np.ndarray:
    """(P,) float32 DTW costs of ``pairs`` (P, 3) (block, row, column), a window of blocks
    at a time: the blocks are walked in the order ``walk`` (n_blocks,) lists them, a window
    runs from position ``start`` to ``window_stop(start)`` of it, and ``costs(start, stop,
    sub)`` gives the costs of the pairs ``sub`` (k, 3) whose blocks lie in that window."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    out = np.empty(len(pairs), dtype=np.float32)
    if len(pairs) == 0:
        return out
    pos = np.empty(len(walk), dtype=np.int64)
    pos[walk] = np.arange(len(walk))
    order = np.argsort(pos[pairs[:, 0]], kind="stable")  # pairs in walking order
    walked = pos[pairs[order, 0]]
    start = 0
    while start < len(walk):
        stop = window_stop(start)
        lo, hi = np.searchsorted(walked, [start, stop])
        if hi > lo:
            sel = order[lo:hi]
            out[sel] = costs(start, stop, pairs[sel])
        start = stop
    return out


def _dtw_in_blocks(bank: FrameBank, rows: Blocks, cols: Blocks, pairs: np.ndarray,
                   max_cells: int) -> np.ndarray:
    """:func:`block_dtw` for blocks whose distances fit in one matmul."""
    out = np.empty(len(pairs), dtype=np.float32)
    dist, r_off, c_off = bank.distances(rows, cols)
    _, R, C = dist.shape
    flat = dist.reshape(-1)
    g = pairs[:, 0]
    ri, ci = rows.ptr[g] + pairs[:, 1], cols.ptr[g] + pairs[:, 2]
    n, m = bank.lengths[rows.tokens[ri]], bank.lengths[cols.tokens[ci]]
    ro, co = r_off[ri], c_off[ci]
    order = np.lexsort((m, n))
    for chunk in _chunks(n[order], m[order], max_cells):
        sel = order[chunk]
        N, M = int(n[sel].max()), int(m[sel].max())
        ii = np.minimum(ro[sel, None] + np.arange(N)[None], R - 1)  # (P, N)
        jj = np.minimum(co[sel, None] + np.arange(M)[None], C - 1)  # (P, M)
        index = (g[sel, None, None] * R + ii[:, :, None]) * C + jj[:, None, :]
        d = flat[torch.from_numpy(index).to(flat.device)]
        cost = dtw_batch(d, torch.from_numpy(n[sel]), torch.from_numpy(m[sel]))
        out[sel] = cost.cpu().numpy()
    return out


def slice_dtw(bank: FrameBank, blocks: np.ndarray, pairs: np.ndarray, *,
              max_cells: int = 4_000_000, max_block_cells: int = 8_000_000) -> np.ndarray:
    """DTW of token pairs whose frames lie in contiguous stretches of the bank.

    Args:
        blocks: (n_blocks, 4) frame ranges ``[r0, r1)`` x ``[c0, c1)`` of ``bank.frames``;
            the distances of a block come from one matmul of two views (nothing gathered).
        pairs: (P, 3) int (block, row token, column token); the row token's frames must
            lie in the block's row range, the column token's in its column range.
    Returns:
        (P,) float32 costs.
    """
    cells = (blocks[:, 1] - blocks[:, 0]) * (blocks[:, 3] - blocks[:, 2])

    def window_stop(start: int) -> int:  # consecutive blocks, up to max_block_cells at a time
        total = np.cumsum(cells[start:])
        return start + max(1, int(np.searchsorted(total, max_block_cells, side="right")))

    def costs(start: int, stop: int, sub: np.ndarray) -> np.ndarray:
        return _slice_batch(bank, blocks[start:stop], sub - [start, 0, 0], max_cells)

    return _costs_by_window(pairs, np.arange(len(blocks)), window_stop, costs)


def _slice_batch(bank: FrameBank, blocks: np.ndarray, pairs: np.ndarray,
                 max_cells: int) -> np.ndarray:
    """:func:`slice_dtw` for blocks that fit in one buffer."""
    h, w = blocks[:, 1] - blocks[:, 0], blocks[:, 3] - blocks[:, 2]
    base = np.concatenate([[0], np.cumsum(h * w)])
    buf = torch.empty(int(base[-1]), device=bank.device)
    F = bank.frames
    for b, (r0, r1, c0, c1) in enumerate(blocks.tolist()):
        view = buf[int(base[b]): int(base[b + 1])].view(r1 - r0, c1 - c0)
        if bank.kind == "onehot":
            view.copy_(F[r0:r1, None] != F[None, c0:c1])
        elif bank.kind == "euclidean":
            view.copy_(torch.cdist(F[r0:r1], F[c0:c1]))
        else:
            torch.mm(F[r0:r1], F[c0:c1].T, out=view)
    g, rt, ct = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    n, m = bank.lengths[rt], bank.lengths[ct]
    ro, co = bank.offsets[rt] - blocks[g, 0], bank.offsets[ct] - blocks[g, 2]
    out = np.empty(len(pairs), dtype=np.float32)
    order = np.lexsort((m, n))
    for chunk in _chunks(n[order], m[order], max_cells):
        sel = order[chunk]
        N, M = int(n[sel].max()), int(m[sel].max())
        ii = ro[sel, None] + np.minimum(np.arange(N)[None], n[sel, None] - 1)  # (P, N)
        jj = co[sel, None] + np.minimum(np.arange(M)[None], m[sel, None] - 1)  # (P, M)
        index = base[g[sel], None, None] + ii[:, :, None] * w[g[sel], None, None] + jj[:, None, :]
        d = buf[torch.from_numpy(index).to(buf.device)]
        if bank.kind == "angular":
            fr = torch.from_numpy(ii + blocks[g[sel], 0, None]).to(buf.device)
            fc = torch.from_numpy(jj + blocks[g[sel], 2, None]).to(buf.device)
            d = _angular(d, bank.zero[fr], bank.zero[fc])
        cost = dtw_batch(d, torch.from_numpy(n[sel]), torch.from_numpy(m[sel]))
        out[sel] = cost.cpu().numpy()
    return out


def _chunks(n: np.ndarray, m: np.ndarray, max_cells: int) -> list[slice]:
    """Slices of pairs sorted by (n, m) such that count x max(n) x max(m) <= max_cells
    (a pair too big for the budget gets a chunk of its own)."""
    out, start, P = [], 0, len(n)
    while start < P:
        end = int(np.searchsorted(n, n[start], side="right"))  # one n per chunk
        cap = max(1, max_cells // (int(n[start]) * int(m[start])))
        window = m[start: min(end, start + cap)].astype(np.int64)
        cells = np.arange(1, len(window) + 1) * window * int(n[start])  # nondecreasing
        stop = start + max(1, int(np.searchsorted(cells, max_cells, side="right")))
        out.append(slice(start, stop))
        start = stop
    return out


def dtw_pairs(seqs: Sequence[torch.Tensor], pairs: torch.Tensor, kind: str = "angular",
              max_cells: int = 4_000_000) -> torch.Tensor:
    """DTW cost of ``seqs[i]`` (rows) vs ``seqs[j]`` for each row ``(i, j)`` of ``pairs``
    (P, 2). ``seqs``: (L_i, D) float features, or (L_i,) int unit ids for ``onehot``.
    Returns (P,) float32."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return torch.zeros(0, dtype=torch.float32)
    bank = FrameBank.build(seqs, kind)
    one = np.arange(len(pairs) + 1, dtype=np.int64)  # one block per pair
    zeros = np.zeros(len(pairs), dtype=np.int64)
    local = np.stack([np.arange(len(pairs)), zeros, zeros], 1)
    return torch.from_numpy(block_dtw(bank, Blocks(pairs[:, 0], one), Blocks(pairs[:, 1], one),
                                      local, max_cells=max_cells))
