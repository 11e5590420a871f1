"""Pack a units JSONL into one flat memmap for LM training (nanoGPT-style).

The format (``<prefix>.bin`` / ``.idx.npy`` / ``.meta.json``) is owned by
:mod:`spokenlm.common.packed` (its one reader and writer, re-exported here); this module fills
it from a units JSONL: the meta adds ``n_units``, ``ids``, ``dedup``, ``source`` and the units'
``frame_rate`` (see :mod:`spokenlm.audio.framing`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.framing import UnitsFraming
from ..common.errors import InputError
from ..common.files import iter_jsonl
from ..common.packed import load_packed, packed_dtype, prefix_of, write_packed
from ..common.progress import progress

__all__ = ["load_packed", "pack_units", "packed_dtype", "packed_prefix"]

#: the path-only prefix (``data/units.jsonl`` -> ``data/units``), kept under its old name
packed_prefix = prefix_of


def pack_units(units_jsonl: str | os.PathLike, out_prefix: str | os.PathLike | None = None,
               n_units: int | None = None) -> Path:
    """Write ``<out_prefix>.bin / .idx.npy / .meta.json`` from a units JSONL.

    Args:
        units_jsonl: rows with ``id`` and ``units``.
        out_prefix: defaults to the JSONL path without ``.jsonl``.
        n_units: vocabulary size (the tokenizer's); None takes max(unit) + 1.
    Returns:
        the prefix.
    """
    units_jsonl = Path(units_jsonl)
    prefix = prefix_of(out_prefix if out_prefix is not None else units_jsonl)
    if n_units is None:
        n_units = 1 + max((max(r["units"], default=-1) for r in iter_jsonl(units_jsonl)),
                          default=-1)
    ids: list[Any] = []
    seen = {"dedup": True}
    rates = UnitsFraming(units_jsonl)

    def units() -> Iterator[np.ndarray]:
        for row in progress(iter_jsonl(units_jsonl), desc="pack units", unit="utt"):
            u = np.asarray(row["units"], dtype=np.int64)
            if u.size and (u.min() < 0 or u.max() >= n_units):
                raise InputError(f"{units_jsonl}: utterance {row.get('id')!r} has unit "
                                 f"{int(u.max())} outside [0, {n_units}); it was made by "
                                 f"another tokenizer, tokenize again")
            ids.append(row.get("id"))
            seen["dedup"] = seen["dedup"] and "durations" in row
            rates.add(row)
            yield u

    return write_packed(prefix, units(), packed_dtype(n_units), lambda: {
        "n_units": n_units, "dedup": seen["dedup"] and bool(ids), "ids": ids,
        "source": units_jsonl.name, "frame_rate": rates.framing.frame_rate})
