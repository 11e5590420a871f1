"""``spokenlm data librilight``: Libri-Light's long recordings -> manifest rows of segments.

Libri-Light (Kahn et al. 2020) is laid out as ``<split>/<speaker>/<book>/<name>.flac``,
splits ``small``, ``medium``, ``large`` (and ``duplicate``), with a ``<name>.json`` per file::

    {"speaker": "960", "book_meta": {"id": "319", "title": ..., "genre": [...], ...},
     "snr": 5.391, "voice_activity": [[0.4, 12.32], ...]}      # seconds

Files last up to hours, so each is cut into segments: by its own ``voice_activity`` when
the JSON has it, otherwise by Silero VAD run over the file in blocks
(:mod:`~spokenlm.data.corpora.vad`); intervals are merged or split into segments of
``min_segment``-``max_segment`` seconds (:func:`~spokenlm.data.corpora.vad.cut_segments`).
A row per segment: ``id`` ``<file-id>_<k>`` (k from 0000), ``path`` (the long file),
``start`` and ``duration`` (seconds), ``sample_rate``, ``num_channels``, ``speaker``,
``book``, ``split``, ``recording`` (the file id) and ``snr`` when known. No file is ever
decoded whole: readers seek to each segment (:func:`spokenlm.audio.load.load_row`).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...audio.load import AudioError, audio_info, printable
from ...common.errors import InputError
from ...common.options import arg, command
from ...common.progress import log, progress
from ._scan import AUDIO_EXTENSIONS, choose_splits, split_audio
from .vad import SegmentingOptions, shared_vad, write_segments

#: Libri-Light's split folders.
SPLITS = ("small", "medium", "large", "duplicate")


@dataclass
class LibriLightOptions(SegmentingOptions):
    root: Path = arg(positional=True, help="Libri-Light root holding small/ medium/ large/, "
                                           "or one split folder (<speaker>/<book>/*.flac)")
    output: Path = arg(Path("manifest.jsonl"), short="-o", help="where to write the manifest")
    splits: list[str] = arg([], help="splits to import, e.g. small; none given: every "
                                     "split found")
    vad: Literal["auto", "json", "silero"] = arg(
        "auto", help="speech intervals from: auto (the file's .json voice_activity, else "
                     "Silero VAD), json (only files that have one), silero (always run VAD)")
    jobs: int = arg(2, help="files segmented in parallel")


def find_splits(root: Path) -> dict[str, Path]:
    """Split name -> split folder: the Libri-Light split folders under ``root``, else
    ``root`` itself when it holds ``<speaker>/<book>/<audio>``, else the first-level folders
    that do."""
    known = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and p.name in SPLITS}
    if known:
        return {s: known[s] for s in SPLITS if s in known}
    if _holds_books(root):
        return {root.name: root}
    found = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and _holds_books(p)}
    if found:
        return found
    raise InputError(f"{printable(root)}: no Libri-Light split folders ({', '.join(SPLITS)}) "
                     f"nor <speaker>/<book>/*.flac inside; pass the folder holding small/ "
                     f"(etc.) or one split folder")


def _holds_books(folder: Path) -> bool:
    return any(next(folder.glob(f"*/*/*{ext}"), None) is not None for ext in AUDIO_EXTENSIONS)


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``<name>.json`` beside a Libri-Light file, ``{}`` when there is none; raises
    :class:`AudioError` (a skip) for one that is not a JSON object."""
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        raise AudioError(f"{printable(meta_path)}: not valid JSON ({e.msg}, line {e.lineno}); "
                         f"fix it or delete it (the file is then segmented by VAD)") from e
    if not isinstance(meta, dict):
        raise AudioError(f"{printable(meta_path)}: not a JSON object; fix it or delete it")
    return meta


def voice_activity(meta: dict[str, Any], path: Path) -> list[tuple[float, float]] | None:
    """The JSON's ``voice_activity`` as (start, end) seconds, None when absent; raises
    :class:`AudioError` for a malformed one."""
    va = meta.get("voice_activity")
    if va is None:
        return None
    ok = isinstance(va, list) and all(
        isinstance(p, (list, tuple)) and len(p) == 2
        and all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                for t in p) and 0 <= p[0] <= p[1] for p in va)
    if not ok:
        raise AudioError(f"{printable(path.with_suffix('.json'))}: voice_activity is not a "
                         f"list of [start, end] seconds with 0 <= start <= end; fix it, or "
                         f"pass --vad silero to detect speech instead")
    return [(float(s), float(e)) for s, e in va]


@command("data librilight", LibriLightOptions)
def librilight(opts: LibriLightOptions) -> Path:
    """Write a manifest of Libri-Light segments and a skip report of the files left out.

    Rows carry ``start``/``duration`` into the long files; the skip report
    ``<name>.skipped.jsonl`` says why each file was left out."""
    root = Path(opts.root)
    if not root.is_dir():
        raise InputError(f"{printable(root)}: not a folder; pass your Libri-Light root")
    opts.check_segment_lengths()
    splits = choose_splits(find_splits(root), opts.splits, root)
    files = [(split, p) for split, folder in splits.items() for p in split_audio(folder)]
    if not files:
        raise InputError(f"{printable(root)}: no audio in splits {list(splits)}")
    ids = _file_ids([p for _, p in files], root)

    def one(item: tuple[str, Path]) -> tuple[list[dict], str | None, str]:
        split, path = item
        try:
            return _file_rows(split, path, ids[path], opts)
        except AudioError as e:
            return [], str(e), ""

    rows: list[dict] = []
    skipped: list[dict] = []
    sources = {"json": 0, "silero": 0}
    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        results = pool.map(one, files)
        for (_, path), (file_rows, reason, source) in zip(
                files, progress(results, desc="segmenting", total=len(files), unit="file")):
            if reason is not None:
                log(f"skipped {reason}")
                skipped.append({"path": str(path), "reason": reason})
                continue
            sources[source] += 1
            rows += file_rows
    return write_segments(rows, skipped, opts.output,
                          empty=f"{printable(root)}: no segment from {len(files)} files",
                          source=f"{len(files) - len(skipped)} files ({sources['json']} by "
                                 f"their voice_activity, {sources['silero']} by Silero VAD)")


def _file_rows(split: str, path: Path, file_id: str, opts: LibriLightOptions
               ) -> tuple[list[dict], None, str]:
    """Segment rows of one file, and where its speech intervals came from."""
    info = audio_info(path, max_duration=None)
    length = info.frames / info.samplerate
    meta = read_metadata(path)
    intervals = None if opts.vad == "silero" else voice_activity(meta, path)
    if intervals is None and opts.vad == "json":
        raise AudioError(f"{printable(path)}: no voice_activity in "
                         f"{printable(path.with_suffix('.json').name)}; pass --vad auto to "
                         f"detect speech with Silero VAD")
    source = "json"
    if intervals is None:
        source = "silero"
        intervals = shared_vad().detect(path, opts.vad_options())
    segments = opts.cut(intervals, length)
    if not segments:
        raise AudioError(f"{printable(path)}: no speech segment of at least "
                         f"{opts.min_segment:g} s ({source}); lower --min-segment to keep "
                         f"shorter ones")
    book_meta = meta.get("book_meta") if isinstance(meta.get("book_meta"), dict) else {}
    labels: dict[str, Any] = {
        "speaker": str(meta.get("speaker") or printable(path.parent.parent.name)),
        "book": str(book_meta.get("id") or printable(path.parent.name)),
        "split": split, "recording": file_id}
    snr = meta.get("snr")
    if isinstance(snr, (int, float)) and not isinstance(snr, bool) and math.isfinite(snr):
        labels["snr"] = float(snr)
    rows = [{"id": f"{file_id}_{k:04d}", "path": path.resolve(), "start": round(s, 6),
             "duration": round(e - s, 6), "sample_rate": info.samplerate,
             "num_channels": info.channels, **labels} for k, (s, e) in enumerate(segments)]
    return rows, None, source


def _file_ids(files: list[Path], root: Path) -> dict[Path, str]:
    """File stems when unique over the import, else ``<split>_<speaker>_<book>_<stem>``-like
    ids from the path under ``root`` (bytes that are not UTF-8 shown as ``\\xff``)."""
    stems = [printable(p.stem) for p in files]
    if len(set(stems)) == len(stems):
        return dict(zip(files, stems))
    return {p: printable(p.relative_to(root).with_suffix("").as_posix()).replace("/", "_")
            for p in files}
