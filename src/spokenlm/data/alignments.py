"""Phone (and word) alignments from the files aligners write, as intervals per utterance.

:func:`read_alignments` reads any of these, chosen by the path (suffix, folder, or a look at
the first line when the suffix says nothing):

- **TextGrid** (Praat; what the Montreal Forced Aligner writes): one file per utterance, its
  id the file stem. The tier is ``phones`` (or ``words``) by default. MFA names the tiers
  ``<speaker> - phones`` / ``<speaker> - words`` when a file holds several speakers; those
  tiers are merged in time order and each interval keeps its speaker (their silences are
  dropped first; speech of two speakers that overlaps is an error). Stretches of the tier
  with no interval, and its start and end, become silence intervals.
- **folder of TextGrids**: MFA's output folder, which mirrors the corpus folders; searched
  recursively, ids are file stems (as ``spokenlm audio manifest`` makes them), so two files
  with the same stem are an error.
- **CTM** (``.ctm``, or a file named ``ctm``): ``<utterance> <channel> <start> <duration>
  <token> [<confidence>]`` per line, several utterances per file, phone- or word-level (as
  Kaldi's ``ali-to-phones --ctm-output`` / ``lattice-to-ctm-conf`` after ``int2sym.pl``, or
  MFA); the channel is ignored, ``;;`` lines are comments, end = start + duration. Gaps stay
  unlabelled (a CTM does not give the utterance's length).
- **JSONL**: spokenlm's labels file, ``{"id": ..., "intervals": [[start_s, end_s, label],
  ...]}`` per line (``spokenlm asr align``, either aligner).

Labels are normalised the same way for every format:

- silence: an empty label, ``sil``, ``sp`` and ``spn`` (any case; MFA's silence, short pause
  and spoken noise, which is what MFA puts on out-of-vocabulary words) become
  ``silence_label`` (``SIL``), so ``eval pnmi --ignore SIL`` leaves them out and ABX items
  treat them as silence; ``silence_label=None`` leaves them as written (and a TextGrid's
  blanks unlabelled);
- Kaldi word-position suffixes go (``AH0_B``, ``T_E``, ``S_I``, ``K_S`` -> ``AH0``, ``T``,
  ``S``, ``K``);
- ARPAbet stress digits are stripped (``AH0``, ``IY1`` -> ``AH``, ``IY``) unless
  ``strip_stress=False``: ZeroSpeech 2021 / libri-light item files and the usual PNMI
  setups use the 39 stress-free ARPAbet phones. Only labels of 2-3 capital letters and a
  final 0, 1 or 2 are touched, so IPA or espeak phone names are left alone.

Intervals must be sorted and must not overlap (a tolerance of 0.1 ms absorbs rounding):
anything else is an error naming the file, the utterance and the interval.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from ..common.errors import InputError
from ..common.progress import progress

#: what a silence becomes (``eval pnmi --ignore SIL``; ABX items skip it)
SILENCE = "SIL"
#: labels read as silence (lower-cased): empty, MFA's silence, short pause, spoken noise
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn"})
#: slack (seconds) allowed when checking that intervals are sorted and do not overlap
TOLERANCE = 1e-4

#: help strings shared by the commands that read alignments
ALIGNMENTS_HELP = ("alignments: a TextGrid, a folder of TextGrids (MFA output; ids = file "
                   "stems), a CTM file, or a labels JSONL {id, intervals}")
TIER_HELP = ("TextGrid tier to read: phones or words (MFA's '<speaker> - phones' tiers are "
             "found too)")
SILENCE_HELP = ("label that empty, sil, sp and spn intervals become ('none' keeps them as "
                "written)")
STRESS_HELP = "strip ARPAbet stress digits (AH0 -> AH), as ZeroSpeech and PNMI setups do"

Format = Literal["textgrid", "textgrid_dir", "ctm", "jsonl"]

_STRESS = re.compile(r"([A-Z]{2,3})[012]")
_POSITION = re.compile(r"(.+)_[BEIS]")


class Interval(NamedTuple):
    """One labelled stretch of an utterance, in seconds."""

    start: float
    end: float
    label: str


class Alignments(dict):
    """``{utterance id: [Interval, ...]}`` (sorted, non-overlapping), read from ``source``.

    ``speakers`` holds, for the utterances whose TextGrid tiers name their speaker (MFA's
    ``<speaker> - phones``), the speaker of each interval (a list as long as the
    intervals; ``None`` for the silences between speakers).
    """

    def __init__(self, data: dict[str, list[Interval]] | None = None, *, source: Path,
                 format: Format, speakers: dict[str, list[str | None]] | None = None) -> None:
        super().__init__(data or {})
        self.source = Path(source)
        self.format = format
        self.speakers: dict[str, list[str | None]] = speakers or {}


def is_silence(label: str, silence_label: str | None = SILENCE) -> bool:
    """Whether ``label`` (normalised or as written) is a silence."""
    return label == silence_label or label.strip().lower() in SILENCE_LABELS


def normalize_label(label: str, silence_label: str | None = SILENCE,
                    strip_stress: bool = True) -> str:
    """A label as :func:`read_alignments` returns it (see the module docstring)."""
    text = str(label).strip()
    m = _POSITION.fullmatch(text)
    if m:
        text = m.group(1)
    if text.lower() in SILENCE_LABELS:
        return text if silence_label is None else silence_label
    if strip_stress:
        m = _STRESS.fullmatch(text)
        if m:
            text = m.group(1)
    return text


def alignment_format(path: str | Path) -> Format:
    """Which reader :func:`read_alignments` uses for ``path``."""
    path = Path(path)
    if path.is_dir():
        return "textgrid_dir"
    if not path.exists():
        raise InputError(f"{path}: alignments not found; pass a TextGrid, a folder of "
                         f"TextGrids, a CTM or a labels JSONL")
    suffix = path.suffix.lower()
    if suffix == ".textgrid":
        return "textgrid"
    if suffix == ".ctm" or path.name.lower() == "ctm":
        return "ctm"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    first = _first_line(path)
    if first.startswith("{"):
        return "jsonl"
    if "ooTextFile" in first:
        return "textgrid"
    if len(first.split()) in (5, 6) and all(_is_number(x) for x in first.split()[2:4]):
        return "ctm"
    raise InputError(f"{path}: not a TextGrid, CTM or labels JSONL (first line {first[:60]!r}); "
                     f"name it .TextGrid, .ctm or .jsonl, or pass a folder of TextGrids")


def read_alignments(path: str | Path, tier: str = "phones", silence_label: str | None = SILENCE,
                    strip_stress: bool = True) -> Alignments:
    """Intervals per utterance from a TextGrid, a folder of TextGrids, a CTM or a labels
    JSONL (see the module docstring); ``tier`` is only read from TextGrids."""
    path = Path(path)
    fmt = alignment_format(path)
    norm = {"silence_label": silence_label, "strip_stress": strip_stress}
    if fmt == "ctm":
        return Alignments(read_ctm(path, **norm), source=path, format=fmt)
    if fmt == "jsonl":
        return Alignments(read_labels_jsonl(path, **norm), source=path, format=fmt)
    files = [path] if fmt == "textgrid" else progress(
        textgrid_files(path), desc="textgrids", unit="file")
    out, speakers = {}, {}
    for f in files:
        intervals, spk = read_textgrid(f, tier, **norm)
        out[f.stem] = intervals
        if spk is not None:
            speakers[f.stem] = spk
    return Alignments(out, source=path, format=fmt, speakers=speakers)


# ---- TextGrid ---------------------------------------------------------------------------


def textgrid_files(root: Path) -> list[Path]:
    """The TextGrids under ``root`` (recursive, hidden files left out); stems must be unique."""
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() == ".textgrid"
                   and p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{root}: no .TextGrid file in this folder or below; pass the "
                         f"aligner's output folder")
    seen: dict[str, Path] = {}
    for p in files:
        if p.stem in seen:
            raise InputError(f"{p} and {seen[p.stem]} both give utterance id {p.stem!r}; "
                             f"rename one, or read the two folders separately")
        seen[p.stem] = p
    return files


def read_textgrid(path: Path, tier: str = "phones", silence_label: str | None = SILENCE,
                  strip_stress: bool = True) -> tuple[list[Interval], list[str | None] | None]:
    """Intervals of ``tier`` in one TextGrid, and the speaker of each when the tiers are
    MFA's per-speaker ``<speaker> - <tier>`` ones (else None)."""
    from praatio import textgrid
    from praatio.data_classes.interval_tier import IntervalTier

    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False,
                                   reportingMode="silence")
    except Exception as e:  # praatio raises many kinds (IndexError on a truncated file)
        detail = " ".join(str(e).split()) or type(e).__name__
        raise InputError(f"{path}: not a readable TextGrid ({detail}); re-export it from "
                         f"the aligner or Praat") from e
    chosen = _tiers(tg.tierNames, tier)
    if not chosen:
        raise InputError(f"{path}: no tier {tier!r} (tiers: "
                         f"{', '.join(repr(n) for n in tg.tierNames) or 'none'}); pass "
                         f"--tier with one of them")
    merged: list[tuple[Interval, str | None]] = []
    lo, hi = math.inf, -math.inf
    for name, speaker in chosen:
        t = tg.getTier(name)
        if not isinstance(t, IntervalTier):
            raise InputError(f"{path}: tier {name!r} is a point tier, not intervals; pass "
                             f"--tier with an interval tier")
        lo, hi = min(lo, t.minTimestamp), max(hi, t.maxTimestamp)
        for start, end, label in t.entries:
            lab = normalize_label(label, silence_label, strip_stress)
            if len(chosen) > 1 and is_silence(lab, silence_label):
                continue  # a speaker's silence may overlap another's speech
            merged.append((Interval(float(start), float(end), lab), speaker))
    merged.sort(key=lambda x: x[0].start)
    where = f"{path} tier{'s' if len(chosen) > 1 else ''} " + ", ".join(repr(n) for n, _ in chosen)
    check_intervals([iv for iv, _ in merged], where)
    if silence_label is not None:
        merged = _fill_gaps(merged, lo, hi, silence_label)
    speakers = [s for _, s in merged] if any(s is not None for _, s in chosen) else None
    return [iv for iv, _ in merged], speakers


def _tiers(names: Sequence[str], tier: str) -> list[tuple[str, str | None]]:
    """``[(tier name, speaker)]``: the tier named ``tier``, else MFA's per-speaker ones."""
    if tier in names:
        return [(tier, None)]
    pattern = re.compile(rf"(.+?)\s*-\s*{re.escape(tier)}")
    return [(n, m.group(1).strip()) for n in names if (m := pattern.fullmatch(n))]


def _fill_gaps(items: list[tuple[Interval, str | None]], lo: float, hi: float, label: str
               ) -> list[tuple[Interval, str | None]]:
    """``items`` with silence intervals in the gaps, and from ``lo`` / to ``hi``."""
    out: list[tuple[Interval, str | None]] = []
    t = lo
    for iv, spk in items:
        if iv.start - t > TOLERANCE:
            out.append((Interval(t, iv.start, label), None))
        out.append((iv, spk))
        t = max(t, iv.end)
    if math.isfinite(hi) and hi - t > TOLERANCE:
        out.append((Interval(t, hi, label), None))
    return out


# ---- CTM ---------------------------------------------------------------------------------


def read_ctm(path: Path, silence_label: str | None = SILENCE, strip_stress: bool = True
             ) -> dict[str, list[Interval]]:
    """Intervals per utterance of a CTM file (see the module docstring)."""
    out: dict[str, list[Interval]] = {}
    where: dict[str, list[str]] = {}
    tokens_all_ints = True
    for lineno, line in _text_lines(path):
        if not line or line.startswith(";;"):
            continue
        parts = line.split()
        if len(parts) not in (5, 6):
            raise InputError(f"{path}:{lineno}: expected `<utterance> <channel> <start> "
                             f"<duration> <token> [<confidence>]`, got {len(parts)} fields "
                             f"({line[:60]!r}); fix the line or re-export the CTM")
        if not all(_is_number(x) for x in parts[2:4] + parts[5:]):
            raise InputError(f"{path}:{lineno}: start, duration and confidence must be numbers "
                             f"({line[:60]!r}); fix the line or re-export the CTM")
        start, dur = float(parts[2]), float(parts[3])
        if start < 0 or dur < 0:
            raise InputError(f"{path}:{lineno}: negative start or duration ({line[:60]!r}); "
                             f"fix the line or re-export the CTM")
        tokens_all_ints &= parts[4].isdigit()
        label = normalize_label(parts[4], silence_label, strip_stress)
        out.setdefault(parts[0], []).append(Interval(start, start + dur, label))
        where.setdefault(parts[0], []).append(f"{path}:{lineno}")
    if not out:
        raise InputError(f"{path}: no CTM line; pass a non-empty CTM file")
    if tokens_all_ints:
        raise InputError(f"{path}: every token is an integer id; map them to phone or word "
                         f"symbols first (Kaldi: utils/int2sym.pl -f 5 phones.txt)")
    for uid, ivs in out.items():
        check_intervals(ivs, f"{path} utterance {uid!r}", where[uid])
    return out


# ---- JSONL -------------------------------------------------------------------------------


def read_labels_jsonl(path: Path, silence_label: str | None = SILENCE,
                      strip_stress: bool = True) -> dict[str, list[Interval]]:
    """Intervals per utterance of a labels JSONL ``{"id", "intervals": [[s, e, label]]}``."""
    from ..common.files import iter_jsonl

    out: dict[str, list[Interval]] = {}
    for n, row in enumerate(iter_jsonl(path), 1):
        if not isinstance(row, dict) or "id" not in row or not isinstance(
                row.get("intervals"), list):
            raise InputError(f"{path}: row {n} is not {{\"id\", \"intervals\": [[start_s, "
                             f"end_s, label], ...]}}; regenerate the labels file")
        uid = str(row["id"])
        if uid in out:
            raise InputError(f"{path}: row {n}: duplicate id {uid!r}; ids must be unique")
        ivs = []
        for k, iv in enumerate(row["intervals"]):
            if (not isinstance(iv, (list, tuple)) or len(iv) < 3
                    or not all(_is_number(x) for x in iv[:2])):
                raise InputError(f"{path}: row {n} ({uid!r}) interval {k} is "
                                 f"{json.dumps(iv)[:60]}, not [start_s, end_s, label]; "
                                 f"regenerate the labels file")
            ivs.append(Interval(float(iv[0]), float(iv[1]),
                                normalize_label(str(iv[2]), silence_label, strip_stress)))
        check_intervals(ivs, f"{path} row {n} ({uid!r})")
        out[uid] = ivs
    return out


# ---- shared ------------------------------------------------------------------------------


def check_intervals(intervals: Sequence[Interval], where: str,
                    lines: Sequence[str] | None = None) -> None:
    """Raise :class:`InputError` unless ``intervals`` are finite, end >= start, sorted and
    not overlapping (within :data:`TOLERANCE`). ``lines`` names where each one was read."""
    prev_end = -math.inf
    for k, iv in enumerate(intervals):
        at = lines[k] if lines else f"{where}, interval {k}"
        if not (math.isfinite(iv.start) and math.isfinite(iv.end)) or iv.end < iv.start:
            raise InputError(f"{at}: interval [{iv.start}, {iv.end}] {iv.label!r} does not end "
                             f"after it starts; fix or re-export the alignment")
        if iv.start < prev_end - TOLERANCE:
            raise InputError(f"{at}: interval [{iv.start}, {iv.end}] {iv.label!r} starts before "
                             f"the previous one ends ({prev_end}) in {where}; intervals must be "
                             f"sorted and must not overlap: fix or re-export the alignment")
        prev_end = max(prev_end, iv.end)


def _text_lines(path: Path) -> Iterable[tuple[int, str]]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as e:
                raise InputError(f"{path}:{lineno}: not UTF-8 text ({e.reason}); pass the "
                                 f"alignment file meant here, not a binary one") from e


def _first_line(path: Path) -> str:
    try:
        for _, line in _text_lines(path):
            if line and not line.startswith(";;"):
                return line
    except InputError:
        pass
    with open(path, "rb") as f:  # e.g. a UTF-16 TextGrid saved by Praat
        head = f.read(400).replace(b"\x00", b"")
    return head.decode("utf-8", "replace").strip().splitlines()[0] if head.strip() else ""


def _is_number(x: object) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, float)):
        return math.isfinite(x)
    try:
        return math.isfinite(float(str(x)))
    except ValueError:
        return False
