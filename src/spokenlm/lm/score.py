"""Batched log-likelihood of unit sequences under a :class:`~spokenlm.lm.model.UnitLM`.

Sequences are sorted by length and packed into right-padded batches holding at most
``batch_tokens`` tokens (padding included), one forward pass per batch; results come back in
input order. Used by the spot-the-word / acceptability / story-cloze metrics.

Items that share a prompt (story cloze: one story, several endings) go through
:func:`log_likelihood_shared`: the prompt runs once, its KV cache is copied to each ending,
and the endings run from it -- the same numbers as scoring every ``prompt + ending`` in
full, for one prompt's compute instead of one per ending.

The default budget depends on the device (:func:`default_batch_tokens`): on a CPU the
forward is compute-bound already at batch 1 and large batches fall out of cache (16,384
tokens ran 1.7x slower than 2,048 for the ``small`` preset on 2 cores), so CPU batches are
small; on a GPU, where batch-1 forwards are launch-bound, they are large.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .model import UnitLM


@dataclass(frozen=True)
class LogLik:
    """Natural-log likelihood of one sequence: ``sum`` of ``per_token`` (n,) target log-probs."""

    sum: float
    per_token: np.ndarray  # (n,) float32, one per predicted token (units, then EOS if added)
    n: int

    @property
    def mean(self) -> float:
        """Average log-probability per token (0.0 for an empty sequence)."""
        return self.sum / self.n if self.n else 0.0


def length_batches(lengths: Sequence[int], batch_tokens: int) -> Iterator[list[int]]:
    """Indices grouped longest-first so that ``len(batch) * max_len <= batch_tokens``
    (a sequence longer than the budget gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[batch[0]] > batch_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


#: token budget per forward: CPU (cache-sized), accelerators (throughput-sized)
CPU_BATCH_TOKENS = 2048
ACCELERATOR_BATCH_TOKENS = 16384


def default_batch_tokens(device: torch.device | str) -> int:
    """Token budget per scoring forward on ``device``."""
    return CPU_BATCH_TOKENS if torch.device(device).type == "cpu" else ACCELERATOR_BATCH_TOKENS


@torch.inference_mode()
def log_likelihood(lm: UnitLM, seqs: Sequence[Sequence[int]], *,
                   batch_tokens: int | None = None, add_bos: bool = True,
                   add_eos: bool = False) -> list[LogLik]:
    """Score ``seqs`` (unit ids). With ``add_bos`` every unit is predicted (from BOS for the
    first); without it the first unit is context only. ``add_eos`` also scores the end.
    ``batch_tokens`` None: :func:`default_batch_tokens` of the LM's device."""
    if batch_tokens is None:
        batch_tokens = default_batch_tokens(lm.device)
    tokens = [lm.to_tokens(s, add_bos=add_bos, add_eos=add_eos) for s in seqs]
    out: list[LogLik | None] = [None] * len(tokens)
    empty = LogLik(0.0, np.zeros(0, np.float32), 0)
    model, device = lm.model, lm.device
    was_training = model.training
    model.eval()
    try:
        for batch in length_batches([len(t) for t in tokens], batch_tokens):
            batch = [i for i in batch if len(tokens[i]) >= 2]
            if not batch:
                continue
            width = len(tokens[batch[0]])
            ids = torch.full((len(batch), width), lm.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(tokens[i])] = torch.tensor(tokens[i])
                mask[row, : len(tokens[i])] = 1
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits  # (B, T, V)
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
            target = logp.gather(-1, ids[:, 1:, None]).squeeze(-1).cpu().numpy()  # (B, T-1)
            for row, i in enumerate(batch):
                per_token = target[row, : len(tokens[i]) - 1].astype(np.float32)
                out[i] = LogLik(float(per_token.sum(dtype=np.float64)), per_token,
                                len(per_token))
    finally:
        model.train(was_training)
    return [empty if r is None else r for r in out]


# ---- shared prefixes ------------------------------------------------------------------


@dataclass(frozen=True)
class SharedLogLik:
    """Log-likelihoods of a prefix and of each of its endings given it.

    ``prefix.per_token`` scores the prefix's own tokens (from its second token, or from BOS);
    ``endings[c].per_token`` the tokens of ending ``c``. Together they are what
    :func:`log_likelihood` gives ``prefix + endings[c]``: see :meth:`whole`.
    """

    prefix: LogLik
    endings: list[LogLik]

    def whole(self, c: int) -> LogLik:
        """The log-likelihood of ``prefix + endings[c]`` as one sequence."""
        per_token = np.concatenate([self.prefix.per_token, self.endings[c].per_token])
        return LogLik(float(per_token.sum(dtype=np.float64)), per_token, len(per_token))


def prefix_batches(prefix_lengths: Sequence[int], ending_lengths: Sequence[Sequence[int]],
                   batch_tokens: int) -> Iterator[list[int]]:
    """Groups (a prefix and its endings) longest prefix first, such that both the padded
    prefixes (groups x longest prefix) and the padded endings (endings x longest ending)
    stay within ``batch_tokens`` (a group over the budget gets a batch of its own)."""
    order = sorted(range(len(prefix_lengths)), key=lambda g: -prefix_lengths[g])
    batch: list[int] = []
    rows = width = 0
    for g in order:
        e = ending_lengths[g]
        new_rows, new_width = rows + len(e), max([width, *e])
        if batch and ((len(batch) + 1) * prefix_lengths[batch[0]] > batch_tokens
                      or new_rows * new_width > batch_tokens):
            yield batch
            batch, new_rows, new_width = [], len(e), max([0, *e])
        batch.append(g)
        rows, width = new_rows, new_width
    if batch:
        yield batch


@torch.inference_mode()
def log_likelihood_shared(lm: UnitLM, prefixes: Sequence[Sequence[int]],
                          endings: Sequence[Sequence[Sequence[int]]], *,
                          batch_tokens: int | None = None, add_bos: bool = True,
                          add_eos: bool = False) -> list[SharedLogLik]:
    """Score several endings of each prefix, running the prefix once.

    Prefixes are left-padded into one batch and run with the KV cache; the cache is then
    indexed once per ending (``reorder_cache``) and all endings of the batch run from it
    in one right-padded forward, their positions continuing the prefix's. The numbers are
    those of :func:`log_likelihood` on ``prefix + ending`` (BOS before the prefix with
    ``add_bos``, EOS after each ending with ``add_eos``), to float rounding, at the cost of
    one prefix instead of one per ending.
    """
    if batch_tokens is None:
        batch_tokens = default_batch_tokens(lm.device)
    pre = [lm.to_tokens(p, add_bos=add_bos) for p in prefixes]
    ends = [[lm.to_tokens(e, add_bos=False, add_eos=add_eos) for e in es] for es in endings]
    empty = LogLik(0.0, np.zeros(0, np.float32), 0)
    out: list[SharedLogLik | None] = [None] * len(pre)
    for g, p in enumerate(pre):
        if not p:  # no context for the first token: as full scoring, it is context only
            lls = log_likelihood(lm, endings[g], batch_tokens=batch_tokens, add_bos=False,
                                 add_eos=add_eos)
            out[g] = SharedLogLik(empty, lls)
    todo = [g for g in range(len(pre)) if out[g] is None]
    model, was_training = lm.model, lm.model.training
    model.eval()
    try:
        for batch in prefix_batches([len(pre[g]) for g in todo],
                                    [[len(e) for e in ends[g]] for g in todo], batch_tokens):
            groups = [todo[b] for b in batch]
            for g, res in zip(groups, _shared_batch(lm, [pre[g] for g in groups],
                                                    [ends[g] for g in groups])):
                out[g] = res
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


#: shared starts shorter than this (tokens) are scored in full: one forward is cheaper
MIN_SHARED = 8


def log_likelihood_grouped(lm: UnitLM, groups: Sequence[Sequence[Sequence[int]]], *,
                           min_shared: int = MIN_SHARED, batch_tokens: int | None = None,
                           add_bos: bool = True, add_eos: bool = False) -> list[list[LogLik]]:
    """:func:`log_likelihood` of every sequence of every group (e.g. a prompt followed by
    each candidate ending, or two files of one story), with what all sequences of a group
    begin with run once (:func:`log_likelihood_shared`) when it is at least ``min_shared``
    units long. Same numbers as scoring every sequence whole, to float rounding."""
    out: list[list[LogLik] | None] = [None] * len(groups)
    shared, whole = [], []
    for g, seqs in enumerate(groups):
        common = _common_prefix(seqs) if len(seqs) > 1 else []
        (shared if len(common) >= min_shared else whole).append((g, common))
    flat = [list(s) for g, _ in whole for s in groups[g]]
    lls = iter(log_likelihood(lm, flat, batch_tokens=batch_tokens, add_bos=add_bos,
                              add_eos=add_eos))
    for g, _ in whole:
        out[g] = [next(lls) for _ in groups[g]]
    res = log_likelihood_shared(lm, [c for _, c in shared],
                                [[list(s)[len(c):] for s in groups[g]] for g, c in shared],
                                batch_tokens=batch_tokens, add_bos=add_bos, add_eos=add_eos)
    for (g, _), r in zip(shared, res):
        out[g] = [r.whole(c) for c in range(len(groups[g]))]
    return out  # type: ignore[return-value]


def _common_prefix(seqs: Sequence[Sequence[int]]) -> list[int]:
    """The longest list every one of ``seqs`` starts with."""
    first = list(seqs[0])
    n = min(len(s) for s in seqs)
    k = 0
    while k < n and all(s[k] == first[k] for s in seqs):
        k += 1
    return first[:k]


def _shared_batch(lm: UnitLM, pre: list[list[int]], ends: list[list[list[int]]]
                  ) -> list[SharedLogLik]:
    """One prefix forward (left-padded, cached) and one forward of all endings."""
    model, device = lm.model, lm.device
    G, P = len(pre), max(len(p) for p in pre)
    ids = torch.full((G, P), lm.pad_id, dtype=torch.long)
    mask = torch.zeros((G, P), dtype=torch.long)
    for row, p in enumerate(pre):  # left padding: every prefix ends in the last column
        ids[row, P - len(p):] = torch.tensor(p)
        mask[row, P - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    first = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    logp = torch.log_softmax(first.logits.float(), dim=-1)  # (G, P, V)
    own = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1).cpu().numpy()  # (G, P-1)
    prefix_lls = [LogLik(float(own[row, P - len(p):].sum(dtype=np.float64)),
                         own[row, P - len(p):].astype(np.float32), len(p) - 1)
                  for row, p in enumerate(pre)]
    rows = [(row, c) for row, es in enumerate(ends) for c, e in enumerate(es) if e]
    empty = LogLik(0.0, np.zeros(0, np.float32), 0)
    ending_lls = [[empty] * len(es) for es in ends]
    if rows:
        E = max(len(ends[row][c]) for row, c in rows)
        owner = torch.tensor([row for row, _ in rows], device=device)
        eids = torch.full((len(rows), E), lm.pad_id, dtype=torch.long)
        emask = torch.zeros((len(rows), E), dtype=torch.long)
        for r, (row, c) in enumerate(rows):
            eids[r, :len(ends[row][c])] = torch.tensor(ends[row][c])
            emask[r, :len(ends[row][c])] = 1
        eids, emask = eids.to(device), emask.to(device)
        cache = _output_cache(first)
        cache.reorder_cache(owner)  # (G, ...) -> one copy of its prefix per ending
        epos = positions[owner, -1:] + 1 + torch.arange(E, device=device)[None]
        logits = model(input_ids=eids, attention_mask=torch.cat([mask[owner], emask], 1),
                       position_ids=epos, use_cache=True, **_cache_kwarg(model, cache)).logits
        elogp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (R, E-1, V)
        head = logp[owner, -1].gather(-1, eids[:, :1])  # first ending token, from the prefix
        tail = elogp.gather(-1, eids[:, 1:, None]).squeeze(-1)
        per = torch.cat([head, tail], 1).cpu().numpy()  # (R, E)
        for r, (row, c) in enumerate(rows):
            pt = per[r, :len(ends[row][c])].astype(np.float32)
            ending_lls[row][c] = LogLik(float(pt.sum(dtype=np.float64)), pt, len(pt))
    return [SharedLogLik(prefix_lls[row], ending_lls[row]) for row in range(G)]


def _cache_kwarg(model: torch.nn.Module, cache: object) -> dict:
    """The KV cache as the model's forward takes it (``cache`` from transformers 5.x,
    ``past_key_values`` before)."""
    params = inspect.signature(model.forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


def _output_cache(output: object) -> object:
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values
