"""Tiny replicas of the released benchmark layouts (sLM21, ProsAudit, TWIST StoryCloze,
SALMon, a ZeroSpeech 2021 dataset root), with short speech-like wavs, for tests.

Each builder writes the folder in the release's own file naming and ``gold.csv`` columns and
returns its path; see :mod:`spokenlm.eval.releases` for the layouts.
"""

from __future__ import annotations

import csv
import os
import random
import string
from collections.abc import Sequence
from pathlib import Path

from ..audio.load import save_wav
from .audio import random_speech_like_wav

#: the word frequencies of the lexical replica: one id per ZeroSpeech frequency band
LEXICAL_FREQUENCIES = (0, 3, 12, 57, 480)


def _name(rng: random.Random) -> str:
    """An 11-letter file name like the ZeroSpeech 2021 ones (``aAAfmkmQpVz``)."""
    return "".join(rng.choice(string.ascii_letters) for _ in range(11))


def _wav(path: Path, seed: int, seconds: float = 0.3) -> Path:
    return save_wav(path, random_speech_like_wav(seconds, seed=seed))


def _write_gold(root: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    with open(root / "gold.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def write_slm21_lexical(root: str | os.PathLike, voices: Sequence[str] = ("Alex", "Bruce"),
                        frequencies: Sequence[int] = LEXICAL_FREQUENCIES, seed: int = 0,
                        gold: bool = True, tie: bool = True) -> Path:
    """A lexical folder: one word / pseudo-word id per frequency, each spoken by every
    voice; gold rows shuffled (the tools pair them by id and voice). Pseudo-words have an
    empty ``word`` and ``frequency``, as released. With ``tie`` one pseudo-word is a copy of
    its word's wav (its pair ties)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for pid, freq in enumerate(frequencies, start=1):
        for voice in voices:
            for correct in (1, 0):
                name = _name(rng)
                same = tie and pid == 2 and voice == voices[0] and correct == 0
                _wav(root / f"{name}.wav", seed=seed * 1000 + (len(rows) - 1 if same
                                                               else len(rows)))
                rows.append({"filename": name, "id": pid, "voice": voice,
                             "frequency": freq if correct else "",
                             "word": f"word{pid}" if correct else "",
                             "phones": " ".join("abcdefg"[: 3 + pid % 3]) + ("" if correct
                                                                             else " x"),
                             "length": 3 + pid % 3, "correct": correct})
    rng.shuffle(rows)
    if gold:
        _write_gold(root, rows, ["filename", "id", "voice", "frequency", "word", "phones",
                                 "length", "correct"])
    return root


def write_pair_gold_folder(root: str | os.PathLike, types: Sequence[tuple[str, str]],
                           voices: Sequence[str] = ("Alex", "Bruce"), per_type: int = 2,
                           seed: int = 0, gold: bool = True) -> Path:
    """A syntactic-style folder (sLM21 syntactic, ProsAudit): ``per_type`` sentence ids for
    each (type, subtype), each spoken by every voice; each correct=1 row is followed by its
    correct=0 row (the order the tools pair them by)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    pid = 0
    for typ, subtype in types:
        for _ in range(per_type):
            pid += 1
            for voice in voices:
                for correct in (1, 0):
                    name = _name(rng)
                    _wav(root / f"{name}.wav", seed=seed * 1000 + len(rows),
                         seconds=0.3 + 0.05 * (pid % 3))
                    rows.append({"filename": name, "id": pid, "voice": voice, "type": typ,
                                 "subtype": subtype, "correct": correct,
                                 "transcription": f"sentence {pid} {'ok' if correct else 'bad'}"})
    if gold:
        _write_gold(root, rows, ["filename", "id", "voice", "type", "subtype", "correct",
                                 "transcription"])
    return root


def write_slm21_syntactic(root: str | os.PathLike, seed: int = 0, gold: bool = True) -> Path:
    return write_pair_gold_folder(root, [("anaphor_agreement", "anaphor_gender_agreement"),
                                         ("filler_gap_dependency", "wh_questions_object_gap"),
                                         ("island_effects", "adjunct_island")],
                                  seed=seed, gold=gold)


def write_prosaudit(root: str | os.PathLike, seed: int = 0) -> Path:
    return write_pair_gold_folder(root, [("protosyntax", "strong_weak"),
                                         ("lexical", "within_between")], per_type=3, seed=seed)


def write_storycloze(root: str | os.PathLike, n_stories: int = 6, naming: str = "labelled",
                     seed: int = 0) -> Path:
    """A TWIST StoryCloze folder: ``labelled`` (``<n>_correct.wav`` / ``<n>_incorrect.wav``)
    or ``numbered`` (``<2n>_story.wav`` the real ending, ``<2n+1>_story.wav`` the other)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(n_stories):
        for j, label in enumerate(("correct", "incorrect")):
            name = f"{n}_{label}" if naming == "labelled" else f"{2 * n + j}_story"
            _wav(root / f"{name}.wav", seed=seed * 1000 + 2 * n + j, seconds=0.4)
    return root


def write_salmon(root: str | os.PathLike, parts: Sequence[str] | None = None,
                 n_samples: int = 3, seed: int = 0) -> Path:
    """A SALMon release: ``<root>/<part>/sample_<i>_<j>.wav``, options j = 0 (right), 1."""
    from ..eval.releases.salmon import PARTS

    root = Path(root)
    for k, part in enumerate(parts or PARTS):
        for i in range(n_samples):
            for j in range(2):
                _wav(root / part / f"sample_{i}_{j}.wav", seed=seed * 1000 + 100 * k + 2 * i + j,
                     seconds=0.3)
    return root


def write_slm21_dataset(root: str | os.PathLike, seed: int = 0) -> Path:
    """A ZeroSpeech 2021 dataset root: lexical and syntactic dev (with gold.csv) and test
    (wavs only, as released), phonetic dev/test clean/other (wavs + .item), semantic
    dev/test librispeech/synthetic (wavs)."""
    root = Path(root)
    write_slm21_lexical(root / "lexical" / "dev", seed=seed)
    write_slm21_lexical(root / "lexical" / "test", seed=seed + 1, gold=False, tie=False)
    write_slm21_syntactic(root / "syntactic" / "dev", seed=seed)
    write_slm21_syntactic(root / "syntactic" / "test", seed=seed + 1, gold=False)
    k = 0
    for kind in ("dev", "test"):
        for part in ("clean", "other"):
            folder = root / "phonetic" / f"{kind}-{part}"
            for i in range(2):
                k += 1
                _wav(folder / f"{84 + i}-121123-{k:04d}.wav", seed=seed * 1000 + 500 + k,
                     seconds=0.5)
            (folder / f"{kind}-{part}.item").write_text(
                "#file onset offset #phone prev-phone next-phone speaker\n")
        for subset in ("librispeech", "synthetic"):
            for i in range(2):
                k += 1
                _wav(root / "semantic" / kind / subset / f"s{k:04d}.wav",
                     seed=seed * 1000 + 500 + k, seconds=0.2)
    return root
