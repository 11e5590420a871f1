"""Progress bars for every long step (tqdm on stderr; ``SPOKENLM_PROGRESS=0`` silences)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("SPOKENLM_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None,
             unit: str = "it") -> tqdm:
    """A tqdm bar with spokenlm's defaults; usable as iterator or with ``.update(n)``."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True,
                mininterval=1.0, disable=not progress_enabled(), leave=False)


def log(msg: str) -> None:
    """One-line status message on stderr, kept clear of progress bars."""
    tqdm.write(f"[spokenlm] {msg}")
