"""Hugging Face datasets saved to disk in: ``spokenlm data from-hf DIR --output OUT``.

``DIR`` is what ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk`` wrote; each split
becomes ``OUT/<split>.jsonl`` (rows carry ``split``; a single Dataset without ``--split``
gives ``OUT/manifest.jsonl``), with its skip report ``OUT/<split>.skipped.jsonl`` and a
summary ``OUT/import.json``. The folder is written whole or not at all, and a rerun replaces
only a folder of its own kind.

The audio column is read undecoded (``Audio(decode=False)``: recent ``datasets`` decode with
torchcodec, which spokenlm does not need), as ``{"bytes", "path"}``:

- audio held as bytes in the arrow files is written out under ``OUT/audio/<split>/``: WAV
  and FLAC bytes as they are, any other format libsndfile decodes (mp3, ogg) as FLAC.
  Bytes identical to an existing file at their absolute ``path`` are not copied; that file
  is referenced instead.
- audio with only a ``path`` (datasets saved before ``save_to_disk`` embedded files) is
  referenced where it lies; a relative path is taken from the current folder, as
  ``datasets`` itself does.

Every file is checked from its header (``audio_info``). Ids come from ``--id-column`` (an id
that repeats becomes ``<id>-<row index>``), else ``<split>-<row index>``; text and speaker
from ``--text-column`` and ``--speaker-column`` when the dataset has them.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ...audio.constants import MAX_DURATION_S, MIN_DURATION_S
from ...audio.load import AudioError, check_header, printable
from ...common.errors import InputError
from ...common.files import atomic_dir, write_json
from ...common.options import arg, command
from ...common.paths import ArtifactKind, unique_names
from ...common.progress import log, progress
from ._importing import Headers, audio_row, skip, write_imported

SUMMARY = "import.json"
HF_IMPORT_KIND = ArtifactKind("Hugging Face import", (SUMMARY,))
#: Formats whose bytes are written out unchanged; others are decoded and written as FLAC.
_KEPT_FORMATS = {"WAV": ".wav", "WAVEX": ".wav", "FLAC": ".flac"}
#: FLAC holds at most 8 channels; files with more are written as WAV.
_FLAC_MAX_CHANNELS = 8


@dataclass
class FromHFOptions:
    dataset: Path = arg(positional=True, scanned=True,
                        help="folder written by Dataset/DatasetDict.save_to_disk")
    output: Path = arg(Path("hf_import"), short="-o", help="folder for the manifests (one "
                                                           "per split) and extracted audio")
    split: str | None = arg(None, help="import only this split of a DatasetDict (for a single "
                                       "Dataset: the split name its rows get)")
    audio_column: str = arg("audio", help="column holding the audio")
    text_column: str = arg("text", help="column holding the transcript (skipped if absent)")
    speaker_column: str = arg("speaker_id", help="column holding the speaker (skipped if "
                                                 "absent)")
    id_column: str = arg("id", help="column holding utterance ids (if absent: "
                                    "<split>-<row index>)")
    min_duration: float = arg(MIN_DURATION_S, help="skip rows shorter than this (s)")
    max_duration: float = arg(MAX_DURATION_S, help="skip rows longer than this (s)")


@command("data from-hf", FromHFOptions)
def from_hf(opts: FromHFOptions) -> Path:
    """Import a Hugging Face dataset saved to disk: one manifest per split, audio extracted."""
    splits = _load(Path(opts.dataset), opts.split)
    summary: dict[str, Any] = {"type": "spokenlm-hf-import",
                               "dataset": os.fspath(Path(opts.dataset).absolute()),
                               "splits": {}}
    with atomic_dir(opts.output, HF_IMPORT_KIND) as tmp:
        total, first = 0, None
        for name, ds in splits.items():
            columns = _columns(ds, opts, name)
            rows, skipped = _split_rows(ds, name, columns, tmp, opts)
            manifest = tmp / f"{name or 'manifest'}.jsonl"
            write_imported(rows, skipped, manifest, opts.dataset, require_rows=False)
            summary["splits"][name or ""] = {"manifest": manifest.name, "rows": len(rows),
                                             "skipped": len(skipped), "columns": columns}
            total += len(rows)
            first = first or (skipped[0]["reason"] if skipped else None)
        if not total:
            raise InputError(f"{printable(opts.dataset)}: no usable rows in any split, nothing "
                             f"written; the first reason: {first}")
        write_json(tmp / SUMMARY, summary)
    return Path(opts.output)


def _load(path: Path, split: str | None) -> dict[str | None, Any]:
    """``{split name: Dataset}`` of a saved Dataset or DatasetDict (``None``: unnamed)."""
    import datasets

    if not path.is_dir():
        raise InputError(f"{printable(path)}: not a folder; pass the folder that "
                         f"save_to_disk wrote")
    try:
        loaded = datasets.load_from_disk(os.fspath(path))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise InputError(f"{printable(path)}: not a dataset saved with save_to_disk ({e}); "
                         f"pass the folder that Dataset.save_to_disk or "
                         f"DatasetDict.save_to_disk wrote") from e
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:
            return dict(loaded)
        if split not in loaded:
            raise InputError(f"{printable(path)}: no split {split!r}; it has "
                             f"{sorted(loaded)}, pass one of them to --split")
        return {split: loaded[split]}
    return {split: loaded}


def _columns(ds: Any, opts: FromHFOptions, split: str | None) -> dict[str, str | None]:
    """The columns to read (``None``: absent, for text/speaker/id left at their default)."""
    from datasets import Audio

    defaults = {f.name: f.default for f in fields(FromHFOptions)}
    names = list(ds.column_names)
    audio = opts.audio_column
    if audio not in names:
        found = [c for c, f in ds.features.items() if isinstance(f, Audio)]
        if audio != defaults["audio_column"] or len(found) != 1:
            raise InputError(f"{printable(opts.dataset)}: split {split!r} has no column "
                             f"{audio!r} (columns: {names}); pass the audio column as "
                             f"--audio-column")
        audio = found[0]
        log(f"split {split!r}: audio from column {audio!r}")
    feature = ds.features[audio]
    is_struct = isinstance(feature, dict) and {"bytes", "path"} <= set(feature)
    if not isinstance(feature, Audio) and not is_struct:
        raise InputError(f"{printable(opts.dataset)}: column {audio!r} is {feature}, not "
                         f"audio; pass the column of type Audio as --audio-column")
    out: dict[str, str | None] = {"audio": audio}
    for key in ("text", "speaker", "id"):
        name = getattr(opts, f"{key}_column")
        if name in names:
            out[key] = name
        elif name == defaults[f"{key}_column"]:
            out[key] = None
        else:
            raise InputError(f"{printable(opts.dataset)}: split {split!r} has no column "
                             f"{name!r} (columns: {names}); check --{key}-column")
    return out


def _split_rows(ds: Any, split: str | None, columns: dict[str, str | None], out: Path,
                opts: FromHFOptions) -> tuple[list[dict], list[dict]]:
    from datasets import Audio

    if isinstance(ds.features[columns["audio"]], Audio):
        ds = ds.cast_column(columns["audio"], Audio(decode=False))
    ds = ds.select_columns([c for c in columns.values() if c is not None])
    ids = _ids(ds, split, columns["id"], opts.dataset)
    names = unique_names(ids)
    folder = out / "audio" / (split or "all")
    headers = Headers()
    limits = {"min_duration": opts.min_duration, "max_duration": opts.max_duration,
              "tolerance": 0.0}
    rows: list[dict] = []
    skipped: list[dict] = []
    for i, example in enumerate(progress(ds, desc=f"importing {split or 'dataset'}",
                                         total=len(ds), unit="row")):
        uid = ids[i]
        where = f"{printable(opts.dataset)} [{split or ''}][{i}] ({uid})"
        path, reason = _audio_file(example[columns["audio"]], folder / names[uid], where)
        header = reason or headers.get(path)
        if isinstance(header, str):
            reason = header
            row = None
        else:
            row, reason = audio_row(uid, path, header, **limits)
        if row is None:
            skip(skipped, {"id": uid, "index": i, "reason": reason})
            continue
        text = example.get(columns["text"]) if columns["text"] else None
        if isinstance(text, str) and text.strip():
            row["text"] = text.strip()
        speaker = example.get(columns["speaker"]) if columns["speaker"] else None
        if speaker is not None and str(speaker) != "":
            row["speaker"] = str(speaker)
        if split is not None:
            row["split"] = split
        rows.append(row)
    return rows, skipped


def _ids(ds: Any, split: str | None, column: str | None, source: Path) -> list[str]:
    """One id per row: the id column (repeats become ``<id>-<row index>``, empty ones
    ``<split>-<row index>``), else ``<split>-<row index>``; refuses ids that still clash."""
    n = len(ds)
    if column is None:
        width = len(str(max(n - 1, 0)))
        return [f"{split or 'row'}-{i:0{width}d}" for i in range(n)]
    raw = ["" if v is None else str(v) for v in ds[column]]
    counts = Counter(raw)
    ids = [v if v and counts[v] == 1 else f"{v or split or 'row'}-{i}"
           for i, v in enumerate(raw)]
    repeated = sum(1 for v in raw if counts[v] > 1 or not v)
    if repeated:
        log(f"{printable(source)} [{split or ''}]: {repeated} rows have a repeated or empty "
            f"{column!r}; their ids are '<{column}>-<row index>'")
    seen: dict[str, int] = {}
    for i, uid in enumerate(ids):
        if uid in seen:
            raise InputError(f"{printable(source)} [{split or ''}]: rows {seen[uid]} and {i} "
                             f"both get id {uid!r}; pass a column of unique ids as --id-column")
        seen[uid] = i
    return ids


def _audio_file(audio: dict | None, stem: Path, where: str) -> tuple[Path | None, str | None]:
    """The file holding one example's audio: its ``path`` when it has no bytes (or the same
    bytes), else the bytes written to ``stem`` + ``.wav``/``.flac``."""
    if not audio or (audio.get("bytes") is None and not audio.get("path")):
        return None, f"{where}: no audio (neither bytes nor a path)"
    data, given = audio.get("bytes"), audio.get("path")
    path = Path(given).absolute() if given else None
    if data is None:
        return path, None
    if path is not None and Path(given).is_absolute() and _same_bytes(path, data):
        return path, None
    try:
        info = sf.info(io.BytesIO(data))
        check_header(info, where, file_size=len(data), max_duration=None)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        return None, (f"{where}: bytes not readable as audio ({e}); convert the column to "
                      f"wav/flac")
    except AudioError as e:
        return None, str(e)
    stem.parent.mkdir(parents=True, exist_ok=True)
    ext = _KEPT_FORMATS.get(info.format)
    if ext is not None:
        target = stem.with_suffix(ext)
        target.write_bytes(data)
        return target, None
    try:
        wav, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError) as e:
        return None, f"{where}: could not decode the {info.format} bytes ({e})"
    flac = wav.shape[1] <= _FLAC_MAX_CHANNELS
    target = stem.with_suffix(".flac" if flac else ".wav")
    sf.write(os.fsencode(target), np.clip(wav, -1.0, 1.0), sr,
             subtype="PCM_16" if flac else "FLOAT", format="FLAC" if flac else "WAV")
    return target, None


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
