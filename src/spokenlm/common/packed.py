"""The packed-units format: one flat memmap of token ids for LM training (nanoGPT-style).

``<prefix>.bin``: all sequences back to back (uint16 when every LM token id fits, else
uint32; BOS/EOS are added by the LM data loader); ``<prefix>.idx.npy``: int64 (N + 1,)
offsets, sequence i is ``bin[idx[i]:idx[i + 1]]``; ``<prefix>.meta.json``: ``dtype``,
``n_utterances``, ``n_tokens`` and what the writer adds (``n_units``, ``ids``, ``dedup``,
``source``, ``frame_rate``, ...).

This module is the format's one reader (:func:`load_packed`) and one writer
(:func:`write_packed`); ``spokenlm.tokenize.pack_units`` packs a units JSONL with it,
``spokenlm.lm`` reads it, ``lm interleave-data`` writes interleaved token ids with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError, InputError
from .files import atomic_path, read_json, write_json

#: special tokens the unit LM adds after the units (BOS, EOS, PAD)
N_SPECIALS = 3
PACK_SUFFIXES = (".bin", ".idx.npy", ".meta.json")


def packed_dtype(n_units: int, n_specials: int = N_SPECIALS) -> np.dtype:
    """uint16 when every LM token id (``n_units`` + ``n_specials``) fits, else uint32."""
    return np.dtype(np.uint16 if n_units + n_specials <= np.iinfo(np.uint16).max else np.uint32)


def prefix_of(path: str | os.PathLike) -> Path:
    """Where packed files go: ``data/units.jsonl`` or ``data/units`` -> ``data/units``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".jsonl" else path


def packed_files(prefix: str | os.PathLike) -> dict[str, Path]:
    """``{".bin": <prefix>.bin, ".idx.npy": ..., ".meta.json": ...}``."""
    prefix = Path(prefix)
    return {ext: prefix.with_name(prefix.name + ext) for ext in PACK_SUFFIXES}


def packed_prefix(path: str | os.PathLike) -> Path:
    """Packed prefix for a prefix, a units ``.jsonl`` (sibling packed files) or a packed file;
    raises InputError unless the three files are there."""
    path = Path(path)
    for suffix in (".jsonl", *PACK_SUFFIXES):
        if path.name.endswith(suffix):
            path = path.with_name(path.name[: -len(suffix)])
            break
    missing = [str(path) + s for s in PACK_SUFFIXES if not Path(str(path) + s).exists()]
    if missing:
        raise InputError(f"{path}: packed units not found (missing {', '.join(missing)}); "
                         "pack the units JSONL with `spokenlm tokenize run` (it writes "
                         "<name>.bin, <name>.idx.npy and <name>.meta.json next to it)")
    return path


def write_packed(prefix: str | os.PathLike, seqs: Iterable[Sequence[int] | np.ndarray],
                 dtype: np.dtype | type,
                 meta: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> Path:
    """Write ``<prefix>.bin / .idx.npy / .meta.json`` (each file atomically).

    Args:
        prefix: output prefix (as given; :func:`prefix_of` makes one from a JSONL path).
        seqs: the sequences' token ids, streamed into ``.bin`` as ``dtype``.
        dtype: see :func:`packed_dtype`.
        meta: the writer's meta fields, or a function giving them once ``seqs`` is consumed;
            ``dtype``, ``n_utterances`` and ``n_tokens`` are added here.
    Returns:
        the prefix.
    """
    prefix, dtype = Path(prefix), np.dtype(dtype)
    paths = packed_files(prefix)
    offsets = [0]
    with atomic_path(paths[".bin"]) as tmp, open(tmp, "wb") as f:
        for seq in seqs:
            ids = np.asarray(seq, dtype=dtype)
            f.write(ids.tobytes())
            offsets.append(offsets[-1] + ids.size)
    with atomic_path(paths[".idx.npy"]) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(offsets, dtype=np.int64))
    extra = dict(meta() if callable(meta) else meta)
    write_json(paths[".meta.json"], {"dtype": dtype.name, "n_utterances": len(offsets) - 1,
                                     "n_tokens": offsets[-1], **extra})
    return prefix


def load_packed(prefix: str | os.PathLike) -> tuple[np.memmap, np.ndarray, dict[str, Any]]:
    """Open packed units read-only (``prefix`` or ``prefix.jsonl``).

    Returns:
        tokens: memmap (n_tokens,) of ``meta["dtype"]``; offsets: int64 (N + 1,); meta.
    """
    prefix = prefix_of(prefix)
    paths = packed_files(prefix)
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
    if (len(tokens) != n_tokens or offsets[-1] != n_tokens
            or len(offsets) != meta["n_utterances"] + 1):
        raise ArtifactError(f"{prefix}.*: .bin has {len(tokens)} tokens, .idx.npy ends at "
                            f"{int(offsets[-1])}, meta says {n_tokens}; the files come from "
                            f"different runs, pack again with pack_units")
    return tokens, offsets, meta


def find_packed(path: str | os.PathLike) -> tuple[np.memmap, np.ndarray, dict[str, Any]]:
    """:func:`load_packed` for every path form of :func:`packed_prefix` (a prefix, the units
    ``.jsonl`` or one of the packed files); InputError when the files are not there."""
    return load_packed(packed_prefix(path))
