"""Edit distance and error rates: WER, CER, PER.

``error_rate(refs, hyps)`` is the corpus-level rate: total edits / total reference tokens
(the usual definition, not a mean of per-utterance rates). A shared utility (ASR decoding,
evaluation, reports); :mod:`spokenlm.eval.edit_distance` re-exports it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def edit_distance(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1).

    One numpy row per reference token: the row update ``D[i, j] = min(D[i-1, j] + 1,
    D[i-1, j-1] + sub, D[i, j-1] + 1)`` is done as a vectorised min over the previous row
    followed by a cumulative min for the left-to-right insertions.
    """
    m = len(hyp)
    if not ref:
        return m
    if not m:
        return len(ref)
    vocab: dict[Hashable, int] = {}
    hyp_ids = np.array([vocab.setdefault(t, len(vocab)) for t in hyp])
    prev = np.arange(m + 1)
    cols = np.arange(m + 1)
    for i, token in enumerate(ref, 1):
        sub = (hyp_ids != vocab.get(token, -1)).astype(np.int64)  # (m,)
        cur = np.empty(m + 1, dtype=np.int64)
        cur[0] = i
        cur[1:] = np.minimum(prev[1:] + 1, prev[:-1] + sub)
        # insertions: cur[j] = min_k<=j (cur[k] + j - k)
        cur = np.minimum.accumulate(cur - cols) + cols
        prev = cur
    return int(prev[-1])


def error_rate(refs: Sequence[Sequence[Hashable]], hyps: Sequence[Sequence[Hashable]]
               ) -> dict[str, float]:
    """Corpus error rate over token lists: ``{"rate", "edits", "ref_tokens"}``."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    n = sum(len(r) for r in refs)
    return {"rate": edits / n if n else float("nan"), "edits": int(edits), "ref_tokens": int(n)}


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate of whitespace-tokenised strings."""
    return error_rate([r.split() for r in refs], [h.split() for h in hyps])["rate"]


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate (spaces count as characters; runs of spaces collapsed)."""
    return error_rate([" ".join(r.split()) for r in refs],
                      [" ".join(h.split()) for h in hyps])["rate"]
