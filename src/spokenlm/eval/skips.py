"""What a metric leaves out, and why.

Every eval command counts the items it drops in a :class:`Skips` (a reason -> how many,
and the first one), reports them in its metrics JSON and log, and calls
:meth:`Skips.require` before computing: with no item left the evaluation fails with a
message saying why every item was dropped, instead of writing a metric of nothing.
A number that cannot be computed from what is left is ``None`` with a
``<name>_reason`` next to it (:func:`set_or_reason`), never NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import InputError
from ..common.progress import log


@dataclass
class Skips:
    """Items dropped from one metric: reason -> count, and the first item of each reason."""

    metric: str
    what: str = "items"
    counts: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, item: object, n: int = 1) -> None:
        """Count ``n`` items dropped for ``reason``; ``item`` names the first one (a file,
        an id, or the error message of a failed read)."""
        self.counts[reason] += n
        self.first.setdefault(reason, _short(item))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """``12 unreadable audio (first: x.wav: file not found), 3 no labels (first: u7)``."""
        return ", ".join(f"{n} {reason} (first: {self.first[reason]})"
                         for reason, n in self.counts.most_common())

    def report(self) -> dict:
        """For the metrics JSON: ``{"n_skipped", "skipped_reasons": {reason: {count, first}}}``."""
        return {"n_skipped": self.total,
                "skipped_reasons": {r: {"count": n, "first": self.first[r]}
                                    for r, n in self.counts.most_common()}}

    def require(self, n_kept: int, source: str | Path) -> None:
        """Log what was dropped; raise :class:`InputError` naming ``source`` (the input file
        or folder) when nothing is left to evaluate."""
        if n_kept == 0:
            if not self.total:
                raise InputError(f"{source}: no {self.what} to evaluate for {self.metric}; "
                                 f"check that this is the right input")
            raise InputError(f"{source}: all {self.total} {self.what} skipped, so {self.metric} "
                             f"cannot be computed: {self.summary()}; fix or regenerate those "
                             f"inputs")
        if self.total:
            log(f"{self.metric}: {self.total} of {self.total + n_kept} {self.what} skipped: "
                f"{self.summary()}")


def set_or_reason(metrics: dict, key: str, value: float | None, reason: str) -> None:
    """``metrics[key] = value``; when it is None or not finite, None and ``<key>_reason``."""
    if value is None or not math.isfinite(value):
        metrics[key] = None
        metrics[f"{key}_reason"] = reason
    else:
        metrics[key] = float(value)


def fmt(value: float | None, spec: str = ".3f") -> str:
    """A metric for a log line: formatted, or ``n/a`` when it could not be computed."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _short(item: object) -> str:
    """The part of an error message before its fix (``x.wav: file not found``)."""
    text = str(item).split("; ")[0]
    return text if len(text) <= 200 else text[:197] + "..."
