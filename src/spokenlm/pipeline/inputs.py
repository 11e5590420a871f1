"""Resolve "audio input" arguments: one audio file, a folder of audio, or a JSONL manifest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..audio.manifest import read_manifest
from ..common.errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def audio_inputs(source: Path, limit: int | None = None, split: str | None = None) -> list[dict]:
    """Rows ``{"id", "path", ...}`` for ``source`` (file, folder or manifest), first ``limit``.

    ``split`` keeps only manifest rows of that split (rows without a split are kept). Files of
    a folder get distinct ids (:func:`folder_ids`).
    """
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: not found; pass an audio file, a folder of audio or a "
                         f"JSONL manifest")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
        rows = [{"id": uid, "path": str(p)} for uid, p in zip(folder_ids(files, source), files)]
    elif source.suffix == ".jsonl":
        rows = read_manifest(source)
        if split is not None:
            rows = [r for r in rows if r.get("split", split) == split]
    else:
        rows = [{"id": source.stem, "path": str(source)}]
    return rows[:limit] if limit is not None else rows


def folder_ids(files: list[Path], root: Path) -> list[str]:
    """One distinct utterance id per file under ``root``: the file stems when they are unique
    (as ``spokenlm audio manifest`` does), else the path relative to ``root`` without its
    suffix (``a/x``, ``b/x``), keeping the suffix where even that clashes (``a/x.wav`` and
    ``a/x.flac``). Ids may hold ``/``; file names come from them via
    :func:`~spokenlm.common.paths.unique_names`."""
    stems = [p.stem for p in files]
    if len(set(stems)) == len(stems):
        return stems
    rel = [p.relative_to(root).with_suffix("").as_posix() for p in files]
    clash = {r for r, n in Counter(rel).items() if n > 1}
    return [p.relative_to(root).as_posix() if r in clash else r for r, p in zip(rel, files)]
