"""The ZeroSpeech 2021 lexical (sWUGGY) and syntactic (sBLIMP) folder layout, read as a
spokenlm benchmark.

A folder holds ``<filename>.wav`` files and ``gold.csv``:

- lexical: ``id,filename,word,voice,frequency,correct`` (a word, ``correct=1``, and its
  pseudo-word, ``correct=0``, share an ``id``; each is spoken by several voices);
- syntactic: ``id,filename,type,subtype,voice,correct,transcription`` (a grammatical and
  an ungrammatical sentence share an ``id``).

An item pairs the ``correct=1`` and ``correct=0`` rows with the same ``id`` and ``voice``;
its subset is the syntactic ``type`` (or ``lexical``). Extra columns are ignored.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from ..common.errors import InputError


def is_zr2021(root: Path) -> bool:
    return (Path(root) / "gold.csv").exists() and not (Path(root) / "items.jsonl").exists()


def load_zr2021(root: Path) -> tuple[str, dict[str, dict], list[dict]]:
    """(kind, audio rows by id, items) of a ZeroSpeech 2021 lexical/syntactic folder."""
    root = Path(root)
    gold = root / "gold.csv"
    with open(gold, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"id", "filename", "correct"}
    if not rows or not need <= set(rows[0]):
        raise InputError(f"{gold}: expected columns {sorted(need)} (ZeroSpeech 2021 gold.csv)")
    syntactic = "type" in rows[0]
    kind = "acceptability" if syntactic else "spot_the_word"
    audio: dict[str, dict] = {}
    pairs: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for row in rows:
        name = row["filename"]
        path = root / (name if name.endswith(".wav") else f"{name}.wav")
        aid = Path(name).stem
        audio[aid] = {"id": aid, "path": str(path), "speaker": row.get("voice", ""),
                      "text": row.get("word") or row.get("transcription") or None}
        pairs[(row["id"], row.get("voice", ""))][int(row["correct"])] = row
    items = []
    for (pid, voice), sides in sorted(pairs.items()):
        if set(sides) != {0, 1}:
            continue  # an unpaired row (a partial copy of the data set): nothing to compare
        good, bad = (Path(sides[c]["filename"]).stem for c in (1, 0))
        items.append({"id": f"{pid}_{voice}", "subset": sides[1].get("type") or "lexical",
                      "candidates": [good, bad], "answer": 0, "prompt": None,
                      "speaker": voice, "texts": [audio[good]["text"], audio[bad]["text"]]})
    if not items:
        raise InputError(f"{gold}: no (correct=1, correct=0) pair shares an id and voice")
    missing = [a["path"] for a in audio.values() if not Path(a["path"]).exists()]
    if missing:
        raise InputError(f"{root}: {len(missing)} wav files named in gold.csv are missing, "
                         f"e.g. {missing[0]}")
    return kind, audio, items
