"""Resolve "audio input" arguments: one audio file, a folder of audio, or a JSONL manifest."""

from __future__ import annotations

from pathlib import Path

from ..audio.manifest import read_manifest
from ..common.errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def audio_inputs(source: Path, limit: int | None = None, split: str | None = None) -> list[dict]:
    """Rows ``{"id", "path", ...}`` for ``source`` (file, folder or manifest), first ``limit``.

    ``split`` keeps only manifest rows of that split (rows without a split are kept).
    """
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source}: not found; pass an audio file, a folder of audio or a "
                         f"JSONL manifest")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
        rows = [{"id": p.stem, "path": str(p)} for p in files]
    elif source.suffix == ".jsonl":
        rows = read_manifest(source)
        if split is not None:
            rows = [r for r in rows if r.get("split", split) == split]
    else:
        rows = [{"id": source.stem, "path": str(source)}]
    return rows[:limit] if limit is not None else rows
