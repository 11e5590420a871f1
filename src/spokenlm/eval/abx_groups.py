"""ABX triplet groups, enumerated and subsampled exactly as libri-light does.

The reference is libri-light's ABX as packaged in ``zerospeech-libriabx2`` (``zrc_abx2``:
``ABX_src/ABXIterators``). Tokens are numbered by first appearance of their context,
label and speaker, sorted (stably) by (context, speaker, label) -- by (speaker, label) when
the context is ignored -- and cut into categories of equal (context, speaker, label).
Then, with Python's ``random`` seeded once per condition:

- within speaker: for each context, speaker, label ``a`` with at least two tokens, and
  each other label ``b`` of that speaker in that context: draw B, then A (``get_group``:
  ``random.sample`` of ``max_size_group`` tokens when the category is larger, else all of
  them in order); X is A itself (the triplets with X = A are left out when scoring);
- across speaker: for each context, speaker ``s_A`` with at least two labels there, label
  ``a``: the other speakers who said ``a`` in that context (``random.sample`` of
  ``max_x_across`` of them when more), and for each such ``s_X`` and each other label
  ``b`` of ``s_A``: draw A, B, then X from ``(context, a, s_X)``.

Drawing in the same order from the same generator gives the same subsamples as the
reference, so scores agree to float rounding, not just in expectation. ``partners`` (word
ABX) restricts ``b`` to a label's minimal-pair partners; the reference has no such option.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Token:
    """One ABX token: which label, in which context, said by whom (re-exported by
    :mod:`spokenlm.eval.abx`; :mod:`~spokenlm.eval.abx_items` makes them)."""

    label: str
    context: str
    speaker: str


@dataclass(frozen=True)
class Codes:
    """Integer ids per token: context, label, speaker (numbered by first appearance)."""

    context: np.ndarray  # (n_tokens,) int64
    label: np.ndarray
    speaker: np.ndarray


def encode(keys: Sequence[tuple[str, str, str]], order: Sequence[tuple[str, str, str]] | None
           = None) -> Codes:
    """Number (context, label, speaker) strings by first appearance in ``order`` (the item
    file's lines, dropped ones included, as libri-light numbers them), else in ``keys``."""
    tables: list[dict[str, int]] = [{}, {}, {}]
    for key in (order if order is not None else keys):
        for table, value in zip(tables, key):
            table.setdefault(value, len(table))
    for key in keys:  # values absent from ``order`` come after
        for table, value in zip(tables, key):
            table.setdefault(value, len(table))
    cols = [np.array([t[k[i]] for k in keys], dtype=np.int64) for i, t in enumerate(tables)]
    return Codes(*cols)


@dataclass
class Categories:
    """The stable sort of the tokens and its categories (runs of equal (context, speaker,
    label); one pseudo-context when the context is ignored), nested context -> speaker."""

    order: np.ndarray  # (n_tokens,) token ids, sorted
    start: np.ndarray  # (n_cats,) first position in ``order``
    size: np.ndarray  # (n_cats,)
    context: np.ndarray  # (n_cats,)
    speaker: np.ndarray
    label: np.ndarray
    nested: list[list[list[int]]]  # context -> speaker -> category ids (labels in order)

    @classmethod
    def build(cls, codes: Codes, use_context: bool) -> Categories:
        ctx = codes.context if use_context else np.zeros_like(codes.context)
        order = np.lexsort((codes.label, codes.speaker, ctx))
        c, s, p = ctx[order], codes.speaker[order], codes.label[order]
        change = np.ones(len(order), dtype=bool)
        change[1:] = (c[1:] != c[:-1]) | (s[1:] != s[:-1]) | (p[1:] != p[:-1])
        start = np.flatnonzero(change)
        size = np.diff(np.append(start, len(order)))
        cc, cs = c[start], s[start]
        nested: list[list[list[int]]] = []
        for k in range(len(start)):
            if k == 0 or cc[k] != cc[k - 1]:
                nested.append([[k]])
            elif cs[k] != cs[k - 1]:
                nested[-1].append([k])
            else:
                nested[-1][-1].append(k)
        return cls(order, start, size, cc, cs, p[start], nested)

    def members(self, cat: int) -> np.ndarray:
        return self.order[self.start[cat]: self.start[cat] + self.size[cat]]


#: one group: (category of A, of B, of X or -1 within speaker (X is A), then the positions
#: in ``Categories.order`` drawn for A, B, X, or None where the whole category is kept)
Group = tuple[int, int, int, "np.ndarray | None", "np.ndarray | None", "np.ndarray | None"]


class _Sampler:
    """libri-light's ``get_group``: the whole category, or a random sample of it."""

    def __init__(self, cats: Categories, max_size_group: int, seed: int) -> None:
        self.start, self.size = cats.start.tolist(), cats.size.tolist()
        self.k, self.rng = max_size_group, random.Random(seed)

    def __call__(self, cat: int) -> np.ndarray | None:
        if self.size[cat] > self.k:
            s = self.start[cat]
            return np.array(self.rng.sample(range(s, s + self.size[cat]), self.k))
        return None


def _partner_ok(partners: dict[int, set[int]] | None, a: int, b: int) -> bool:
    return partners is None or b in partners.get(a, ())


def within_groups(cats: Categories, *, max_size_group: int = 10, seed: int = 3459,
                  partners: dict[int, set[int]] | None = None) -> Iterator[Group]:
    """Within-speaker groups in the reference's order (see the module docstring)."""
    get = _Sampler(cats, max_size_group, seed)
    size, label = get.size, cats.label.tolist()
    for context_group in cats.nested:
        for spk_cats in context_group:
            if len(spk_cats) == 1:
                continue
            for ca in spk_cats:
                if size[ca] == 1:
                    continue
                for cb in spk_cats:
                    if cb == ca or not _partner_ok(partners, label[ca], label[cb]):
                        continue
                    b = get(cb)
                    a = get(ca)
                    yield ca, cb, -1, a, b, None


def across_groups(cats: Categories, *, max_size_group: int = 10, max_x_across: int = 5,
                  seed: int = 3459, partners: dict[int, set[int]] | None = None
                  ) -> Iterator[Group]:
    """Across-speaker groups in the reference's order (see the module docstring)."""
    get = _Sampler(cats, max_size_group, seed)
    label, speaker = cats.label.tolist(), cats.speaker.tolist()
    for context_group in cats.nested:
        said_by: dict[int, list[int]] = {}  # label -> its categories, by speaker
        for spk_cats in context_group:
            for cat in spk_cats:
                said_by.setdefault(label[cat], []).append(cat)
        for spk_cats in context_group:
            if len(spk_cats) == 1:
                continue
            for ca in spk_cats:
                others = [cx for cx in said_by[label[ca]] if speaker[cx] != speaker[ca]]
                if len(others) > max_x_across:
                    others = get.rng.sample(others, k=max_x_across)
                for cx in others:
                    for cb in spk_cats:
                        if cb == ca or not _partner_ok(partners, label[ca], label[cb]):
                            continue
                        a = get(ca)
                        b = get(cb)
                        x = get(cx)
                        yield ca, cb, cx, a, b, x
