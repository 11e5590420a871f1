"""``spokenlm eval align``: forced phone alignment of a manifest's transcripts with
pocketsphinx, written as the phone labels file PNMI reads (see :mod:`spokenlm.eval.pnmi`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..audio.load import AudioError, load_row
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import write_jsonl
from ..common.options import arg, command
from ..common.progress import log, progress


@dataclass
class AlignOptions:
    manifest: Path = arg(positional=True, help="audio manifest with a `text` per row")
    output: Path = arg(Path("alignments.jsonl"), help="labels JSONL to write")
    limit: int | None = arg(None, help="align at most this many utterances")


@command("eval align", AlignOptions)
def align_manifest(opts: AlignOptions) -> Path:
    """Phone intervals of each utterance by pocketsphinx forced alignment (ARPAbet)."""
    from .sphinx import PocketSphinxAligner

    rows = [r for r in read_manifest(opts.manifest) if r.get("text")]
    if not rows:
        raise InputError(f"{opts.manifest}: no row has a `text`; forced alignment needs "
                         f"transcripts")
    rows = rows[:opts.limit] if opts.limit is not None else rows
    aligner = PocketSphinxAligner()
    out, failed = [], []
    for row in progress(rows, desc="align", unit="utt"):
        try:
            intervals = aligner.align(load_row(row), row["text"])
        except (AudioError, InputError) as e:
            failed.append({"id": row["id"], "reason": str(e)})
            continue
        out.append({"id": row["id"], "intervals": [[round(a, 3), round(b, 3), p]
                                                   for a, b, p in intervals]})
    write_jsonl(opts.output, out)
    if failed:
        write_jsonl(Path(opts.output).with_suffix(".failed.jsonl"), failed)
    log(f"aligned {len(out)} utterances into {opts.output} ({len(failed)} failed)")
    return opts.output
