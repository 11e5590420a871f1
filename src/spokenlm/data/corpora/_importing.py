"""What the lhotse, Kaldi and Hugging Face importers share: header checks cached per file,
segment rows checked against the file they cut, and the manifest + skip report they write.

A row of an imported manifest is a whole file (no ``start``; ``duration`` from the header)
or a segment of one (``start`` and ``duration`` in seconds, as the source gave them, the end
clipped to the file when it overshoots by at most the source format's tolerance). Rows keep
``recording_id`` when the source names the recording a segment comes from, so an export back
(``data to-lhotse``) restores the recordings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ...audio.load import AudioError, header_fields, printable
from ...audio.manifest import skip_report_path, write_manifest
from ...common.errors import InputError
from ...common.files import write_jsonl
from ...common.progress import log


class Headers:
    """``header_fields`` of each file, read once however many rows cut it; a file whose
    header is refused is remembered with the reason."""

    def __init__(self) -> None:
        self._cache: dict[str, dict | str] = {}

    def get(self, path: str | os.PathLike) -> dict | str:
        """``{"duration", "sample_rate", "num_channels"}``, or the reason the header was
        refused (one line naming the file)."""
        key = os.fspath(path)
        if key not in self._cache:
            try:
                self._cache[key] = header_fields(path)
            except AudioError as e:
                self._cache[key] = str(e)
        return self._cache[key]


def audio_row(uid: str, path: str | os.PathLike, header: dict, *,
              start: float | None = None, duration: float | None = None,
              tolerance: float, min_duration: float, max_duration: float
              ) -> tuple[dict | None, str | None]:
    """A manifest row for ``[start, start + duration)`` of ``path`` (the whole file when
    both are None, or when they cover it), or ``(None, reason)``.

    ``header`` is :meth:`Headers.get` of ``path``. A segment that ends after the file by at
    most ``tolerance`` seconds is clipped to the file's end; by more, it is refused (the
    manifest does not describe this file). Rows shorter than ``min_duration`` or longer than
    ``max_duration`` are refused (later stages load a row whole).
    """
    total = float(header["duration"])
    start = 0.0 if start is None else float(start)
    end = total if duration is None else start + float(duration)
    name = printable(path)
    if start < 0 or end <= start:
        return None, (f"{name}: segment [{start:g}, {end:g}] s is empty or starts before 0; "
                      f"fix its start and duration in the source manifest")
    if start >= total or end > total + tolerance:
        return None, (f"{name}: segment [{start:g}, {end:g}] s runs past the file's end "
                      f"({total:g} s by its header, {tolerance:g} s tolerated); the manifest "
                      f"does not match this file, fix one of them")
    end = min(end, total)
    whole = start == 0 and abs(end - total) <= 1e-6
    length = end - start
    if length < min_duration:
        return None, f"{name}: {length:.3f} s long, under the {min_duration:g} s minimum"
    if length > max_duration:
        return None, (f"{name}: {length:.1f} s long, over the {max_duration:g} s limit; "
                      f"segment it, or raise --max-duration")
    row = {"id": uid, "path": os.fspath(path)}
    if not whole:
        row["start"] = start
    row["duration"] = round(total, 4) if whole else round(length, 6)
    row["sample_rate"] = header["sample_rate"]
    row["num_channels"] = header["num_channels"]
    return row, None


#: Skips logged one by one before the rest are only counted (all are in the report).
LOGGED_SKIPS = 20


def skip(skipped: list[dict], entry: dict) -> None:
    """Add ``entry`` (with its ``reason``) to the skip report; log the first
    :data:`LOGGED_SKIPS` of them."""
    skipped.append(entry)
    if len(skipped) <= LOGGED_SKIPS:
        log(f"skipped {entry['reason']}")
    elif len(skipped) == LOGGED_SKIPS + 1:
        log("more rows skipped; every one is listed with its reason in the skip report")


def refuse_duplicates(ids: Sequence[tuple[str, str]], source: str | os.PathLike) -> None:
    """Raise :class:`InputError` on the first id seen twice; ``ids`` are ``(id, where)``
    pairs (``where``: a line number or row index, for the message)."""
    seen: dict[str, str] = {}
    for uid, where in ids:
        if uid in seen:
            raise InputError(f"{printable(source)}: {where}: duplicate id {uid!r} (first at "
                             f"{seen[uid]}); ids must be unique, rename or remove one")
        seen[uid] = where


def write_imported(rows: list[dict], skipped: list[dict], output: str | os.PathLike,
                   source: str | os.PathLike, *, require_rows: bool = True) -> Path:
    """Write the skip report ``<output>.skipped.jsonl`` and the manifest ``output``; raise
    :class:`InputError` (after writing the report) when every row was skipped, unless
    ``require_rows`` is False."""
    output = Path(output)
    report = write_jsonl(skip_report_path(output), skipped)
    if not rows and require_rows:
        first = f"; the first: {skipped[0]['reason']}" if skipped else ""
        raise InputError(f"{printable(source)}: no usable rows ({len(skipped)} skipped, all "
                         f"listed in {printable(report)}){first}")
    write_manifest(rows, output)
    hours = sum(r["duration"] for r in rows) / 3600
    log(f"{printable(output)}: {len(rows)} rows, {hours:.2f} h; {len(skipped)} skipped "
        f"(listed in {printable(report)})")
    return output
