"""lhotse manifests in and out: ``spokenlm data from-lhotse`` and ``spokenlm data to-lhotse``.

In: a RecordingSet JSONL(.gz) with an optional SupervisionSet (one row per supervision, with
``start``/``duration``, ``speaker``, ``text``, ``recording_id``; one row per recording when
there are no supervisions), or a CutSet (one row per MonoCut/MultiCut, text of its
supervisions joined in time order, speaker when they share one). Each row's file is checked
from its header (``audio_info``), once per file however many rows cut it.

Rows spokenlm cannot read are skipped, each with its reason in ``<output>.skipped.jsonl``:
audio spread over several sources (one file per channel), sources that are not local files
(``url``, ``command``, ``memory``, Shar placeholders), recordings with lhotse transforms
(speed, resampling, ...), and rows that use only some channels of a file (spokenlm mixes all
channels of a file to mono: split the channel into its own file first). Mixed and padding
cuts are skipped too. Relative source paths are resolved against ``--root`` (default: the
current folder, which is what lhotse itself does).

Out: ``recordings.jsonl.gz``, ``supervisions.jsonl.gz`` and ``cuts.jsonl.gz`` (one cut and
one supervision per manifest row, ids kept; rows of one file share one recording, named by
the rows' ``recording_id``, else the row's id when it is the file's only row and covers it,
else the file's stem, ``-2``, ``-3``... added to keep ids distinct), absolute paths, all
read back by ``lhotse.load_manifest``. ``phonemes`` and ``split`` travel in the
supervision's ``custom`` fields and come back on import.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...audio.constants import MAX_DURATION_S, MIN_DURATION_S
from ...audio.load import printable
from ...audio.manifest import read_manifest
from ...common.errors import InputError
from ...common.files import atomic_dir, write_jsonl
from ...common.options import arg, command
from ...common.paths import ArtifactKind
from ...common.progress import log, progress
from ._importing import Headers, audio_row, refuse_duplicates, skip, write_imported

#: lhotse's own tolerance for a recording shorter than its manifest says (seconds).
TOLERANCE_S = 0.025
#: Files :func:`to_lhotse` writes; a folder holding them may be replaced by a new export.
RECORDINGS, SUPERVISIONS, CUTS = "recordings.jsonl.gz", "supervisions.jsonl.gz", "cuts.jsonl.gz"
LHOTSE_KIND = ArtifactKind("lhotse export", (RECORDINGS, SUPERVISIONS, CUTS))
#: Custom supervision fields that carry spokenlm row keys through lhotse.
CUSTOM_KEYS = ("phonemes", "split")
_SOURCE_TYPES = {"url": "a URL", "command": "a shell command", "memory": "bytes held in the "
                 "manifest", "shar": "a Lhotse Shar placeholder"}


@dataclass
class FromLhotseOptions:
    recordings: Path | None = arg(None, positional=True,
                                  help="RecordingSet JSONL(.gz) (or a CutSet, read as --cuts)")
    supervisions: Path | None = arg(None, help="SupervisionSet JSONL(.gz): one row per "
                                               "supervision")
    cuts: Path | None = arg(None, help="CutSet JSONL(.gz), instead of recordings")
    output: Path = arg(Path("manifest.jsonl"), short="-o", help="where to write the manifest")
    root: Path | None = arg(None, help="folder relative source paths are resolved against "
                                       "(None: the current folder, as lhotse does)")
    min_duration: float = arg(MIN_DURATION_S, help="skip rows shorter than this (s)")
    max_duration: float = arg(MAX_DURATION_S, help="skip rows longer than this (s)")


@command("data from-lhotse", FromLhotseOptions)
def from_lhotse(opts: FromLhotseOptions) -> Path:
    """Import lhotse recordings (+ supervisions) or cuts into a spokenlm manifest."""
    paths = {"recordings": opts.recordings, "supervisions": opts.supervisions,
             "cuts": opts.cuts}
    kinds = {name: _kind(path) for name, path in paths.items() if path is not None}
    if kinds.get("recordings") == "cuts" and opts.cuts is None:  # a CutSet passed positionally
        paths["cuts"], paths["recordings"] = paths.pop("recordings"), None
        kinds["cuts"] = kinds.pop("recordings")
    recordings, supervisions, cuts = paths["recordings"], paths["supervisions"], paths["cuts"]
    if (recordings is None) == (cuts is None):
        raise InputError("from-lhotse: pass a RecordingSet (positional, with --supervisions "
                         "if you have them) or a CutSet (--cuts), one of the two")
    if cuts is not None and supervisions is not None:
        raise InputError(f"{printable(supervisions)}: a CutSet carries its supervisions; "
                         f"drop --supervisions, or pass the RecordingSet instead of --cuts")
    for name, kind in kinds.items():
        if kind != name:
            flag = "the positional argument" if kind == "recordings" else f"--{kind}"
            raise InputError(f"{printable(paths[name])}: holds lhotse {kind}, not {name}; "
                             f"pass it as {flag}")
    root = Path(opts.root) if opts.root is not None else Path.cwd()
    limits = {"min_duration": opts.min_duration, "max_duration": opts.max_duration}
    if cuts is not None:
        rows, skipped = _cut_rows(cuts, root, limits)
        source = cuts
    else:
        rows, skipped = _recording_rows(recordings, supervisions, root, limits)
        source = supervisions or recordings
    return write_imported(rows, skipped, opts.output, source)


def _recording_rows(recordings: Path, supervisions: Path | None, root: Path,
                    limits: dict) -> tuple[list[dict], list[dict]]:
    from lhotse import Recording, SupervisionSegment

    recs: dict[str, Any] = {}
    skipped: list[dict] = []
    ids: list[tuple[str, str]] = []
    for lineno, raw in _iter_manifest(recordings):
        try:
            rec = Recording.from_dict(dict(raw))
        except Exception as e:  # noqa: BLE001 - any malformed row is skipped, with its reason
            skip(skipped, {"line": lineno, "reason": f"{printable(recordings)}:{lineno}: not "
                                  f"a lhotse recording ({type(e).__name__}: {e})"})
            continue
        ids.append((rec.id, f"line {lineno}"))
        recs[rec.id] = rec
    refuse_duplicates(ids, recordings)
    headers = Headers()
    rows: list[dict] = []
    if supervisions is None:
        for rec in progress(recs.values(), desc="checking recordings", unit="rec"):
            row, reason = _row(rec, rec.id, rec.channel_ids, None, None, root, headers, limits)
            _keep(row, reason, {"id": rec.id}, rows, skipped)
        return rows, skipped
    sup_ids: list[tuple[str, str]] = []
    for lineno, raw in progress(list(_iter_manifest(supervisions)), desc="checking "
                                "supervisions", unit="sup"):
        try:
            sup = SupervisionSegment.from_dict(dict(raw))
        except Exception as e:  # noqa: BLE001
            skip(skipped, {"line": lineno, "reason": f"{printable(supervisions)}:{lineno}: "
                                  f"not a lhotse supervision ({type(e).__name__}: {e})"})
            continue
        sup_ids.append((sup.id, f"line {lineno}"))
        rec = recs.get(sup.recording_id)
        entry = {"id": sup.id, "recording_id": sup.recording_id}
        if rec is None:
            skip(skipped, {**entry, "reason": f"{printable(supervisions)}:{lineno}: recording "
                                  f"{sup.recording_id!r} is not in {printable(recordings)}"})
            continue
        channels = sup.channel if isinstance(sup.channel, list) else [sup.channel]
        row, reason = _row(rec, sup.id, channels, sup.start, sup.duration, root, headers,
                           limits)
        if row is not None:
            row["recording_id"] = rec.id
            _labels(row, sup)
        _keep(row, reason, entry, rows, skipped)
    refuse_duplicates(sup_ids, supervisions)
    unused = len(set(recs) - {r.get("recording_id") for r in rows}
                 - {s.get("recording_id") for s in skipped})
    if unused:
        log(f"{printable(recordings)}: {unused} recordings have no supervision; not imported")
    return rows, skipped


def _cut_rows(cuts: Path, root: Path, limits: dict) -> tuple[list[dict], list[dict]]:
    from lhotse.cut.set import deserialize_cut

    headers = Headers()
    rows: list[dict] = []
    skipped: list[dict] = []
    ids: list[tuple[str, str]] = []
    for lineno, raw in progress(list(_iter_manifest(cuts)), desc="checking cuts", unit="cut"):
        uid = str(raw.get("id", f"line-{lineno}"))
        ids.append((uid, f"line {lineno}"))
        kind = raw.get("type")
        if kind not in ("MonoCut", "MultiCut", "Cut"):
            what = {"MixedCut": "several tracks mixed together", "PaddingCut": "padding, "
                    "no audio"}.get(kind, "an unknown cut type")
            skip(skipped, {"id": uid, "reason": f"{printable(cuts)}:{lineno}: a {kind} "
                                  f"({what}); spokenlm imports MonoCut and MultiCut only: save it "
                                  f"as audio first (cut.save_audio) and import the recordings"})
            continue
        try:
            cut = deserialize_cut(dict(raw))
        except Exception as e:  # noqa: BLE001
            skip(skipped, {"id": uid, "reason": f"{printable(cuts)}:{lineno}: not a lhotse "
                                  f"cut ({type(e).__name__}: {e})"})
            continue
        if cut.recording is None:
            skip(skipped, {"id": uid, "reason": f"{printable(cuts)}:{lineno}: cut {uid!r} "
                                  f"has no recording (features only); spokenlm needs the audio"})
            continue
        channels = cut.channel if isinstance(cut.channel, list) else [cut.channel]
        row, reason = _row(cut.recording, cut.id, channels, cut.start, cut.duration, root,
                           headers, limits)
        if row is not None:
            row["recording_id"] = cut.recording.id
            sups = sorted(cut.supervisions, key=lambda s: s.start)
            texts = [s.text.strip() for s in sups if s.text and s.text.strip()]
            if texts:
                row["text"] = " ".join(texts)
            speakers = {s.speaker for s in sups if s.speaker is not None}
            if len(speakers) == 1:
                row["speaker"] = str(speakers.pop())
            if len(sups) == 1:
                _labels(row, sups[0], text=False)
        _keep(row, reason, {"id": uid, "recording_id": cut.recording.id}, rows, skipped)
    refuse_duplicates(ids, cuts)
    return rows, skipped


def _row(rec: Any, uid: str, channels: list[int], start: float | None,
         duration: float | None, root: Path, headers: Headers, limits: dict
         ) -> tuple[dict | None, str | None]:
    """The manifest row for ``channels`` of ``[start, start + duration)`` of ``rec``."""
    where = f"recording {rec.id!r}"
    if len(rec.sources) != 1:
        return None, (f"{where}: audio in {len(rec.sources)} sources (e.g. one file per "
                      f"channel); spokenlm reads one file per row, merge them into one file")
    src = rec.sources[0]
    if src.type != "file":
        what = _SOURCE_TYPES.get(src.type, f"type {src.type!r}")
        return None, (f"{where}: its audio is {what}, not a local file; spokenlm reads "
                      f"files only, write the audio to files and import those")
    if rec.transforms:
        names = ", ".join(t["name"] if isinstance(t, dict) else type(t).__name__
                          for t in rec.transforms)
        return None, (f"{where}: has lhotse transforms ({names}) that spokenlm does not "
                      f"apply; save the transformed audio to files first")
    path = Path(src.source)
    path = (path if path.is_absolute() else root / path).absolute()
    header = headers.get(path)
    if isinstance(header, str):
        return None, header
    if header["sample_rate"] != rec.sampling_rate:
        return None, (f"{printable(path)}: header says {header['sample_rate']} Hz, the "
                      f"manifest {rec.sampling_rate} Hz; regenerate the lhotse manifest")
    if len(src.channels) != header["num_channels"] or set(channels) != set(src.channels):
        return None, (f"{where}: uses channel(s) {sorted(channels)} of a "
                      f"{header['num_channels']}-channel file ({printable(path)}); spokenlm "
                      f"mixes all channels of a file, so put each channel in its own file "
                      f"(e.g. `sox in.wav out.wav remix 1`)")
    if start is None and rec.duration > header["duration"] + TOLERANCE_S:
        return None, (f"{printable(path)}: {header['duration']:g} s by its header, the "
                      f"manifest says {rec.duration:g} s; regenerate the lhotse manifest")
    return audio_row(uid, path, header, start=start, duration=duration,
                     tolerance=TOLERANCE_S, **limits)


def _labels(row: dict, sup: Any, text: bool = True) -> None:
    """Copy speaker, text and the spokenlm custom fields of a supervision into ``row``."""
    if sup.speaker is not None:
        row["speaker"] = str(sup.speaker)
    if text and sup.text and sup.text.strip():
        row["text"] = sup.text.strip()
    for key in CUSTOM_KEYS:
        if sup.custom and sup.custom.get(key) is not None:
            row[key] = sup.custom[key]


def _keep(row: dict | None, reason: str | None, entry: dict, rows: list[dict],
          skipped: list[dict]) -> None:
    if row is None:
        skip(skipped, {**entry, "reason": reason})
    else:
        rows.append(row)


def _kind(path: Path) -> str:
    """What a lhotse JSONL manifest holds, from its first row: recordings, supervisions,
    cuts or features."""
    for lineno, row in _iter_manifest(path):
        if "sources" in row:
            return "recordings"
        if "storage_type" in row:  # before recording_id: feature rows have one too
            return "features"
        if "recording_id" in row:
            return "supervisions"
        if "type" in row and ("recording" in row or str(row["type"]).endswith("Cut")):
            return "cuts"
        raise InputError(f"{printable(path)}:{lineno}: not a lhotse manifest row (keys "
                         f"{sorted(row)[:8]}); pass a RecordingSet, SupervisionSet or CutSet")
    raise InputError(f"{printable(path)}: empty manifest; pass a lhotse manifest with rows")


def _iter_manifest(path: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, row)`` of a lhotse JSONL or JSONL.gz manifest."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{printable(path)}: file not found; pass a lhotse JSONL(.gz) "
                         f"manifest")
    if ".jsonl" not in path.suffixes:
        raise InputError(f"{printable(path)}: spokenlm reads lhotse JSONL manifests "
                         f"(.jsonl, .jsonl.gz); convert it with `python -c \"import lhotse; "
                         f"lhotse.load_manifest('{printable(path)}').to_file('out.jsonl.gz')\"`")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{printable(path)}:{lineno}: not valid JSON ({e}); "
                                     f"the manifest is damaged, regenerate it") from e
                if not isinstance(row, dict):
                    raise InputError(f"{printable(path)}:{lineno}: not a JSON object; pass "
                                     f"a lhotse manifest")
                yield lineno, row
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{printable(path)}: cannot be read as a lhotse manifest ({e}); "
                         f"pass the .jsonl or .jsonl.gz file lhotse wrote") from e


@dataclass
class ToLhotseOptions:
    manifest: Path = arg(positional=True, help="spokenlm manifest (JSONL)")
    output: Path = arg(Path("lhotse"), short="-o", help="folder for recordings.jsonl.gz, "
                                                        "supervisions.jsonl.gz, cuts.jsonl.gz")


@command("data to-lhotse", ToLhotseOptions)
def to_lhotse(opts: ToLhotseOptions) -> Path:
    """Export a spokenlm manifest as lhotse recordings, supervisions and cuts."""
    from lhotse import (AudioSource, CutSet, MonoCut, Recording, RecordingSet,
                        SupervisionSegment, SupervisionSet)
    from lhotse.cut import MultiCut

    rows = read_manifest(opts.manifest)
    headers = Headers()
    groups: dict[str, list[dict]] = {}
    skipped: list[dict] = []
    for row in progress(rows, desc="checking audio", unit="row"):
        path = os.fspath(Path(row["path"]).absolute())
        header = headers.get(path)
        if isinstance(header, str):
            skip(skipped, {"id": row["id"], "path": path, "reason": header})
            continue
        segment = "start" in row  # else a whole-file row: its length is the header's
        checked, reason = audio_row(row["id"], path, header, start=row.get("start"),
                                    duration=row.get("duration") if segment else None,
                                    tolerance=TOLERANCE_S, min_duration=0.0,
                                    max_duration=float("inf"))
        if checked is None:
            skip(skipped, {"id": row["id"], "path": path, "reason": reason})
            continue
        groups.setdefault(path, []).append({**row, **checked})
    if not groups:
        raise InputError(f"{printable(opts.manifest)}: no row has a readable audio file "
                         f"({len(skipped)} skipped); check the paths")
    recordings, supervisions, cuts = [], [], []
    taken: set[str] = set()
    for path, group in groups.items():
        header = headers.get(path)
        channels = list(range(header["num_channels"]))
        frames = round(header["duration"] * header["sample_rate"])
        rec = Recording(id=_recording_id(path, group, taken),
                        sources=[AudioSource(type="file", channels=channels, source=path)],
                        sampling_rate=header["sample_rate"], num_samples=frames,
                        duration=frames / header["sample_rate"])
        recordings.append(rec)
        for row in group:
            start = float(row.get("start", 0.0))
            duration = row["duration"] if "start" in row else rec.duration
            custom = {k: row[k] for k in CUSTOM_KEYS if row.get(k) is not None} or None
            channel = channels[0] if len(channels) == 1 else channels
            fields = {"channel": channel, "text": row.get("text"), "custom": custom,
                      "speaker": None if row.get("speaker") is None else str(row["speaker"])}
            sup = SupervisionSegment(id=row["id"], recording_id=rec.id, start=start,
                                     duration=duration, **fields)
            supervisions.append(sup)
            in_cut = SupervisionSegment(id=row["id"], recording_id=rec.id, start=0.0,
                                        duration=duration, **fields)
            cut_type = MonoCut if len(channels) == 1 else MultiCut
            cuts.append(cut_type(id=row["id"], start=start, duration=duration,
                                 channel=channel, recording=rec, supervisions=[in_cut]))
    with atomic_dir(opts.output, LHOTSE_KIND) as tmp:
        RecordingSet.from_recordings(recordings).to_file(tmp / RECORDINGS)
        SupervisionSet.from_segments(supervisions).to_file(tmp / SUPERVISIONS)
        CutSet.from_cuts(cuts).to_file(tmp / CUTS)
        write_jsonl(tmp / "skipped.jsonl", skipped)
    log(f"{printable(opts.output)}: {len(recordings)} recordings, {len(supervisions)} "
        f"supervisions and cuts; {len(skipped)} rows skipped (listed in skipped.jsonl)")
    return Path(opts.output)


def _recording_id(path: str, group: list[dict], taken: set[str]) -> str:
    """The recording id of the rows ``group`` of one file (rule in the module docstring)."""
    named = {r.get("recording_id") for r in group}
    if len(named) == 1 and None not in named:
        base = str(named.pop())
    elif len(group) == 1 and "start" not in group[0]:
        base = str(group[0]["id"])
    else:
        base = printable(Path(path).stem)
    uid, n = base, 1
    while uid in taken:
        n += 1
        uid = f"{base}-{n}"
    taken.add(uid)
    return uid
