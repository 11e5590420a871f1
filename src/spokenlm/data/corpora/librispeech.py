"""``spokenlm data librispeech``: a LibriSpeech root -> one manifest row per utterance.

LibriSpeech (Panayotov et al. 2015) is laid out as::

    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   # "<id> TEXT"

with splits ``train-clean-100``, ``train-clean-360``, ``train-other-500``, ``dev-clean``,
``dev-other``, ``test-clean``, ``test-other`` (Mini LibriSpeech: ``train-clean-5``,
``dev-clean-2``). The importer takes the folder holding ``LibriSpeech/``, the
``LibriSpeech`` folder itself, or one split folder, and writes rows ``id``, ``path``,
``duration``, ``sample_rate``, ``num_channels`` (from each file's header), ``speaker``,
``chapter``, ``text`` and ``split``, plus the usual skip report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...audio.constants import MAX_DURATION_S, MIN_DURATION_S
from ...audio.librispeech_layout import SPLIT_NAME, SPLIT_ORDER, multi_split_root  # noqa: F401
from ...audio.load import printable
from ...audio.manifest import skip_report_path, write_manifest
from ...common.errors import InputError
from ...common.files import write_jsonl
from ...common.options import arg, command
from ...common.progress import log
from ._scan import choose_splits, header_rows, split_audio

@dataclass
class LibriSpeechOptions:
    root: Path = arg(positional=True, help="LibriSpeech root: the folder holding LibriSpeech/, "
                                           "LibriSpeech/ itself, or one split folder")
    output: Path = arg(Path("manifest.jsonl"), short="-o", help="where to write the manifest")
    splits: list[str] = arg([], help="splits to import, e.g. dev-clean test-clean; none "
                                     "given: every split found")
    min_duration: float = arg(MIN_DURATION_S, help="reject files shorter than this (s)")
    max_duration: float = arg(MAX_DURATION_S, help="reject files longer than this (s)")
    validate: bool = arg(False, help="also decode every file and reject silent or corrupt "
                                     "ones (slower; by default only headers are read)")
    jobs: int = arg(2, help="files checked in parallel")


def find_splits(root: Path) -> dict[str, Path]:
    """Split name -> split folder under ``root`` (see :class:`LibriSpeechOptions.root`)."""
    found = multi_split_root(root)
    if found is not None:
        base, names = found
        return {name: base / name for name in names}
    if SPLIT_NAME.match(root.name) or next(root.glob("*/*/*.trans.txt"), None) is not None:
        return {root.name: root}
    raise InputError(f"{printable(root)}: no LibriSpeech split folders (dev-clean, "
                     f"train-clean-100, ...) nor <speaker>/<chapter>/*.trans.txt inside; pass "
                     f"the folder that holds LibriSpeech/ or one split folder")


def read_transcripts(split_dir: Path) -> tuple[dict[Path, str], list[dict]]:
    """Expected audio path (without extension) -> text from every ``*.trans.txt`` of a split,
    and skip records for malformed lines."""
    texts: dict[Path, str] = {}
    bad: list[dict] = []
    for trans in sorted(split_dir.glob("*/*/*.trans.txt")):
        for lineno, line in enumerate(trans.read_text(errors="replace").splitlines(), 1):
            uid, _, text = line.strip().partition(" ")
            if not uid:
                continue
            if not text.strip():
                bad.append({"path": f"{trans}:{lineno}",
                            "reason": f"no text after id {uid!r}; line ignored"})
                continue
            texts[trans.parent / uid] = " ".join(text.split())
    return texts, bad


@command("data librispeech", LibriSpeechOptions)
def librispeech(opts: LibriSpeechOptions) -> Path:
    """Write a manifest of a LibriSpeech root and a skip report of the files left out.

    Each utterance's row has its speaker, chapter, text and split; the skip report
    ``<name>.skipped.jsonl`` says why each file was left out."""
    root = Path(opts.root)
    if not root.is_dir():
        raise InputError(f"{printable(root)}: not a folder; pass your LibriSpeech root")
    splits = choose_splits(find_splits(root), opts.splits, root)
    rows: list[dict] = []
    skipped: list[dict] = []
    for split, folder in splits.items():
        split_rows, split_skipped = _split_rows(split, folder, opts)
        rows += split_rows
        skipped += split_skipped
    report = write_jsonl(skip_report_path(opts.output), skipped)
    if not rows:
        raise InputError(f"{printable(root)}: no usable utterance in splits {list(splits)}; "
                         f"see {printable(report)}")
    _check_unique(rows)
    write_manifest(rows, opts.output)
    hours = sum(r["duration"] for r in rows) / 3600
    n_text = sum("text" in r for r in rows)
    log(f"{printable(opts.output)}: {len(rows)} utterances ({n_text} with text), {hours:.2f} h "
        f"from {', '.join(splits)}; {len(skipped)} skipped (listed in {printable(report)})")
    return opts.output


def _split_rows(split: str, folder: Path, opts: LibriSpeechOptions
                ) -> tuple[list[dict], list[dict]]:
    """Rows and skip records of one split folder ``<speaker>/<chapter>/<id>.flac``."""
    texts, skipped = read_transcripts(folder)
    files = split_audio(folder)
    kept, bad = header_rows(files, min_duration=opts.min_duration,
                            max_duration=opts.max_duration, validate=opts.validate,
                            jobs=opts.jobs, desc=f"{split}: reading headers")
    skipped += bad
    present = {p.with_suffix("") for p in files}
    skipped += [{"path": str(stem) + ".flac", "reason": "listed in its chapter's .trans.txt "
                 "but no audio file"} for stem in texts if stem not in present]
    rows = []
    for path, fields in kept.items():
        speaker, chapter = path.relative_to(folder).parts[:2]
        row = {"id": printable(path.stem), **fields, "speaker": printable(speaker),
               "chapter": printable(chapter)}
        text = texts.get(path.with_suffix(""))
        if text is not None:
            row["text"] = text
        rows.append({**row, "split": split})
    missing = sum("text" not in r for r in rows)
    if missing:
        log(f"{split}: {missing} files have no line in their chapter's .trans.txt; kept "
            f"without text")
    return rows, skipped


def _check_unique(rows: list[dict]) -> None:
    seen: dict[str, dict] = {}
    for row in rows:
        other = seen.setdefault(row["id"], row)
        if other is not row:
            raise InputError(f"{printable(row['path'])} and {printable(other['path'])} both "
                             f"have utterance id {row['id']!r} (splits {other['split']} and "
                             f"{row['split']}); LibriSpeech ids are unique, so one split is "
                             f"there twice: import one of them (--splits)")
