"""Scoring ABX groups in batches: frame distances per block, each distinct pair aligned once.

Every pair of tokens a triplet needs -- (x, a) and (x, b) -- lies in one context, between
one speaker's tokens and another's (or the same speaker's). The frame bank stores tokens
sorted by (context, speaker, label), so a context and each (context, speaker) *run* are
contiguous stretches of frames. With the context kept (triphone ABX), a context of at most
``CONTEXT_CELLS`` frame distances is one block (one matmul of two views, shared by the
within- and the across-speaker triplets, every (a, b) and every X speaker); a larger one
has a block per pair of runs it needs (at most ``RUN_CELLS`` each); every distinct token
pair is aligned once. What is left (word ABX's one huge context) and context-free ABX,
whose categories are resampled for every group, get one gathered block per group: rows X,
columns A then B.

Groups are scored ``BATCH_CELLS`` padded cells at a time, vectorised: the error of a group
is libri-light's -- over every (a, b, x), ``d(b, x) < d(a, x)`` counts 1 and a tie 1/2 (x
!= a within speaker), over the number of triplets -- computed with a sort of each row of
``d(B, x)`` and two binary searches per ``d(a, x)``: O(|X| (|A| + |B|) log |B|) per group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from .abx_groups import Categories, Group
from .dtw import Blocks, FrameBank, block_dtw, slice_dtw

#: a context whose frames give at most this many distances is one block; in a larger one,
#: each pair of (context, speaker) runs is, when it gives at most RUN_CELLS (else the pairs
#: go group by group)
CONTEXT_CELLS = 1_000_000
RUN_CELLS = 4_000_000
#: padded (group, x, a or b) cells per batch
BATCH_CELLS = 1_000_000


@dataclass
class Results:
    """Per condition: the groups' keys (G, 4 or 5) and errors (G,), and the DTWs run."""

    keys: dict[str, list[np.ndarray]] = field(default_factory=dict)
    errors: dict[str, list[np.ndarray]] = field(default_factory=dict)
    n_dtw: int = 0

    def add(self, name: str, keys: np.ndarray, errors: np.ndarray) -> None:
        self.keys.setdefault(name, []).append(keys)
        self.errors.setdefault(name, []).append(errors)

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.keys:
            return np.zeros((0, 4), np.int64), np.zeros(0)
        return np.concatenate(self.keys[name]), np.concatenate(self.errors[name])


class _Slices:
    """Where each token's context and (context, speaker) run lie in the bank, which stores
    the tokens in the categories' order (so both are contiguous stretches of frames)."""

    def __init__(self, cats: Categories, bank: FrameBank) -> None:
        if not np.array_equal(bank.offsets[cats.order], np.sort(bank.offsets)):
            raise ValueError("the frame bank must store the tokens in the categories' order")
        n_tok = len(cats.order)
        self.n_tok = n_tok
        new_ctx = np.ones(len(cats.start), dtype=bool)
        new_ctx[1:] = cats.context[1:] != cats.context[:-1]
        new_run = new_ctx.copy()
        new_run[1:] |= cats.speaker[1:] != cats.speaker[:-1]
        self.ctx, self.run = (np.empty(n_tok, dtype=np.int64) for _ in range(2))
        self.ctx[cats.order] = np.repeat(np.cumsum(new_ctx) - 1, cats.size)
        self.run[cats.order] = np.repeat(np.cumsum(new_run) - 1, cats.size)
        first = bank.offsets[cats.order[cats.start]]  # first frame of each category
        last = bank.offsets[cats.order[cats.start + cats.size - 1]] + \
            bank.lengths[cats.order[cats.start + cats.size - 1]]
        self.ctx_range = np.stack([first[new_ctx], last[np.append(new_ctx[1:], True)]], 1)
        self.run_range = np.stack([first[new_run], last[np.append(new_run[1:], True)]], 1)

    def blocks(self, r_tok: np.ndarray, c_tok: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pair (same context): (is it in a slice block, block ids, (n_blocks, 4) frame
        ranges). A context of at most ``CONTEXT_CELLS`` distances is one block; a larger
        one gives a block per pair of runs, when that holds at most ``RUN_CELLS``."""
        ctx = self.ctx[r_tok]
        span = np.diff(self.ctx_range, axis=1)[:, 0]
        whole = span[ctx] ** 2 <= CONTEXT_CELLS
        rr, rc = self.run[r_tok], self.run[c_tok]
        rspan = np.diff(self.run_range, axis=1)[:, 0]
        runs = ~whole & (rspan[rr] * rspan[rc] <= RUN_CELLS)
        n_runs = len(self.run_range)
        key = np.where(whole, ctx, len(self.ctx_range) + rr * n_runs + rc)
        inside = whole | runs
        uniq, inv = np.unique(key[inside], return_inverse=True)
        is_ctx = uniq < len(self.ctx_range)
        ranges = np.empty((len(uniq), 4), dtype=np.int64)
        ranges[is_ctx, :2] = ranges[is_ctx, 2:] = self.ctx_range[uniq[is_ctx]]
        pair = uniq[~is_ctx] - len(self.ctx_range)
        ranges[~is_ctx, :2] = self.run_range[pair // n_runs]
        ranges[~is_ctx, 2:] = self.run_range[pair % n_runs]
        block = np.full(len(r_tok), -1, dtype=np.int64)
        block[inside] = inv.reshape(-1)
        return inside, block, ranges


def score_groups(bank: FrameBank, cats: Categories, streams: dict[str, Iterable[Group]],
                 use_context: bool, *, max_size_group: int, max_cells: int = 4_000_000,
                 on_groups: Callable[[int], object] | None = None) -> Results:
    """Errors of every group of every stream (condition name -> groups).
    ``on_groups(n)`` is called as groups are scored (progress)."""
    results = Results()
    kept = np.minimum(cats.size, max_size_group).tolist()
    runs = _Slices(cats, bank) if use_context else None
    for name, stream in streams.items():
        batch: list[Group] = []
        kx = ka = kb = 1
        for group in stream:
            batch.append(group)
            ca, cb, cx = group[0], group[1], group[2]
            kx, ka, kb = max(kx, kept[ca if cx < 0 else cx]), max(ka, kept[ca]), max(kb, kept[cb])
            if len(batch) * kx * (ka + kb) >= BATCH_CELLS:
                results.n_dtw += _score(bank, cats, runs, name, batch, max_size_group,
                                        max_cells, results)
                if on_groups is not None:
                    on_groups(len(batch))
                batch, kx, ka, kb = [], 1, 1, 1
        if batch:
            results.n_dtw += _score(bank, cats, runs, name, batch, max_size_group, max_cells,
                                    results)
            if on_groups is not None:
                on_groups(len(batch))
    return results


def _members(cats: Categories, cat: np.ndarray, kept: np.ndarray, samples: list,
             width: int) -> np.ndarray:
    """(G, width) token ids of each group's category (its sample where drawn), -1 = pad."""
    pos = cats.start[cat][:, None] + np.arange(width)[None]
    for row, sample in enumerate(samples):
        if sample is not None:
            pos[row, :len(sample)] = sample
    valid = np.arange(width)[None] < kept[:, None]
    return np.where(valid, cats.order[np.minimum(pos, len(cats.order) - 1)], -1)


def _score(bank: FrameBank, cats: Categories, runs: _Slices | None, name: str,
           groups: list[Group], k: int, max_cells: int, results: Results) -> int:
    """Align every distinct pair of the groups once, then score each group; returns the
    number of DTWs run."""
    G = len(groups)
    ca = np.fromiter((g[0] for g in groups), np.int64, G)
    cb = np.fromiter((g[1] for g in groups), np.int64, G)
    cx = np.fromiter((g[2] for g in groups), np.int64, G)
    sym = bool(cx[0] < 0)  # a stream is all within-speaker or all across
    cx = ca if sym else cx
    na, nb, nx = (np.minimum(cats.size[c], k) for c in (ca, cb, cx))
    KA, KB, KX = int(na.max()), int(nb.max()), int(nx.max())
    A = _members(cats, ca, na, [g[3] for g in groups], KA)
    B = _members(cats, cb, nb, [g[4] for g in groups], KB)
    X = A if sym else _members(cats, cx, nx, [g[5] for g in groups], KX)
    g = np.arange(G)[:, None, None]
    i, j, kk = (np.arange(w)[None, :, None] if a == 0 else np.arange(w)[None, None, :]
                for a, w in ((0, KX), (1, KA), (1, KB)))
    if sym:  # libri-light fills d(a_p, a_q) for p < q with a_p first, and mirrors it
        lo, hi = np.minimum(i, j), np.minimum(np.maximum(i, j), KA - 1)
        r_ax, c_ax = A[g, lo], A[g, hi]
        rl_ax, cl_ax = np.broadcast_to(lo, r_ax.shape), np.broadcast_to(hi, r_ax.shape)
    else:
        r_ax, c_ax = np.broadcast_to(X[:, :, None], (G, KX, KA)), \
            np.broadcast_to(A[:, None, :], (G, KX, KA))
        rl_ax, cl_ax = np.broadcast_to(i, r_ax.shape), np.broadcast_to(j, r_ax.shape)
    ok_ax = (i < nx[:, None, None]) & (j < na[:, None, None]) & ~(sym & (i == j))
    r_bx, c_bx = np.broadcast_to(X[:, :, None], (G, KX, KB)), \
        np.broadcast_to(B[:, None, :], (G, KX, KB))
    rl_bx = np.broadcast_to(i, r_bx.shape)
    cl_bx = np.broadcast_to(na[:, None, None] + kk, r_bx.shape)
    ok_bx = (i < nx[:, None, None]) & (kk < nb[:, None, None])
    gg = np.concatenate([np.broadcast_to(g, ok_ax.shape)[ok_ax],
                         np.broadcast_to(g, ok_bx.shape)[ok_bx]])
    r_tok = np.concatenate([r_ax[ok_ax], r_bx[ok_bx]])
    c_tok = np.concatenate([c_ax[ok_ax], c_bx[ok_bx]])
    d = np.empty(len(r_tok), dtype=np.float32)
    n_dtw = 0
    # pairs in a context or run block: one DTW per distinct token pair
    inside = np.zeros(len(r_tok), dtype=bool)
    if runs is not None:
        uniq, inv = np.unique(r_tok * runs.n_tok + c_tok, return_inverse=True)
        inv = inv.reshape(-1)
        ur, uc = uniq // runs.n_tok, uniq % runs.n_tok
        u_inside, u_block, ranges = runs.blocks(ur, uc)
        sel = np.flatnonzero(u_inside)
        dist = slice_dtw(bank, ranges, np.stack([u_block[sel], ur[sel], uc[sel]], 1),
                         max_cells=max_cells)
        u_d = np.zeros(len(uniq), dtype=np.float32)
        u_d[sel] = dist
        inside = u_inside[inv]
        d[inside] = u_d[inv[inside]]
        n_dtw += len(sel)
    # the rest: one block per group (rows X, columns A then B), gathered
    own = ~inside
    if own.any():
        r_loc = np.concatenate([rl_ax[ok_ax], rl_bx[ok_bx]])[own]
        c_loc = np.concatenate([cl_ax[ok_ax], cl_bx[ok_bx]])[own]
        used, block = np.unique(gg[own], return_inverse=True)
        block = block.reshape(-1)
        Xu, Au, Bu = X[used], A[used], B[used]
        rows = Blocks(Xu[Xu >= 0], np.concatenate([[0], np.cumsum(nx[used])]))
        AB = np.concatenate([Au, Bu], 1)
        cols = Blocks(AB[AB >= 0], np.concatenate([[0], np.cumsum(na[used] + nb[used])]))
        R, C = int(np.diff(rows.ptr).max()), int(np.diff(cols.ptr).max())
        uniq, inv = np.unique((block * R + r_loc) * C + c_loc, return_inverse=True)
        pairs = np.stack([uniq // (R * C), (uniq // C) % R, uniq % C], 1)
        d[own] = block_dtw(bank, rows, cols, pairs, max_cells=max_cells)[inv.reshape(-1)]
        n_dtw += len(uniq)
    n_ax = int(ok_ax.sum())
    d_ax = np.full(ok_ax.shape, -np.inf, dtype=np.float32)
    d_ax[ok_ax] = d[:n_ax]
    d_bx = np.full(ok_bx.shape, np.inf, dtype=np.float32)
    d_bx[ok_bx] = d[n_ax:]
    sorted_bx = torch.from_numpy(np.sort(d_bx, axis=2)).reshape(G * KX, KB)
    vals = torch.from_numpy(d_ax).reshape(G * KX, KA)
    closer = torch.searchsorted(sorted_bx, vals).numpy()  # b with d(b, x) < d(a, x)
    tied = torch.searchsorted(sorted_bx, vals, right=True).numpy() - closer
    wrong = ((closer + 0.5 * tied).reshape(ok_ax.shape) * ok_ax).sum((1, 2))
    errors = wrong / (ok_ax.sum((1, 2)) * nb)
    cols_key = [cats.context[ca], cats.label[ca], cats.label[cb], cats.speaker[ca]]
    if not sym:
        cols_key.append(cats.speaker[cx])
    results.add(name, np.stack(cols_key, 1), errors)
    return n_dtw
