"""Manifest reading for the tokenize stage."""

from __future__ import annotations

import os

from ..audio.manifest import read_manifest
from ..common.errors import InputError

#: manifest columns copied into every units row
COPIED_COLUMNS = ("speaker", "text", "phonemes", "split", "path", "start", "duration")


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows of an audio manifest (absolute ``path``, unique ``id``); an error if empty."""
    rows = read_manifest(path)
    if not rows:
        raise InputError(f"{path}: the manifest lists no audio; make one with "
                         f"`spokenlm audio manifest`")
    return rows
