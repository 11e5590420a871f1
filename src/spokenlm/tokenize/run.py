"""``spokenlm tokenize run``: a manifest's audio -> units JSONL (+ packed memmap), sharded and
resumable.

Files written for ``--output data/units.jsonl``:

- ``data/units.parts/shard-I-of-N/part-XXXXXX.jsonl`` (+ ``skipped-XXXXXX.jsonl``): every
  ``part_size`` utterances, atomically; a killed job resumes after the last part written.
- ``data/units.shard-I-of-N.jsonl`` (+ ``.skipped.jsonl``): one shard's rows (N > 1).
- once every shard exists (or N = 1): ``data/units.jsonl``, ``data/units.skipped.jsonl``
  (files that could not be read, with the reason) and, with ``pack``, ``data/units.bin``,
  ``data/units.idx.npy``, ``data/units.meta.json``. Their audio ``path`` is relative to
  the file within its run (:func:`~spokenlm.common.paths.store_path`).

Shard I of N takes manifest rows I, I + N, I + 2N, ...; the merged JSONL is in manifest
order, identical to an unsharded run.

Recordings of any length tokenize in bounded memory: a row longer than
:data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` is read from disk block by block and
encoded chunk by chunk with each encoder's context (the same units as in one piece for
mfcc/logmel; approximately the same for HuBERT/wav2vec 2.0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from ..audio.chunking import AudioStream, is_long
from ..audio.constants import SAMPLE_RATE
from ..audio.load import AudioError, load_row
from ..common.errors import ArtifactError, InputError
from ..common.files import iter_jsonl, read_json, write_json, write_jsonl
from ..common.options import arg, command
from ..common.packed import prefix_of
from ..common.paths import store_path, store_row
from ..common.progress import log, progress
from ._manifest import COPIED_COLUMNS, read_rows
from .correspondence import TRANSFORM_NAME
from .features import DEFAULT_BATCH_SECONDS
from .pack import pack_units
from .tokenizer import CENTROIDS_NAME, CONFIG_NAME, SpeechTokenizer, Units


@dataclass
class TokenizeOptions:
    manifest: Path = arg(positional=True, help="audio manifest (JSONL) to tokenize")
    tokenizer: Path = arg(help="tokenizer directory (from `spokenlm tokenize train`)")
    output: Path = arg(help="units JSONL to write; packed files go next to it")
    dedup: bool = arg(True, help="collapse repeated units, storing their durations")
    shard: str | None = arg(None, help="I/N: process rows I::N (default: torchrun's RANK/"
                                       "WORLD_SIZE, else 0/1)")
    pack: bool = arg(True, help="also write <stem>.bin/.idx.npy/.meta.json for LM training")
    batch_seconds: float = arg(DEFAULT_BATCH_SECONDS, help="audio per encoder call")
    part_size: int = arg(500, help="utterances per resumable part file")
    device: str = arg("auto", help="auto, cpu, cuda, ...")
    precision: Literal["fp32", "bf16", "auto"] = arg(
        "fp32", help="fp32, bf16 (autocast) or auto (bf16 only where native)")


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N); None -> torchrun's (RANK, WORLD_SIZE), else (0, 1)."""
    if shard is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        i, n = (int(p) for p in shard.split("/"))
    except ValueError:
        raise InputError(f"--shard {shard!r}: write it as I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise InputError(f"--shard {shard!r}: need 0 <= I < N")
    return i, n


def skipped_path(jsonl: Path) -> Path:
    """``units.jsonl`` -> ``units.skipped.jsonl``."""
    return jsonl.with_name(prefix_of(jsonl).name + ".skipped.jsonl")


@command("tokenize run", TokenizeOptions)
def tokenize_manifest(opts: TokenizeOptions) -> Path:
    """Turn every file of a manifest into units (JSONL, plus packed files for LM training)."""
    rows = read_rows(opts.manifest)
    i, n = parse_shard(opts.shard)
    prefix = prefix_of(opts.output)
    parts = Path(f"{prefix}.parts") / f"shard-{i}-of-{n}"
    _check_run_state(opts, parts.parent, len(rows))
    shard_rows = rows[i::n]
    _process_parts(opts, shard_rows, parts)
    if n == 1:
        return _finish(opts, rows, [_concat(parts, "part-*.jsonl")],
                       [_concat(parts, "skipped-*.jsonl")])
    shard_file = Path(f"{prefix}.shard-{i}-of-{n}.jsonl")
    write_jsonl(skipped_path(shard_file), _concat(parts, "skipped-*.jsonl"))
    write_jsonl(shard_file, _concat(parts, "part-*.jsonl"))
    files = [Path(f"{prefix}.shard-{k}-of-{n}.jsonl") for k in range(n)]
    waiting = [k for k, f in enumerate(files) if not f.exists()]
    if waiting:
        log(f"shard {i}/{n} done ({shard_file}); the merge runs when shards {waiting} finish")
        return shard_file
    return _finish(opts, rows, [iter_jsonl(f) for f in files],
                   [iter_jsonl(skipped_path(f)) for f in files])


def _check_run_state(opts: TokenizeOptions, root: Path, n_rows: int) -> None:
    """Refuse to resume from parts written with other settings or another tokenizer."""
    cfg, centroids = opts.tokenizer / CONFIG_NAME, opts.tokenizer / CENTROIDS_NAME
    path = root / "run.json"  # <output folder>/<stem>.parts/run.json: levels=2 is the run
    state = {"manifest": store_path(opts.manifest, path, levels=2), "n_rows": n_rows,
             "tokenizer": read_json(cfg) if cfg.exists() else None,
             "centroids_sha256": (hashlib.sha256(centroids.read_bytes()).hexdigest()
                                  if centroids.exists() else None),
             "dedup": opts.dedup, "part_size": opts.part_size}
    transform = opts.tokenizer / TRANSFORM_NAME
    if transform.exists():  # a tokenizer learnt from voice pairs: its transform too
        state["transform_sha256"] = hashlib.sha256(transform.read_bytes()).hexdigest()
    before = {**state, "manifest": str(Path(opts.manifest).resolve())}  # older run.json
    if path.exists() and read_json(path) not in (state, before):
        raise InputError(f"{root}: holds parts of a run with other settings (manifest, "
                         f"tokenizer, dedup or part_size differ); delete {root} to start over "
                         f"or choose another --output")
    if not path.exists():
        write_json(path, state)


def _process_parts(opts: TokenizeOptions, rows: list[dict], parts: Path) -> None:
    """Tokenize ``rows`` in parts of ``part_size``, skipping parts already on disk."""
    chunks = [rows[s:s + opts.part_size] for s in range(0, len(rows), opts.part_size)]
    todo = [k for k in range(len(chunks)) if not (parts / f"part-{k:06d}.jsonl").exists()]
    if not todo:
        return
    if len(todo) < len(chunks):
        log(f"resuming {parts}: {len(chunks) - len(todo)} of {len(chunks)} parts already done")
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer, device=opts.device,
                                                precision=opts.precision)
    done = sum(len(c) for k, c in enumerate(chunks) if k not in set(todo))
    bar = progress(desc="tokenize", total=len(rows), unit="utt")
    bar.update(done)
    for k in todo:
        units_rows, skipped = _tokenize_rows(tokenizer, chunks[k], opts, bar)
        write_jsonl(parts / f"skipped-{k:06d}.jsonl", skipped)
        write_jsonl(parts / f"part-{k:06d}.jsonl", units_rows)  # written last: marks done
    bar.close()


def _tokenize_rows(tokenizer: SpeechTokenizer, rows: list[dict], opts: TokenizeOptions,
                   bar: tqdm) -> tuple[list[dict], list[dict]]:
    """Units rows and skip records for ``rows``; audio is loaded ``batch_seconds`` at a time,
    and rows longer than :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` (by their header)
    are streamed chunk by chunk (:meth:`SpeechTokenizer.encode_row`)."""
    out: list[dict] = []
    skipped: list[dict] = []
    group: list[tuple[dict, np.ndarray]] = []
    budget = int(opts.batch_seconds * SAMPLE_RATE)

    def record(row: dict, u: Units) -> None:
        out.append({"id": row["id"], **u.to_row(), "frame_rate": tokenizer.frame_rate,
                    **{c: row[c] for c in COPIED_COLUMNS if c in row}})

    def flush() -> None:
        units = tokenizer.encode_batch([w for _, w in group], opts.dedup, opts.batch_seconds)
        for (row, _), u in zip(group, units):
            record(row, u)
        bar.update(len(group))
        group.clear()

    for row in rows:
        try:
            if is_long(AudioStream.from_row(row).expected_samples()):
                # a long recording streams from disk, chunk by chunk, never loaded whole
                if group:
                    flush()
                record(row, tokenizer.encode_row(row, opts.dedup)[0])
                bar.update(1)
                continue
            wav = load_row(row)
        except AudioError as e:
            log(f"skipping {e}")
            skipped.append({"id": row.get("id"), "path": row["path"], "reason": str(e)})
            bar.update(1)
            continue
        group.append((row, wav))
        if sum(len(w) for _, w in group) >= budget:
            flush()
    if group:
        flush()
    return out, skipped


def _concat(parts: Path, pattern: str) -> Iterator[dict]:
    """Rows of every part file matching ``pattern``, in part order."""
    for f in sorted(parts.glob(pattern)):
        yield from iter_jsonl(f)


def _interleave(rows: list[dict], streams: list[Iterator[dict]]) -> Iterator[dict]:
    """Rows of shard streams back in manifest order (shard k holds rows k::n, some absent)."""
    n = len(streams)
    heads: list[dict | None] = [next(s, None) for s in streams]
    for j, row in enumerate(rows):
        k = j % n
        head = heads[k]
        if head is not None and head.get("id") == row["id"]:
            yield head
            heads[k] = next(streams[k], None)
    if any(h is not None for h in heads):
        raise ArtifactError("shard files hold rows that are not in the manifest (in order); "
                            "they come from another run: delete the .shard-* and .parts files "
                            "and tokenize again")


def _finish(opts: TokenizeOptions, rows: list[dict], units: list[Iterator[dict]],
            skipped: list[Iterator[dict]]) -> Path:
    """Merge shard streams into the final JSONL + skip report, then pack."""
    output = Path(opts.output)
    skipped_rows = list(_interleave(rows, skipped))
    # parts and shards hold absolute paths; the final files hold them relative to the file
    write_jsonl(skipped_path(output), [store_row(r, skipped_path(output), ("path",))
                                       for r in skipped_rows])
    n_skipped = len(skipped_rows)
    write_jsonl(output, (store_row(r, output, ("path",)) for r in _interleave(rows, units)))
    n_done = sum(1 for _ in iter_jsonl(output))
    if n_done + n_skipped != len(rows):
        raise ArtifactError(f"{output}: merged {n_done} units rows + {n_skipped} skipped, but "
                            f"the manifest has {len(rows)} rows; delete the .shard-* and .parts "
                            f"files of this output and tokenize again")
    if n_skipped:
        log(f"skipped {n_skipped} unreadable file(s), listed in {skipped_path(output)}")
    if opts.pack:
        n_units = int(read_json(opts.tokenizer / CONFIG_NAME)["n_units"])
        pack_units(output, prefix_of(output), n_units=n_units)
    log(f"{n_done} utterances tokenized -> {output}")
    return output
