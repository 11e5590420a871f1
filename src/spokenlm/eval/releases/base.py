"""What every released benchmark reads into: a :class:`Release` (pairs of audio files, the
right one first) and the checks that keep a folder honest.

A release is scored pair by pair: the reference scorers (the ZeroSpeech 2021 tools,
slamkit, SALMon's ``salmon.py``) give a pair 1 when the right file's score is strictly
higher, 0.5 on a tie and 0 otherwise (a NaN score compares false both ways, so 0); each
format then aggregates those decisions the way its own tool reports them
(:attr:`Release.aggregate`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common.errors import InputError

#: decisions of the pairs (same order as the items) -> the reference tool's report
Aggregate = Callable[[Sequence[dict], Sequence[float]], dict]


@dataclass
class Release:
    """A released benchmark folder read as pairs of audio files.

    ``items`` follow spokenlm's benchmark items (``id``, ``subset``, ``candidates`` = [right
    audio id, wrong audio id], ``answer`` 0, ``prompt`` None) plus the fields the format's
    aggregation groups by (gold ``pair_id``, ``voice``, ``type``, frequency band, ...).
    """

    name: str  # e.g. "sLM21 lexical", "SALMon"
    kind: str  # spokenlm metric kind: spot_the_word, acceptability, story_cloze, salmon, ...
    root: Path
    audio: dict[str, dict]  # audio id -> manifest-like row (id, path, speaker, text)
    items: list[dict]
    reference: str  # the reference scorer this format is aggregated like (repo and file)
    aggregate: Aggregate


def decide(right: float, wrong: float) -> float:
    """1 if ``right > wrong``, 0.5 if equal, else 0 (NaN on either side: 0), as the
    reference scorers compare two scores."""
    if right > wrong:
        return 1.0
    if right == wrong:
        return 0.5
    return 0.0


def audio_row(aid: str, path: Path, speaker: str = "", text: str | None = None) -> dict:
    return {"id": aid, "path": str(path), "speaker": speaker, "text": text}


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def check_files(root: Path, expected: Iterable[str], what: str, allowed: Iterable[str] = ()
                ) -> None:
    """Raise :class:`InputError` when a file named in ``expected`` (names relative to
    ``root``) is missing from ``root``, or when ``root`` holds a file that is neither
    expected nor in ``allowed`` (hidden files are ignored)."""
    expected = set(expected)
    present = {p.name for p in root.iterdir() if p.is_file() and not is_hidden(p)}
    missing = sorted(expected - present)
    if missing:
        raise InputError(f"{root}: {len(missing)} files named in {what} are missing, e.g. "
                         f"{missing[0]}; re-download or re-extract the benchmark")
    unknown = sorted(present - expected - set(allowed))
    if unknown:
        raise InputError(f"{root}: {len(unknown)} files that {what} does not name, e.g. "
                         f"{unknown[0]}; remove them (or pass the benchmark's own folder)")


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def std_or_none(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof 1, as pandas' ``std``); None below 2 values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def grouped_means(items: Sequence[dict], decisions: Sequence[float], keys: Sequence[str]
                  ) -> list[tuple[tuple, dict, float]]:
    """Mean decision per group of items sharing ``keys`` (e.g. the gold id: the mean over
    its voices), as ``(key values, first item of the group, mean)`` in first-seen order."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    first: dict[tuple, dict] = {}
    for item, d in zip(items, decisions):
        key = tuple(item.get(k) for k in keys)
        groups[key].append(d)
        first.setdefault(key, item)
    return [(k, first[k], float(np.mean(v))) for k, v in groups.items()]


def band_table(scores: Sequence[float], labels: Sequence[object], order: Sequence[object]
               | None = None) -> dict[str, dict]:
    """``{label: {"n", "score", "std"}}`` over ``scores`` grouped by ``labels`` (None labels
    left out), as the ZeroSpeech tools' ``groupby(...).agg(n='count', score='mean',
    std='std')``; groups listed in ``order`` (else sorted), empty ones omitted."""
    by: dict[object, list[float]] = defaultdict(list)
    for s, label in zip(scores, labels):
        if label is not None:
            by[label].append(s)
    keys = [k for k in order if k in by] if order is not None else sorted(by)
    return {str(k): {"n": len(by[k]), "score": mean_or_none(by[k]),
                     "std": std_or_none(by[k])} for k in keys}


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
