"""Spoken StoryCloze (sSC) and topic StoryCloze (tSC) as the TWIST authors release them
(github.com/slp-rl/SpokenStoryCloze), paired as slamkit pairs them.

Each wav is a whole spoken story, its four sentences and one ending; a story's two files
(the real ending and the other) are scored on their own, with no separate prompt.
slamkit (``slamkit/metric/modelling_metric.py``: ``ModellingMetricDataset``, used by
``storycloze`` with ``config/metric/sstorycloze.yaml`` / ``tstorycloze.yaml``) lists the
folder's wavs, sorts them by the integer before the first ``_`` of the file name, and pairs
files 2i and 2i+1 with the first one the right ending. With ``subfolder=true`` every
subfolder is sorted on its own.

Read here:

- a folder of ``<n>_....wav`` files (``sSC/``, ``tSC/``), or a folder of such folders (each
  a subset, named by the folder);
- where every file has its own number, files are sorted and paired as slamkit does;
- where the two files of a story share a number, the name must say which is the real one:
  ``<n>_correct.wav`` / ``<n>_incorrect.wav`` (also ``pos``/``neg``, ``positive``/
  ``negative`` as a ``_``-separated word of the name), so the pairing never depends on the
  order a file system lists files in (slamkit's sort keeps that order for ties).

Anything else (a wav without the number, an odd number of files, three files for one
story, other audio) raises :class:`~spokenlm.common.errors.InputError`; text files
(``.txt``, ``.json``, ``.csv``, ``.md``) next to the wavs are allowed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ...common.errors import InputError
from .base import Release, audio_row, band_table, is_hidden, mean_or_none

REFERENCE = ("slamkit: slp-rl/slamkit slamkit/metric/modelling_metric.py "
             "(ModellingMetricDataset, storycloze)")
NUMBERED = re.compile(r"^(\d+)_")
RIGHT = frozenset({"correct", "pos", "positive"})
WRONG = frozenset({"incorrect", "neg", "negative"})
METADATA = frozenset({".txt", ".json", ".jsonl", ".csv", ".md"})


def _entries(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(wavs, subfolders, other files) of ``folder``, hidden entries left out."""
    wavs, dirs, other = [], [], []
    for p in sorted(folder.iterdir()):
        if is_hidden(p):
            continue
        if p.is_dir():
            dirs.append(p)
        elif p.suffix.lower() == ".wav":
            wavs.append(p)
        elif p.suffix.lower() not in METADATA:
            other.append(p)
    return wavs, dirs, other


def _numbered(wavs: Sequence[Path]) -> bool:
    return bool(wavs) and any(NUMBERED.match(w.name) for w in wavs)


def is_storycloze(root: Path) -> bool:
    """A folder of ``<n>_*.wav`` files, or a folder whose subfolders all are."""
    wavs, dirs, _ = _entries(root)
    if wavs:
        return _numbered(wavs)
    return bool(dirs) and all(_numbered(_entries(d)[0]) for d in dirs)


def load_storycloze(root: Path) -> Release:
    root = Path(root)
    wavs, dirs, other = _entries(root)
    if other:
        raise InputError(f"{root}: {other[0].name} is not a wav; a StoryCloze folder holds "
                         "<n>_*.wav files only: remove it")
    if wavs and dirs:
        raise InputError(f"{root}: holds both wavs and the folder {dirs[0].name}; pass the "
                         "sSC or tSC folder itself")
    folders = [root] if wavs else dirs
    audio: dict[str, dict] = {}
    items: list[dict] = []
    for folder in folders:
        subset = folder.name
        if folder is not root:
            fwavs, fdirs, fother = _entries(folder)
            stray = fdirs + fother
            if stray:
                raise InputError(f"{folder}: {stray[0].name} is not a <n>_*.wav file of a "
                                 "StoryCloze subset; remove it")
        else:
            fwavs = wavs
        prefix = "" if folder is root else f"{subset}/"
        for n, right, wrong in pair_files(folder, fwavs):
            ids = []
            for path in (right, wrong):
                aid = f"{prefix}{path.stem}"
                audio[aid] = audio_row(aid, path)
                ids.append(aid)
            items.append({"id": f"{prefix}{n}", "subset": subset, "candidates": ids,
                          "answer": 0, "prompt": None})
    if not items:
        raise InputError(f"{root}: no StoryCloze pairs found; pass the sSC or tSC folder")
    return Release(f"StoryCloze ({root.name})", "story_cloze", root, audio, items, REFERENCE,
                   aggregate_storycloze)


def _label(path: Path) -> str | None:
    words = set(path.stem.lower().split("_")[1:])
    if words & RIGHT:
        return "right"
    if words & WRONG:
        return "wrong"
    return None


def pair_files(folder: Path, wavs: Sequence[Path]) -> list[tuple[int, Path, Path]]:
    """(story number, right file, wrong file) of every story in ``folder``."""
    by_number: dict[int, list[Path]] = defaultdict(list)
    for w in wavs:
        m = NUMBERED.match(w.name)
        if m is None:
            raise InputError(f"{w}: a StoryCloze file name starts with its number and '_' "
                             "(e.g. 12_correct.wav); rename or remove it")
        by_number[int(m.group(1))].append(w)
    sizes = {len(v) for v in by_number.values()}
    if sizes == {1}:  # every file has its own number: slamkit's sorted pairs 2i, 2i+1
        order = [by_number[k][0] for k in sorted(by_number)]
        if len(order) % 2:
            raise InputError(f"{folder}: {len(order)} wavs, an odd number, so the last one "
                             f"({order[-1].name}) has no pair; the folder is incomplete")
        return [(int(NUMBERED.match(order[i].name).group(1)), order[i], order[i + 1])
                for i in range(0, len(order), 2)]
    out = []
    for n in sorted(by_number):
        files = by_number[n]
        labels = {_label(f): f for f in files}
        if len(files) != 2 or set(labels) != {"right", "wrong"}:
            names = ", ".join(f.name for f in files)
            raise InputError(f"{folder}: story {n} has the files {names}; a story is two "
                             f"files named {n}_correct.wav and {n}_incorrect.wav (or every "
                             "file numbered on its own, the right ending first)")
        out.append((n, labels["right"], labels["wrong"]))
    return out


def aggregate_storycloze(items: Sequence[dict], decisions: Sequence[float]) -> dict:
    """slamkit's StoryCloze accuracy: the mean decision over all pairs (``score``), and per
    subfolder (``by_subset``)."""
    return {"score": mean_or_none(decisions), "n": len(decisions),
            "by_subset": band_table(decisions, [i["subset"] for i in items])}
