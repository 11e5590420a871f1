"""n-gram statistics of generated sequences (units or words): BLEU, self-BLEU, auto-BLEU,
distinct-n and entropy, following the GSLM definitions (fairseq
``examples/textless_nlp/gslm/metrics/asr_metrics``).

- ``bleu(hyp, refs)``: clipped n-gram precisions p_1..p_N, combined with weights either
  geometrically (exp sum w_n log p_n, standard BLEU) or arithmetically (sum w_n p_n);
  GSLM leaves out the brevity penalty (``brevity_penalty=False``).
- ``self_bleu(samples)``: mean over samples of the BLEU of each sample against all the
  other samples as references. High = the samples resemble each other (low diversity).
- ``auto_bleu(seq)``: for n = 1..N the fraction of the sequence's n-grams that occur
  again elsewhere in the same sequence (not overlapping the n-gram itself), combined
  like BLEU. High = the sequence repeats itself.
- VERT (GSLM) = sqrt(self-BLEU2 * auto-BLEU2), both with bigram (N=2, w=(0.5, 0.5))
  geometric averaging: a single number for diversity, lower is more diverse.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

Seq = Sequence[Hashable]


def ngrams(seq: Seq, n: int) -> list[tuple]:
    """All n-grams of ``seq`` in order."""
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def _combine(precisions: Sequence[float], weights: Sequence[float], mode: str) -> float:
    if mode == "arithmetic":
        return float(sum(w * p for w, p in zip(weights, precisions)))
    if mode == "geometric":
        if any(p <= 0 for p in precisions):
            return 0.0
        return float(math.exp(sum(w * math.log(p) for w, p in zip(weights, precisions))))
    raise ValueError(f"mode={mode!r}: choose 'geometric' or 'arithmetic'")


def bleu(hyp: Seq, refs: Sequence[Seq], weights: Sequence[float] = (0.25,) * 4, *,
         mode: str = "geometric", brevity_penalty: bool = True) -> float:
    """Sentence BLEU of ``hyp`` against ``refs`` (any hashable tokens)."""
    precisions = []
    for n in range(1, len(weights) + 1):
        hyp_counts = Counter(ngrams(hyp, n))
        total = sum(hyp_counts.values())
        if total == 0:
            precisions.append(0.0)
            continue
        max_ref: Counter = Counter()
        for ref in refs:
            for g, c in Counter(ngrams(ref, n)).items():
                max_ref[g] = max(max_ref[g], c)
        clipped = sum(min(c, max_ref[g]) for g, c in hyp_counts.items())
        precisions.append(clipped / total)
    score = _combine(precisions, weights, mode)
    if brevity_penalty and refs and hyp:
        ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        if len(hyp) < ref_len:
            score *= math.exp(1 - ref_len / len(hyp))
    return score


def self_bleu(samples: Sequence[Seq], weights: Sequence[float] = (0.5, 0.5), *,
              mode: str = "geometric") -> float:
    """Mean BLEU (no brevity penalty) of each sample against all others; nan with < 2."""
    if len(samples) < 2:
        return float("nan")
    scores = [bleu(s, list(samples[:i]) + list(samples[i + 1:]), weights, mode=mode,
                   brevity_penalty=False) for i, s in enumerate(samples)]
    return float(np.mean(scores))


def auto_bleu(seq: Seq, weights: Sequence[float] = (0.5, 0.5), *,
              mode: str = "geometric") -> float:
    """Within-sequence repetition (GSLM auto-BLEU) of one sequence; 0 for length <= 1."""
    if len(seq) <= 1:
        return 0.0
    precisions = []
    for n in range(1, len(weights) + 1):
        grams = ngrams(seq, n)
        if not grams:
            precisions.append(0.0)
            continue
        positions: dict[tuple, list[int]] = {}
        for p, g in enumerate(grams):
            positions.setdefault(g, []).append(p)
        # n-gram at p is repeated if the same n-gram starts at q with |q - p| >= n
        hits = sum(any(abs(q - p) >= n for q in positions[g]) for p, g in enumerate(grams))
        precisions.append(hits / len(grams))
    return _combine(precisions, weights, mode)


def mean_auto_bleu(samples: Sequence[Seq], weights: Sequence[float] = (0.5, 0.5), *,
                   mode: str = "geometric") -> float:
    return float(np.mean([auto_bleu(s, weights, mode=mode) for s in samples])) if samples \
        else float("nan")


def vert(samples: Sequence[Seq]) -> dict[str, float]:
    """GSLM's VERT and its two parts (bigram, geometric)."""
    sb, ab = self_bleu(samples), mean_auto_bleu(samples)
    v = math.sqrt(sb * ab) if not (math.isnan(sb) or math.isnan(ab)) else float("nan")
    return {"self_bleu2": sb, "auto_bleu2": ab, "vert": v}


def distinct_n(samples: Sequence[Seq], n: int) -> float:
    """Distinct n-grams / all n-grams over all samples (nan when there are none)."""
    grams = [g for s in samples for g in ngrams(s, n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def entropy(samples: Sequence[Seq], n_symbols: int | None = None) -> dict[str, float]:
    """Unigram entropy (bits) of all tokens, and normalised by log2(n_symbols) if given."""
    counts = np.array(list(Counter(t for s in samples for t in s).values()), dtype=np.float64)
    if counts.sum() == 0:
        return {"entropy_bits": float("nan"), "entropy_normalised": float("nan")}
    p = counts / counts.sum()
    h = float(-(p * np.log2(p)).sum())
    norm = h / math.log2(n_symbols) if n_symbols and n_symbols > 1 else float("nan")
    return {"entropy_bits": h, "entropy_normalised": norm}
