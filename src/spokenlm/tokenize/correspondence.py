"""Speaker-invariant frame features from pairs of recordings that say the same thing in two
voices: a correspondence autoencoder (Kamper, Elsner, Jansen & Goldwater, ICASSP 2015).

Each pair's frames are aligned by dynamic time warping (:func:`dtw_path`, on frames
z-scored per dimension). An MLP then learns to map a frame of one voice, with ``context``
neighbours on each side, to the aligned frame of the other voice, both ways, through a
``dims``-wide bottleneck; the bottleneck is the new feature. What the two voices share (the
phone) passes; what differs between them (the voice) has no target to serve and is
squeezed out. No transcript is used: only the knowledge that two recordings have the same
content (the synthetic corpus makes them with ``spokenlm data synth --pairs N``; with real
speech, the same sentence read by two speakers, or a voice-converted copy).

On the demo's corpora the bottleneck's units lift spot-the-word on held-out voices and
leave acceptability as it was (measured in benchmarks/README.md, "Pairs of voices").

:class:`CorrespondenceTransform` is the saved part, applied to encoder features before
k-means by :class:`~spokenlm.tokenize.tokenizer.SpeechTokenizer`: a whole utterance at once
(:meth:`~CorrespondenceTransform.apply`) or chunk by chunk with the same result
(:meth:`~CorrespondenceTransform.stream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common.errors import ArtifactError, InputError
from ..common.progress import log

TRANSFORM_NAME = "transform.safetensors"


@dataclass(frozen=True)
class CorrespondenceOptions:
    """The autoencoder's shape and training (``tokenize train --pair-*``)."""

    dims: int = 64  # bottleneck width: the feature dimension k-means sees
    context: int = 2  # frames stacked on each side of the input frame
    hidden: int = 256  # width of the two hidden layers each side of the bottleneck
    epochs: int = 5
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0

    def check(self) -> CorrespondenceOptions:
        bad = [f"{k}={v}" for k, v in (("dims", self.dims), ("hidden", self.hidden),
                                       ("epochs", self.epochs), ("batch_size", self.batch_size))
               if v < 1]
        if self.context < 0:
            bad.append(f"context={self.context}")
        if not self.lr > 0:
            bad.append(f"lr={self.lr}")
        if bad:
            raise InputError(f"correspondence autoencoder: {', '.join(bad)}: dims, hidden, "
                             f"epochs and batch size must be >= 1, context >= 0, lr > 0")
        return self


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The DTW alignment of frames ``a`` (N, D) and ``b`` (M, D) under Euclidean frame
    distances, steps (1, 0), (0, 1), (1, 1): index arrays (L,) of aligned frames, from
    (0, 0) to (N - 1, M - 1), N - 1 + M - 1 >= L - 1 >= max(N, M) - 1.

    Each row of the cost matrix is one vectorised min-plus scan: with ``m[j]`` the best of
    the row above at ``j`` and ``j - 1`` and ``S`` the prefix sums of the row's distances,
    ``C[i, j] = S[j] + min_{k <= j} (m[k] - S[k - 1])``. The trace back prefers the
    diagonal on ties.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError(f"dtw_path: both sequences need frames, got {n} and {m}")
    d = np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T,
                           0.0))  # (N, M)
    cost = np.empty((n, m))
    cost[0] = np.cumsum(d[0])
    for i in range(1, n):
        above = cost[i - 1]
        best = above.copy()
        best[1:] = np.minimum(above[1:], above[:-1])
        s = np.cumsum(d[i])
        cost[i] = s + np.minimum.accumulate(best - np.concatenate([[0.0], s[:-1]]))
    ia, ib = [n - 1], [m - 1]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diag, up, left = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if diag <= up and diag <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        ia.append(i)
        ib.append(j)
    return np.array(ia[::-1]), np.array(ib[::-1])


def align_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`dtw_path` of each pair on frames z-scored with the statistics of all the
    pairs' frames (so that no one coefficient, e.g. energy, decides the alignment)."""
    x = np.concatenate([f for ab in pairs for f in ab]).astype(np.float64)
    mu, sd = x.mean(0), x.std(0) + 1e-8
    return [dtw_path((a - mu) / sd, (b - mu) / sd) for a, b in pairs]


def context_indices(stop: int, context: int, start: int = 0,
                    total: int | None = None) -> np.ndarray:
    """(stop - start, 2 context + 1) indices of the frames stacked for frames
    ``start..stop-1``: ``t - context .. t + context`` clipped to ``[0, total - 1]``
    (``total`` None: no right clip, the frames exist)."""
    t = np.arange(start, stop)[:, None] + np.arange(-context, context + 1)
    return np.clip(t, 0, None if total is None else total - 1)


class CorrespondenceTransform(torch.nn.Module):
    """Frames (F, D_in) -> bottleneck features (F, dims): z-scored with the pairs'
    statistics, stacked with ``context`` neighbours each side (edge frames repeated), then
    Linear-tanh-Linear-tanh-Linear."""

    def __init__(self, input_dim: int, dims: int, context: int, hidden: int) -> None:
        super().__init__()
        self.input_dim, self.dims, self.context, self.hidden = input_dim, dims, context, hidden
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        width = input_dim * (2 * context + 1)
        self.net = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
                                       torch.nn.Linear(hidden, dims))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        """(N, 2 context + 1, D_in) raw neighbour frames -> (N, dims)."""
        z = (stacked - self.mean) / self.std
        return self.net(z.reshape(len(z), -1))

    @torch.no_grad()
    def _rows(self, frames: np.ndarray, idx: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(frames[idx], dtype=np.float32))
        return self(x).numpy()

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """Features (F, D_in) of one utterance -> float32 (F, dims)."""
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise InputError(f"correspondence transform: expected (frames, {self.input_dim}) "
                             f"features, got {tuple(feats.shape)}")
        if not len(feats):
            return np.zeros((0, self.dims), np.float32)
        return self._rows(feats, context_indices(len(feats), self.context, total=len(feats)))

    def stream(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Consecutive feature chunks (F_i, D_in) of one long utterance -> consecutive
        (G_i, dims) blocks whose concatenation equals :meth:`apply` of the whole: a frame is
        emitted once its ``context`` right neighbours have arrived, the rest at the end."""
        c = self.context
        held = np.zeros((0, self.input_dim), np.float32)  # frames [received - len(held), received)
        received = emitted = 0
        for f in chunks:
            if not len(f):
                continue
            held = np.concatenate([held, np.asarray(f, np.float32)])
            received += len(f)
            ready = received - c
            if ready > emitted:
                first = received - len(held)
                idx = context_indices(ready, c, start=emitted) - first
                yield self._rows(held, idx)
                emitted = ready
            held = held[max(0, emitted - c - (received - len(held))):]
        if received > emitted:
            first = received - len(held)
            yield self._rows(held, context_indices(received, c, start=emitted, total=received) - first)

    # ---- save / load ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"kind": "correspondence", "input_dim": self.input_dim, "dims": self.dims,
                "context": self.context, "hidden": self.hidden}

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path))

    @classmethod
    def load(cls, directory: Path, config: Any, where: str) -> CorrespondenceTransform:
        """From a tokenizer directory's ``transform`` config entry and its weights file."""
        from safetensors.torch import load_file

        keys = ("input_dim", "dims", "context", "hidden")
        if (not isinstance(config, dict) or config.get("kind") != "correspondence"
                or not all(isinstance(config.get(k), int) for k in keys)):
            raise ArtifactError(f"{where}: bad 'transform' entry {config!r}; train the "
                                f"tokenizer again")
        model = cls(*(config[k] for k in keys))
        path = directory / TRANSFORM_NAME
        if not path.exists():
            raise ArtifactError(f"{path}: missing (the tokenizer's config names a "
                                f"correspondence transform); copy the whole tokenizer folder")
        try:
            model.load_state_dict(load_file(str(path)))
        except (RuntimeError, KeyError, OSError, ValueError) as e:
            raise ArtifactError(f"{path}: does not match its config ({e}); train the "
                                f"tokenizer again") from e
        return model.eval()


def fit_correspondence(pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                       opts: CorrespondenceOptions = CorrespondenceOptions()
                       ) -> CorrespondenceTransform:
    """Train the autoencoder on ``pairs`` of features of the same content in two voices,
    (N_i, D) and (M_i, D): DTW-align each pair, then minimise the squared error of the
    other voice's aligned frame (z-scored) from the stacked frame of one voice, both ways."""
    opts.check()
    if not pairs:
        raise InputError("correspondence autoencoder: no pairs to learn from")
    gen = torch.Generator().manual_seed(opts.seed)  # batch order; the init below is seeded
    c = opts.context                                   # without touching torch's global RNG
    x_idx, y_rows, frames, offset = [], [], [], 0
    for (a, b), (ia, ib) in zip(pairs, align_pairs(pairs)):
        # frames of a then b in one bank; inputs are neighbour indices, targets frames
        na = len(a)
        x_idx += [context_indices(na, c, total=na)[ia] + offset,
                  context_indices(len(b), c, total=len(b))[ib] + offset + na]
        y_rows += [offset + na + ib, offset + ia]
        frames += [a, b]
        offset += na + len(b)
    bank = torch.from_numpy(np.concatenate(frames).astype(np.float32))  # (T, D)
    xi = torch.from_numpy(np.concatenate(x_idx))  # (L, 2c + 1)
    yi = torch.from_numpy(np.concatenate(y_rows))  # (L,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        model = CorrespondenceTransform(bank.shape[1], opts.dims, c, opts.hidden)
        decoder = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(opts.dims, opts.hidden),
                                      torch.nn.Tanh(), torch.nn.Linear(opts.hidden, bank.shape[1]))
    model.mean.copy_(bank.mean(0))
    model.std.copy_(bank.std(0) + 1e-5)
    target = (bank - model.mean) / model.std
    optim = torch.optim.Adam([*model.parameters(), *decoder.parameters()], lr=opts.lr)
    log(f"correspondence autoencoder: {len(pairs)} pairs, {len(yi)} aligned frames both "
        f"ways, {bank.shape[1]} x {2 * c + 1} -> {opts.dims}")
    for epoch in range(opts.epochs):
        order = torch.randperm(len(yi), generator=gen)
        total = 0.0
        for s in range(0, len(order), opts.batch_size):
            batch = order[s:s + opts.batch_size]
            loss = torch.nn.functional.mse_loss(decoder(model(bank[xi[batch]])),
                                                target[yi[batch]])
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(batch)
        log(f"correspondence autoencoder epoch {epoch + 1}/{opts.epochs}: "
            f"mse {total / len(yi):.4f}")
    return model.eval()
