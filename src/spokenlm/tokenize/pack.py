"""Pack a units JSONL into one flat memmap for LM training (nanoGPT-style).

``<prefix>.bin``: all utterances' ``units`` back to back (uint16 when n_units + 3 <= 65535,
else uint32; BOS/EOS are added by the LM data loader); ``<prefix>.idx.npy``: int64 (N + 1,)
offsets, utterance i is ``bin[idx[i]:idx[i + 1]]``; ``<prefix>.meta.json``: ``dtype``,
``n_units``, ``n_utterances``, ``n_tokens``, ``ids``, ``dedup`` and the units' ``frame_rate``
(see :mod:`spokenlm.audio.framing`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.framing import UnitsFraming
from ..common.errors import ArtifactError, InputError
from ..common.files import atomic_path, iter_jsonl, read_json, write_json
from ..common.progress import progress

#: special tokens the LM adds after the units (BOS, EOS, PAD)
N_SPECIAL = 3


def packed_dtype(n_units: int) -> np.dtype:
    """uint16 when every LM token id (units + BOS/EOS/PAD) fits, else uint32."""
    return np.dtype(np.uint16 if n_units + N_SPECIAL <= np.iinfo(np.uint16).max else np.uint32)


def packed_prefix(path: str | os.PathLike) -> Path:
    """``data/units.jsonl`` or ``data/units`` -> ``data/units``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".jsonl" else path


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
    prefix = packed_prefix(out_prefix if out_prefix is not None else units_jsonl)
    if n_units is None:
        n_units = 1 + max((max(r["units"], default=-1) for r in iter_jsonl(units_jsonl)),
                          default=-1)
    dtype = packed_dtype(n_units)
    offsets, ids, dedup = [0], [], True
    rates = UnitsFraming(units_jsonl)
    with atomic_path(prefix.with_name(prefix.name + ".bin")) as tmp, open(tmp, "wb") as f:
        for row in progress(iter_jsonl(units_jsonl), desc="pack units", unit="utt"):
            units = np.asarray(row["units"], dtype=np.int64)
            if units.size and (units.min() < 0 or units.max() >= n_units):
                raise InputError(f"{units_jsonl}: utterance {row.get('id')!r} has unit "
                                 f"{int(units.max())} outside [0, {n_units}); it was made by "
                                 f"another tokenizer, tokenize again")
            f.write(units.astype(dtype).tobytes())
            offsets.append(offsets[-1] + units.size)
            ids.append(row.get("id"))
            dedup = dedup and "durations" in row
            rates.add(row)
    with atomic_path(prefix.with_name(prefix.name + ".idx.npy")) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(offsets, dtype=np.int64))
    write_json(prefix.with_name(prefix.name + ".meta.json"), {
        "dtype": dtype.name, "n_units": n_units, "n_utterances": len(ids),
        "n_tokens": offsets[-1], "dedup": dedup and bool(ids), "ids": ids,
        "source": units_jsonl.name, "frame_rate": rates.framing.frame_rate})
    return prefix


def load_packed(prefix: str | os.PathLike) -> tuple[np.memmap, np.ndarray, dict[str, Any]]:
    """Open packed units read-only.

    Returns:
        tokens: memmap (n_tokens,) of ``meta["dtype"]``; offsets: int64 (N + 1,); meta.
    """
    prefix = packed_prefix(prefix)
    paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bin", ".idx.npy", ".meta.json")}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise ArtifactError(f"packed units missing: {missing}; run `spokenlm tokenize run ... "
                            f"--pack` or spokenlm.tokenize.pack_units({prefix}.jsonl)")
    try:
        meta = read_json(paths[".meta.json"])
    except InputError as e:
        raise ArtifactError(str(e)) from e
    offsets = np.load(paths[".idx.npy"])
    n_tokens = int(meta.get("n_tokens", -1))
    if paths[".bin"].stat().st_size == 0:
        tokens = np.zeros(0, dtype=meta["dtype"]).view(np.memmap)
    else:
        tokens = np.memmap(paths[".bin"], dtype=meta["dtype"], mode="r")
    if len(tokens) != n_tokens or offsets[-1] != n_tokens or len(offsets) != meta["n_utterances"] + 1:
        raise ArtifactError(f"{prefix}.*: .bin has {len(tokens)} tokens, .idx.npy ends at "
                            f"{int(offsets[-1])}, meta says {n_tokens}; the files come from "
                            f"different runs, pack again with pack_units")
    return tokens, offsets, meta
