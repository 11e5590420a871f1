"""ZeroSpeech 2021 sLM21 lexical (sWUGGY) and syntactic (sBLIMP) folders, and ProsAudit's
(the same ``gold.csv`` layout), read and aggregated as the ZeroSpeech tools do.

A folder (``lexical/dev``, ``syntactic/test``, ProsAudit's ``english/dev``, ...) holds
``<filename>.wav`` files and ``gold.csv``:

- lexical: ``filename,id,voice,frequency,word,phones,length,correct``: a word
  (``correct=1``) and its pseudo-word (``correct=0``) share an ``id``, each spoken by
  several voices; ``frequency`` is the word's count in LibriSpeech (0: out of vocabulary);
- syntactic: ``filename,id,voice,type,subtype,correct,transcription``;
- ProsAudit: the syntactic columns with ``type`` ``protosyntax`` or ``lexical``.

Pairs and aggregation follow ``zerospeech/zerospeech2021`` (``lexical.py``, ``syntactic.py``,
``leaderboard.py``) and ``zerospeech/benchmarks`` (``tasks/lm/lexical.py``,
``tasks/lm/syntactic.py``, ``tasks/lm/prosody.py``):

- lexical pairs join the word and pseudo-word rows on (``id``, ``voice``); the pair scores
  1 / 0.5 / 0 are averaged over voices per ``id`` (``by_pair``); the headline is the mean
  over ids (``lexical_all``), then by frequency band (``oov`` = 0, ``1-5``, ``6-20``,
  ``21-100``, ``>100`` as ``pandas.cut`` with bins [0, 1, 5, 20, 100, inf), right-open) and
  by length; in-vocabulary (``lexical_invocab``) is the mean over the ids of the non-oov
  bands (the leaderboard's n-weighted mean of those bands);
- syntactic and ProsAudit pair the k-th ``correct=1`` row with the k-th ``correct=0`` row
  of the file (the tools align them by position), averaged over voices per (``type``,
  ``subtype``, ``id``) (ProsAudit: per (``type``, ``id``)), then by ``type``.

Extra columns are ignored. A file that gold.csv names but the folder lacks, a wav that
gold.csv does not name, a pair with a side missing, or rows the tools would pair across
ids raise :class:`~spokenlm.common.errors.InputError`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ...common.errors import InputError
from .base import Release, audio_row, band_table, check_files, grouped_means, mean_or_none

GOLD = "gold.csv"
#: ZeroSpeech's frequency bands: label and right-open upper bound
BANDS = (("oov", 1.0), ("1-5", 5.0), ("6-20", 20.0), ("21-100", 100.0), (">100", float("inf")))
BAND_LABELS = tuple(b for b, _ in BANDS)
PROSAUDIT_TYPES = frozenset({"protosyntax", "lexical"})
REFERENCE = ("ZeroSpeech 2021 tools: zerospeech/zerospeech2021 lexical.py, syntactic.py, "
             "leaderboard.py; zerospeech/benchmarks tasks/lm/")


def is_gold_folder(root: Path) -> bool:
    return (root / GOLD).is_file()


def read_gold(root: Path) -> list[dict[str, str]]:
    """Rows of ``root/gold.csv`` (whitespace stripped); checks the columns every format needs."""
    gold = root / GOLD
    try:
        with open(gold, newline="", encoding="utf-8-sig") as f:
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()}
                    for r in csv.DictReader(f)]
    except UnicodeDecodeError as e:
        raise InputError(f"{gold}: not UTF-8 text; pass the benchmark's gold.csv") from e
    need = {"id", "filename", "correct"}
    if not rows or not need <= set(rows[0]):
        raise InputError(f"{gold}: expected columns {sorted(need)} and at least one row "
                         "(a ZeroSpeech 2021 / ProsAudit gold.csv)")
    for n, row in enumerate(rows, start=2):
        if row["correct"] not in ("0", "1"):
            raise InputError(f"{gold}: line {n}: correct must be 0 or 1, not "
                             f"{row['correct']!r}")
    return rows


def gold_format(rows: Sequence[dict[str, str]]) -> str:
    """``lexical``, ``syntactic`` or ``prosaudit``, from the columns and the ``type`` values."""
    if "type" not in rows[0]:
        return "lexical"
    types = {r["type"] for r in rows}
    return "prosaudit" if types <= PROSAUDIT_TYPES else "syntactic"


def load_gold_folder(root: Path) -> Release:
    """Read a lexical, syntactic or ProsAudit folder as a :class:`Release`."""
    root = Path(root)
    rows = read_gold(root)
    fmt = gold_format(rows)
    audio = _audio(root, rows, text_col="word" if fmt == "lexical" else "transcription")
    if fmt == "lexical":
        return Release(f"sLM21 lexical ({root.name})", "spot_the_word", root, audio,
                       lexical_items(rows, root), REFERENCE, aggregate_lexical)
    items = positional_items(rows, root)
    if fmt == "prosaudit":
        return Release(f"ProsAudit ({root.name})", "prosaudit", root, audio, items,
                       REFERENCE, aggregate_prosaudit)
    return Release(f"sLM21 syntactic ({root.name})", "acceptability", root, audio, items,
                   REFERENCE, aggregate_syntactic)


def _stem(name: str) -> str:
    return name[:-4] if name.endswith(".wav") else name


def _audio(root: Path, rows: Sequence[dict[str, str]], text_col: str) -> dict[str, dict]:
    audio: dict[str, dict] = {}
    for row in rows:
        aid = _stem(row["filename"])
        if aid in audio:
            raise InputError(f"{root / GOLD}: file {row['filename']} is listed twice; "
                             "each wav is one row of gold.csv")
        audio[aid] = audio_row(aid, root / f"{aid}.wav", row.get("voice", ""),
                               row.get(text_col) or None)
    check_files(root, (f"{a}.wav" for a in audio), GOLD, allowed=(GOLD,))
    return audio


def frequency_band(value: float | None) -> str | None:
    """ZeroSpeech's band of a LibriSpeech word count (None: no count or a negative one)."""
    if value is None or value < 0:
        return None
    return next(label for label, upper in BANDS if value < upper)


def _number(row: dict[str, str], col: str, root: Path) -> float | None:
    text = row.get(col, "")
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{root / GOLD}: {col} of {row['filename']} is {text!r}, not a "
                         "number") from None


def lexical_items(rows: Sequence[dict[str, str]], root: Path) -> list[dict]:
    """Word / pseudo-word pairs joined on (id, voice), in the order of the words."""
    sides: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: {"1": [], "0": []})
    for row in rows:
        sides[(row["id"], row.get("voice", ""))][row["correct"]].append(row)
    items = []
    for (pid, voice), side in sides.items():
        if len(side["1"]) != 1 or len(side["0"]) != 1:
            raise InputError(f"{root / GOLD}: id {pid} voice {voice!r} has {len(side['1'])} "
                             f"word rows and {len(side['0'])} pseudo-word rows, not one of "
                             "each; fix or re-download gold.csv")
        word, nonword = side["1"][0], side["0"][0]
        freq = _number(word, "frequency", root)
        length = _number(word, "length", root)
        band = frequency_band(freq)
        items.append({
            "id": f"{pid}_{voice}", "subset": band or "lexical",
            "candidates": [_stem(word["filename"]), _stem(nonword["filename"])],
            "answer": 0, "prompt": None, "speaker": voice, "pair_id": pid, "voice": voice,
            "frequency": freq, "band": band, "length": None if length is None else int(length),
            "texts": [word.get("word") or word.get("phones") or None,
                      nonword.get("word") or nonword.get("phones") or None]})
    return items


def positional_items(rows: Sequence[dict[str, str]], root: Path) -> list[dict]:
    """The k-th correct=1 row paired with the k-th correct=0 row, as the syntactic and
    prosody tools pair them; both rows of a pair must share id and voice."""
    good = [r for r in rows if r["correct"] == "1"]
    bad = [r for r in rows if r["correct"] == "0"]
    if len(good) != len(bad):
        raise InputError(f"{root / GOLD}: {len(good)} correct=1 rows but {len(bad)} "
                         "correct=0 rows; every sentence needs its pair")
    items = []
    for g, b in zip(good, bad):
        key_g, key_b = (g["id"], g.get("voice", "")), (b["id"], b.get("voice", ""))
        if key_g != key_b:
            raise InputError(f"{root / GOLD}: the official tools pair {g['filename']} (id "
                             f"{key_g[0]}, voice {key_g[1]!r}) with {b['filename']} (id "
                             f"{key_b[0]}, voice {key_b[1]!r}) by row order; put each "
                             "correct=0 row in the same order as its correct=1 row")
        pid, voice = key_g
        items.append({
            "id": f"{pid}_{voice}", "subset": g.get("type") or "syntactic",
            "candidates": [_stem(g["filename"]), _stem(b["filename"])], "answer": 0,
            "prompt": None, "speaker": voice, "pair_id": pid, "voice": voice,
            "type": g.get("type", ""), "subtype": g.get("subtype", ""),
            "texts": [g.get("transcription") or None, b.get("transcription") or None]})
    return items


def aggregate_lexical(items: Sequence[dict], decisions: Sequence[float]) -> dict:
    """ZeroSpeech's lexical report: ``score`` (lexical_all), ``in_vocab`` (lexical_invocab),
    ``oov``, ``by_frequency`` and ``by_length`` tables over the per-id means."""
    per_id = grouped_means(items, decisions, ["pair_id"])
    scores = [m for _, _, m in per_id]
    bands = [first["band"] for _, first, _ in per_id]
    out: dict = {"score": mean_or_none(scores), "n": len(scores)}
    if any(b is not None for b in bands):
        table = band_table(scores, bands, BAND_LABELS)
        out["in_vocab"] = mean_or_none([s for s, b in zip(scores, bands)
                                        if b is not None and b != "oov"])
        out["oov"] = table.get("oov", {}).get("score")
        out["by_frequency"] = table
    lengths = [first["length"] for _, first, _ in per_id]
    if any(x is not None for x in lengths):
        out["by_length"] = band_table(scores, lengths)
    return out


def aggregate_syntactic(items: Sequence[dict], decisions: Sequence[float]) -> dict:
    """ZeroSpeech's syntactic report: ``score`` (mean over (type, subtype, id) of the mean
    over voices) and ``by_type``."""
    per_pair = grouped_means(items, decisions, ["type", "subtype", "pair_id"])
    scores = [m for _, _, m in per_pair]
    types = [first["type"] for _, first, _ in per_pair]
    return {"score": mean_or_none(scores), "n": len(scores),
            "by_type": band_table(scores, types)}


def aggregate_prosaudit(items: Sequence[dict], decisions: Sequence[float]) -> dict:
    """ProsAudit's report (``tasks/lm/prosody.py``): ``by_type`` (``protosyntax``,
    ``lexical``) over the per-(type, id) means over voices; ``score`` is their overall mean."""
    per_pair = grouped_means(items, decisions, ["type", "pair_id"])
    scores = [m for _, _, m in per_pair]
    types = [first["type"] for _, first, _ in per_pair]
    return {"score": mean_or_none(scores), "n": len(scores),
            "by_type": band_table(scores, types)}
