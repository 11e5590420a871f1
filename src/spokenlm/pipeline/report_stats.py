"""Numbers the report derives from a run's files: unit usage, the silence unit, chance
levels and confidence intervals of benchmark accuracies, per-utterance error rates."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..common.files import iter_jsonl

#: a unit is called the silence unit when it starts or ends at least this share of the
#: utterances' edges (recordings begin and end in silence; random audio has no such unit)
SILENCE_MIN_SHARE = 0.5


@dataclass
class UnitStats:
    """Unit usage over a units JSONL (``spokenlm tokenize run`` output).

    ``tokens`` counts deduplicated units (what the LM reads), ``frames`` counts frames
    (tokens weighted by their durations; equal to ``tokens`` without durations).
    """

    n_units: int
    tokens: np.ndarray  # (K,) int64
    frames: np.ndarray  # (K,) int64
    n_utterances: int
    silence: int | None  # the unit starting / ending most utterances, if most of them
    silence_share: float  # fraction of utterance edges that are the most common edge unit

    @property
    def used(self) -> int:
        return int((self.tokens > 0).sum())

    def entropy_bits(self, frames: bool = False) -> float:
        counts = (self.frames if frames else self.tokens).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log2(p)).sum()) if p.size else 0.0

    def summary(self) -> dict[str, float | int | None]:
        h, hf = self.entropy_bits(), self.entropy_bits(frames=True)
        max_h = math.log2(self.n_units) if self.n_units > 1 else 1.0
        return {"units used": f"{self.used} / {self.n_units}",
                "entropy (bits / token)": h, "normalised entropy (tokens)": h / max_h,
                "unit perplexity 2^H (tokens)": 2 ** h,
                "entropy (bits / frame)": hf, "normalised entropy (frames)": hf / max_h,
                "utterances": self.n_utterances, "tokens": int(self.tokens.sum()),
                "frames": int(self.frames.sum()),
                "mean frames per token": float(self.frames.sum() / max(self.tokens.sum(), 1))}


def unit_stats(units_jsonl, n_units: int | None = None) -> UnitStats:
    """Count units (and frames, with ``durations``) over every row of ``units_jsonl``."""
    rows = [r for r in iter_jsonl(units_jsonl) if isinstance(r.get("units"), list)]
    top = max((max(r["units"]) for r in rows if r["units"]), default=-1) + 1
    k = max(int(n_units or 0), top, 1)
    tokens = np.zeros(k, np.int64)
    frames = np.zeros(k, np.int64)
    edges = np.zeros(k, np.int64)
    for r in rows:
        u = np.asarray(r["units"], np.int64)
        if not u.size:
            continue
        d = np.asarray(r["durations"], np.int64) if isinstance(r.get("durations"), list) \
            and len(r["durations"]) == u.size else np.ones_like(u)
        tokens += np.bincount(u, minlength=k)
        frames += np.bincount(u, weights=d, minlength=k).astype(np.int64)
        edges[u[0]] += 1
        edges[u[-1]] += 1
    silence, share = None, 0.0
    if edges.sum():
        top = int(edges.argmax())
        share = float(edges[top] / edges.sum())
        silence = top if share >= SILENCE_MIN_SHARE else None
    return UnitStats(k, tokens, frames, len(rows), silence, share)


def chance_level(items: Iterable[dict]) -> float | None:
    """Expected accuracy of random guessing over benchmark items: the mean of 1 / number of
    candidates, read from scored rows (``ll_sum``, one per candidate) or benchmark items
    (``candidates``)."""
    inv = []
    for r in items:
        cands = r.get("ll_sum") if isinstance(r.get("ll_sum"), list) else r.get("candidates")
        if isinstance(cands, list) and cands:
            inv.append(1.0 / len(cands))
    return float(np.mean(inv)) if inv else None


def binomial_ci95(accuracy: float | None, n: int) -> tuple[float, float] | None:
    """Wilson 95 % interval (low, high) of an accuracy measured on ``n`` items (the normal
    approximation collapses to a point at 0 or 1; Wilson's does not)."""
    if not n or accuracy is None or not 0.0 <= accuracy <= 1.0:
        return None
    z2 = 1.96 ** 2
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = 1.96 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def word_error_rate(reference: str | None, hypothesis: str | None) -> float | None:
    """WER of one transcript against its reference (normalised as ``eval resynthesis``
    normalises); None without a reference."""
    from ..asr.base import normalize_text
    from ..common.edit_distance import error_rate

    if not reference:
        return None
    ref = normalize_text(reference).split()
    if not ref:
        return None
    hyp = normalize_text(hypothesis or "").split()
    return float(error_rate([ref], [hyp])["rate"])
