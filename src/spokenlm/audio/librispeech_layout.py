"""The LibriSpeech folder layout: split folders (``dev-clean``, ``train-clean-100``, ...)
holding ``<speaker>/<chapter>/*.trans.txt``. ``audio manifest`` labels files of such a root
by it and ``data librispeech`` imports one (both use this module; audio does not import data).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SPLIT_NAME", "SPLIT_ORDER", "multi_split_root"]

#: Folder names of LibriSpeech splits (and Mini LibriSpeech's ``train-clean-5``, ``dev-clean-2``).
SPLIT_NAME = re.compile(r"^(train|dev|test)-(clean|other)(-\d+)?$")
#: Canonical order of the splits in a manifest (others follow, sorted by name).
SPLIT_ORDER = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean",
               "dev-other", "test-clean", "test-other")


def multi_split_root(root: Path) -> tuple[Path, list[str]] | None:
    """``(folder holding the splits, split names)`` when ``root`` is a LibriSpeech root
    with split folders: it holds ``LibriSpeech/``, or first-level folders named like splits,
    or first-level folders with ``<spk>/<chapter>/*.trans.txt`` inside. None otherwise (a
    single split folder, or not LibriSpeech at all)."""
    base = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    try:
        children = sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return None
    names = [p.name for p in children if SPLIT_NAME.match(p.name)
             or next(p.glob("*/*/*.trans.txt"), None) is not None]
    if not names:
        return None
    order = {name: i for i, name in enumerate(SPLIT_ORDER)}
    return base, sorted(names, key=lambda n: (order.get(n, len(order)), n))
