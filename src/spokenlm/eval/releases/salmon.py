"""SALMon (Maimon et al. 2024, github.com/slp-rl/salmon) in its released folder layout,
paired as its ``salmon.py`` and slamkit's ``SalmonDataset`` pair it.

The release (``salmon_benchmark/``) has one folder per part, each of
``sample_<i>_<j>.wav`` files: sample ``i``'s option ``j``, where option 0 keeps the
acoustic property (speaker, gender, sentiment, background, room) consistent, or aligned
with the spoken content, and the others break it. The reference reads the sample number
as the second ``_``-separated field of the stem, sorts each sample's files by path and
compares the first (the right one) with the second; further options are not scored.

Parts: acoustic consistency (``speaker_consistency``, ``gender_consistency``,
``sentiment_consistency``, ``bg_domain_consistency``, ``bg_all_consistency``,
``rir_consistency``) and semantic-acoustic alignment (``sentiment_alignment``,
``bg_alignment``). A folder that is not a part, a wav whose name has no sample number, a
sample with one file, or a requested part that is missing raises
:class:`~spokenlm.common.errors.InputError`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...common.errors import InputError
from .base import Release, audio_row, band_table, is_hidden, mean_or_none

REFERENCE = ("SALMon: slp-rl/salmon salmon.py (SalmonDataset) and slp-rl/slamkit "
             "slamkit/metric/modelling_metric.py (SalmonDataset, salmon)")
CONSISTENCY = ("speaker_consistency", "gender_consistency", "sentiment_consistency",
               "bg_domain_consistency", "bg_all_consistency", "rir_consistency")
ALIGNMENT = ("sentiment_alignment", "bg_alignment")
PARTS = CONSISTENCY + ALIGNMENT
GROUPS = {**{p: "acoustic_consistency" for p in CONSISTENCY},
          **{p: "semantic_acoustic_alignment" for p in ALIGNMENT}}
METADATA = frozenset({".txt", ".json", ".jsonl", ".csv", ".md"})


def is_salmon(root: Path) -> bool:
    """A SALMon root (holding part folders) or one part folder."""
    root = Path(root)
    return root.name in PARTS or any((root / p).is_dir() for p in PARTS)


def load_salmon(root: Path, parts: Sequence[str] | None = None) -> Release:
    """Read the requested ``parts`` (default: all eight; ``["all"]`` too) of a SALMon
    root, or the one part ``root`` is."""
    root = Path(root)
    if root.name in PARTS and not any((root / p).is_dir() for p in PARTS):
        folders = {root.name: root}
        wanted = [root.name]
    else:
        folders = _part_folders(root)
        wanted = list(PARTS) if not parts or list(parts) == ["all"] else \
            [p.strip("/") for p in parts]
        unknown = [p for p in wanted if p not in PARTS]
        if unknown:
            raise InputError(f"--parts {unknown[0]}: not a SALMon part; choose from "
                             f"{', '.join(PARTS)} or all")
        missing = [p for p in wanted if p not in folders]
        if missing:
            raise InputError(f"{root}: SALMon part {missing[0]}/ is missing ({len(missing)} of "
                             f"{len(wanted)} requested); re-extract salmon_benchmark.zip or "
                             f"score the parts you have with `spokenlm eval salmon --parts`")
    audio: dict[str, dict] = {}
    items: list[dict] = []
    for part in wanted:
        for index, files in samples(folders[part]):
            ids = []
            for path in files[:2]:
                aid = f"{part}/{path.stem}"
                audio[aid] = audio_row(aid, path)
                ids.append(aid)
            items.append({"id": f"{part}/{index}", "subset": part, "group": GROUPS[part],
                          "candidates": ids, "answer": 0, "prompt": None})
    return Release(f"SALMon ({root.name})", "salmon", root, audio, items, REFERENCE,
                   aggregate_salmon)


def _part_folders(root: Path) -> dict[str, Path]:
    folders = {}
    for p in sorted(root.iterdir()):
        if is_hidden(p) or (p.is_file() and p.suffix.lower() in METADATA):
            continue
        if not p.is_dir() or p.name not in PARTS:
            raise InputError(f"{root / p.name}: not a SALMon part (the parts are "
                             f"{', '.join(PARTS)}); remove it or pass the SALMon folder")
        folders[p.name] = p
    return folders


def samples(folder: Path) -> list[tuple[int, list[Path]]]:
    """(sample number, its wavs sorted by path) of a part folder, by sample number."""
    by_index: dict[int, list[Path]] = defaultdict(list)
    for p in folder.iterdir():
        if is_hidden(p) or (p.is_file() and p.suffix.lower() in METADATA):
            continue
        fields = p.stem.split("_")
        if p.suffix.lower() != ".wav" or p.is_dir() or len(fields) < 2 or \
                not fields[1].isdigit():
            raise InputError(f"{p}: not a SALMon sample (sample_<i>_<j>.wav); remove it")
        by_index[int(fields[1])].append(p)
    if not by_index:
        raise InputError(f"{folder}: no sample_<i>_<j>.wav files; re-extract the part")
    out = []
    for index in sorted(by_index):
        files = sorted(by_index[index], key=str)
        if len(files) < 2:
            raise InputError(f"{folder}: sample {index} has only {files[0].name}; every "
                             "sample needs its option 0 and a second option")
        out.append((index, files))
    return out


def aggregate_salmon(items: Sequence[dict], decisions: Sequence[float]) -> dict:
    """SALMon's report: the accuracy of each part (``by_part``, what ``salmon.py`` prints),
    and spokenlm's unweighted mean of the parts of each group (``by_group``)."""
    by_part = band_table(decisions, [i["subset"] for i in items], PARTS)
    groups: dict[str, list[float]] = defaultdict(list)
    for part, row in by_part.items():
        groups[GROUPS[part]].append(row["score"])
    return {"score": mean_or_none(decisions), "n": len(decisions), "by_part": by_part,
            "by_group": {g: float(np.mean(v)) for g, v in groups.items()}}
