"""Audio manifests: one JSONL row per utterance, the contract between spokenlm's stages.

Row keys: ``id``, ``path`` (absolute, or relative to the manifest's folder), ``duration``
(seconds), ``sample_rate`` and ``num_channels`` (of the file as stored; it is mixed to mono
and resampled when loaded), and when known ``speaker``, ``text``, ``phonemes``, ``split``.
A row with ``start`` (seconds) names the segment [start, start + duration) of its file
(see :func:`spokenlm.audio.load.load_row`, which every reader of rows uses).

:func:`make_manifest` scans a folder, validates every file by loading it, and writes the
manifest plus a skip report ``<name>.skipped.jsonl`` listing each rejected file and why
(including dangling symlinks, directories and other non-files named like audio).

File names that are not valid UTF-8 are kept. Their ``path`` holds the name as Python
decodes it (``os.fsdecode``: each bad byte becomes a lone surrogate), which JSON writes as a
``\\udcXX`` escape: the manifest stays ASCII, and ``json.loads`` + ``os.fsencode`` (or simply
``open``/``Path`` on Linux) give back the original bytes. Their ``id`` and ``speaker`` show
such bytes as ``\\xff`` text, so they are plain valid Unicode wherever they are written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..common.errors import InputError
from ..common.files import iter_jsonl, write_jsonl
from ..common.options import arg, command
from ..common.paths import store_row
from ..common.progress import log, progress
from .constants import MAX_DURATION_S, MIN_DURATION_S
from .librispeech_layout import multi_split_root
from .load import (SEGMENT_KEYS, AudioError, audio_info, decode_audio, printable,
                   validate_audio)

#: Keys every manifest row written by spokenlm has.
REQUIRED_KEYS = ("id", "path", "duration", "sample_rate", "num_channels")
#: Keys a manifest row must have to be read (hand-made manifests may lack the others).
READ_KEYS = ("id", "path")
#: Formats soundfile (libsndfile >= 1.1) decodes.
AUDIO_EXTENSIONS = ["wav", "flac", "ogg", "mp3"]


@dataclass
class ManifestOptions:
    root: Path = arg(positional=True, help="folder of audio files (searched recursively)")
    output: Path = arg(Path("manifest.jsonl"), short="-o", help="where to write the manifest")
    extensions: list[str] = arg(AUDIO_EXTENSIONS, help="file extensions to include")
    min_duration: float = arg(MIN_DURATION_S, help="reject files shorter than this (s)")
    max_duration: float = arg(MAX_DURATION_S, help="reject files longer than this (s), from "
                                                   "their header; later stages load whole "
                                                   "files, so split longer ones")
    speaker_from: Literal["folder", "none"] = arg(
        "folder", help="folder: speaker = first sub-folder under root (LibriSpeech layout; "
                       "in a root of LibriSpeech split folders, <split>/<speaker>/<chapter>)")
    transcripts: bool = arg(True, help="read text from LibriSpeech *.trans.txt files or a "
                                       "sibling <stem>.txt / <stem>.lab")
    jobs: int = arg(2, help="files validated in parallel")


def skip_report_path(manifest: str | os.PathLike) -> Path:
    """``dir/train.jsonl`` -> ``dir/train.skipped.jsonl``."""
    manifest = Path(manifest)
    stem = manifest.name[:-len(".jsonl")] if manifest.name.endswith(".jsonl") else manifest.name
    return manifest.with_name(f"{stem}.skipped.jsonl")


@command("audio manifest", ManifestOptions)
def make_manifest(opts: ManifestOptions) -> Path:
    """Write a JSONL manifest of every valid audio file under a folder, and a skip report."""
    root = Path(opts.root)
    if not root.is_dir():
        raise InputError(f"{printable(root)}: not a folder; pass the folder that holds your "
                         f"audio files")
    exts = {"." + e.lower().lstrip(".") for e in opts.extensions}
    # every entry named like audio, files or not: audio_info reports the non-files
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts
                   and not p.name.startswith("."))
    if not files:
        raise InputError(f"{printable(root)}: no audio files with extensions {sorted(exts)}; "
                         f"check the folder or pass --extensions")
    texts = _transcripts(root, files) if opts.transcripts else {}
    splits = _librispeech_splits(root)

    def check(path: Path) -> tuple[dict | None, str | None]:
        try:
            info = audio_info(path, max_duration=opts.max_duration)
            validate_audio(decode_audio(path, info), path, min_duration=opts.min_duration)
        except AudioError as e:
            return None, str(e)
        row = {"path": path.resolve(), "duration": round(info.frames / info.samplerate, 4),
               "sample_rate": info.samplerate, "num_channels": info.channels}
        if opts.speaker_from == "folder":
            row.update(_folder_labels(path, root, splits))
        if path in texts:
            row["text"] = texts[path]
        return row, None

    kept: dict[Path, dict] = {}
    skipped = []
    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        for path, (row, reason) in zip(files, progress(pool.map(check, files), total=len(files),
                                                       desc="validating audio", unit="file")):
            if row is None:
                log(f"skipped {reason}")
                skipped.append({"path": str(path), "reason": reason})
            else:
                kept[path] = row
    report = skip_report_path(opts.output)
    write_jsonl(report, [store_row(r, report, ("path",), levels=0) for r in skipped])
    if not kept:
        raise InputError(f"{printable(root)}: all {len(files)} audio files were rejected; "
                         f"see {printable(report)}")
    ids = _unique_ids(list(kept), root)  # of kept files only: a rejected one cannot clash
    rows = [{"id": ids[path], **row} for path, row in kept.items()]
    write_manifest(rows, opts.output)
    hours = sum(r["duration"] for r in rows) / 3600
    log(f"{printable(opts.output)}: {len(rows)} files, {hours:.2f} h; {len(skipped)} skipped "
        f"(listed in {printable(report)})")
    return opts.output


def _librispeech_splits(root: Path) -> tuple[Path, list[str]] | None:
    """The split folders of a LibriSpeech root (see
    :func:`spokenlm.audio.librispeech_layout.multi_split_root`), announced in the log."""
    found = multi_split_root(root)
    if found is not None:
        log(f"{printable(root)}: a LibriSpeech root with splits {found[1]}; speaker, chapter "
            f"and split are taken from <split>/<speaker>/<chapter>/ (`spokenlm data "
            f"librispeech` imports it from the headers alone, with --splits)")
    return found


def _folder_labels(path: Path, root: Path, splits: tuple[Path, list[str]] | None
                   ) -> dict[str, str]:
    """``speaker`` = first sub-folder under ``root``; in a LibriSpeech root with split folders
    ``split``, ``speaker`` and ``chapter`` from ``<split>/<speaker>/<chapter>/<file>``."""
    if splits is not None:
        base, names = splits
        parts = path.relative_to(base).parts if base in path.parents else ()
        if len(parts) >= 4 and parts[0] in names:
            return {"speaker": printable(parts[1]), "chapter": printable(parts[2]),
                    "split": printable(parts[0])}
    rel = path.relative_to(root)
    return {"speaker": printable(rel.parts[0])} if len(rel.parts) > 1 else {}


def _unique_ids(files: list[Path], root: Path) -> dict[Path, str]:
    """File stems when they are unique, else relative paths without extension, '/' -> '_'
    (bytes that are not UTF-8 shown as ``\\xff``)."""
    stems = [printable(p.stem) for p in files]
    if len(set(stems)) == len(stems):
        return dict(zip(files, stems))
    ids: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    for p in files:
        uid = printable(p.relative_to(root).with_suffix("").as_posix()).replace("/", "_")
        if uid in seen:
            raise InputError(f"{printable(p)} and {printable(seen[uid])} both get utterance id "
                             f"{uid!r}; rename one of them")
        seen[uid] = p
        ids[p] = uid
    return ids


def _transcripts(root: Path, files: list[Path]) -> dict[Path, str]:
    """Text per audio file from LibriSpeech ``*.trans.txt`` or sibling ``.txt``/``.lab``."""
    by_dir_stem: dict[tuple[Path, str], str] = {}
    for trans in root.rglob("*.trans.txt"):
        for lineno, line in enumerate(trans.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            if not text:
                log(f"{trans}:{lineno}: no text after id {uid!r}; line ignored")
                continue
            by_dir_stem[(trans.parent, uid)] = text.strip()
    out: dict[Path, str] = {}
    for p in files:
        text = by_dir_stem.get((p.parent, p.stem))
        if text is None:
            for ext in (".txt", ".lab"):
                side = p.with_suffix(ext)
                if side.is_file():
                    text = " ".join(side.read_text(errors="replace").split())
                    break
        if text:
            out[p] = text
    return out


def write_manifest(rows: Iterable[dict], path: str | os.PathLike) -> Path:
    """Write ``rows`` atomically. Absolute paths under the manifest's folder are stored
    relative to it; relative paths are kept as given (read back relative to the manifest)."""
    path = Path(path)
    base = path.parent.resolve()
    out, seen = [], set()
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise InputError(f"{path}: row {i} ({row.get('id', '?')}) lacks {missing}; every "
                             f"row needs {list(REQUIRED_KEYS)}")
        if row["id"] in seen:
            raise InputError(f"{path}: duplicate utterance id {row['id']!r}; ids must be unique")
        seen.add(row["id"])
        _check_numbers(row, f"{path}: row {i}")
        audio = Path(row["path"])
        if audio.is_absolute():
            try:
                audio = audio.resolve().relative_to(base)
            except ValueError:
                audio = audio.resolve()
        out.append({**row, "path": audio.as_posix()})
    return write_jsonl(path, out)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a manifest with ``path`` made absolute (relative paths are taken from the
    manifest's folder). Raises :class:`InputError` naming the manifest for a bad row."""
    path = Path(path)
    base = path.parent.resolve()
    rows, seen = [], set()
    for lineno, row in enumerate(iter_jsonl(path), 1):
        missing = [k for k in READ_KEYS if k not in row]
        if missing:
            raise InputError(f"{path}: row {lineno} lacks {missing}; every row needs "
                             f"{list(READ_KEYS)} (regenerate it with `spokenlm audio "
                             f"manifest`)")
        if row["id"] in seen:
            raise InputError(f"{path}: row {lineno}: duplicate id {row['id']!r}; ids must be "
                             f"unique")
        seen.add(row["id"])
        _check_numbers(row, f"{path}: row {lineno}")
        audio = Path(row["path"])
        row["path"] = str(audio if audio.is_absolute() else base / audio)
        rows.append(row)
    return rows


def _check_numbers(row: dict, where: str) -> None:
    """Raise :class:`InputError` unless the row's ``start`` and ``duration``, when given
    (not None), are numbers >= 0 (seconds)."""
    for key in SEGMENT_KEYS:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise InputError(f"{where} (id {row.get('id')!r}): {key}={value!r}; {key} is in "
                             f"seconds, a number >= 0 (fix the row or regenerate the manifest)")
