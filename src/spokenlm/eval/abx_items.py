"""ABX inputs: ZeroSpeech ``.item`` files over audio, or spoken word pairs, turned into
per-token frame representations (encoder features, unit ids, or unit embeddings).

ZeroSpeech item file (space separated, one header line)::

    #file onset offset #phone prev-phone next-phone speaker
    6295-244435-0000 0.3225 0.4025 DH SIL AH 6295

``#file`` is a manifest ``id`` (or the audio file's stem); onset/offset in seconds. The
frames of a token are those whose index i satisfies ceil(50 * onset - 0.5) <= i <=
floor(50 * offset - 0.5) (libri-light's ``ABXFeatureLoader`` at 50 Hz).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.constants import FRAME_RATE
from ..audio.load import AudioError, load_audio
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.progress import log, progress
from ..tokenize.tokenizer import SpeechTokenizer
from .abx import Token
from .skips import Skips


@dataclass(frozen=True)
class Segment:
    """A token located in an audio file; onset/offset None means the whole file."""

    file: str
    onset: float | None
    offset: float | None
    token: Token


def read_item_file(path: Path) -> list[Segment]:
    """Segments of a ZeroSpeech ``.item`` file; context is ``prev_next``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: item file not found")
    out = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 7:
                raise InputError(f"{path}:{lineno}: expected 7 columns `#file onset offset "
                                 f"#phone prev-phone next-phone speaker`, got {len(parts)}")
            file, onset, offset, phone, prev, nxt, speaker = parts[:7]
            try:
                on, off = float(onset), float(offset)
            except ValueError as e:
                raise InputError(f"{path}:{lineno}: onset/offset are not numbers") from e
            out.append(Segment(file, on, off, Token(phone, f"{prev}_{nxt}", speaker)))
    if not out:
        raise InputError(f"{path}: no items")
    return out


def word_segments(bench_dir: Path) -> tuple[list[Segment], dict[str, set[str]], dict[str, dict]]:
    """Whole-file word tokens from a spokenlm benchmark dir (manifest + items).

    A token's label is its audio's ``phonemes`` (else ``text``), its speaker the manifest
    ``speaker``; partners are the labels that compete in the same item (word vs
    pseudo-word), so B is always the minimal-pair partner of A. Returns (segments,
    partners, manifest rows by id).
    """
    from .benchmark import Benchmark

    bench = Benchmark.load(bench_dir)
    label = {aid: (row.get("phonemes") or row.get("text") or aid)
             for aid, row in bench.audio.items()}
    partners: dict[str, set[str]] = defaultdict(set)
    used: set[str] = set()
    for item in bench.items:
        labs = [label[a] for a in item["candidates"]]
        used.update(item["candidates"])
        for a in labs:
            partners[a].update(b for b in labs if b != a)
    segs = [Segment(aid, None, None, Token(label[aid], "", str(bench.audio[aid].get(
        "speaker", "?")))) for aid in sorted(used)]
    return segs, dict(partners), bench.audio


def frame_span(onset: float, offset: float, n_frames: int) -> tuple[int, int]:
    """[start, end) frame indices of a segment (libri-light convention, at 50 Hz)."""
    start = max(0, int(math.ceil(FRAME_RATE * onset - 0.5)))
    end = min(n_frames, int(math.floor(FRAME_RATE * offset - 0.5)) + 1)
    return start, end


def representations(segments: list[Segment], audio: dict[str, dict],
                    tokenizer: SpeechTokenizer, kinds: list[str], skips: Skips | None = None
                    ) -> tuple[dict[str, list[torch.Tensor]], list[Token]]:
    """Frames of each segment for each representation kind.

    kinds: ``features`` (encoder features, (L, D)), ``units`` (unit ids, (L,), for the
    one-hot distance) and ``embedding`` (each unit's k-means centroid, (L, D)). Segments
    whose file is missing or unreadable, or that cover no frame, are left out, counted in
    ``skips`` (logged when no ``skips`` is given).
    Returns ({kind: [tensor per kept segment]}, kept tokens).
    """
    own_skips = skips is None
    skips = Skips("ABX", "tokens") if skips is None else skips
    by_file: dict[str, list[Segment]] = defaultdict(list)
    for seg in segments:
        by_file[seg.file].append(seg)
    stems = {Path(r["path"]).stem: r for r in audio.values()}
    out: dict[str, list[torch.Tensor]] = {k: [] for k in kinds}
    kept: list[Token] = []
    centroids = torch.from_numpy(np.asarray(tokenizer.kmeans.centroids, np.float32))
    for file, segs in progress(by_file.items(), desc="abx features", total=len(by_file),
                               unit="file"):
        row = audio.get(file) or stems.get(file)
        if row is None:
            skips.add("file not in the manifest", file, len(segs))
            continue
        try:
            feats = tokenizer.features(load_audio(row["path"]))
        except AudioError as e:
            skips.add("unreadable audio", e, len(segs))
            continue
        units = torch.from_numpy(tokenizer.kmeans.assign(feats)) if len(feats) else None
        feats_t = torch.from_numpy(np.asarray(feats, np.float32))
        for seg in segs:
            start, end = (0, len(feats)) if seg.onset is None else frame_span(
                seg.onset, seg.offset, len(feats))
            if end <= start or units is None:
                skips.add("shorter than one frame", file if seg.onset is None
                          else f"{file} {seg.onset}-{seg.offset} s")
                continue
            kept.append(seg.token)
            for k in kinds:
                u = units[start:end]
                out[k].append(feats_t[start:end] if k == "features" else
                              u if k == "units" else centroids[u])
    if own_skips and skips.total:
        log(f"ABX: {skips.total} of {len(segments)} tokens left out: {skips.summary()}")
    return out, kept


def load_audio_rows(manifest: Path | None, audio_dir: Path | None) -> dict[str, dict]:
    """Audio rows by id from a manifest, or from a folder of wavs (id = file stem)."""
    if manifest is not None:
        return {r["id"]: r for r in read_manifest(manifest)}
    if audio_dir is not None:
        files = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower() in
                       (".wav", ".flac"))
        return {p.stem: {"id": p.stem, "path": str(p)} for p in files}
    raise InputError("ABX with an item file needs --manifest or --audio-dir to find the audio")


def write_item_file(alignments: Path, audio: dict[str, dict], path: Path,
                    silence: tuple[str, ...] = ("SIL", "sil", "")) -> Path:
    """A ZeroSpeech ``.item`` file from phone alignments (labels JSONL, see eval.pnmi):
    one item per non-silence phone, with its neighbours as context (``SIL`` at edges)."""
    from ..common.files import atomic_path, iter_jsonl

    lines = ["#file onset offset #phone prev-phone next-phone speaker"]
    for row in iter_jsonl(alignments):
        if row["id"] not in audio:
            continue
        speaker = str(audio[row["id"]].get("speaker", "?"))
        ivs = [iv for iv in row["intervals"]]
        names = [str(iv[2]) if str(iv[2]) not in silence else "SIL" for iv in ivs]
        for k, (start, end, _) in enumerate(ivs):
            if names[k] == "SIL":
                continue
            prev = names[k - 1] if k > 0 else "SIL"
            nxt = names[k + 1] if k + 1 < len(ivs) else "SIL"
            lines.append(f"{row['id']} {float(start):.3f} {float(end):.3f} {names[k]} "
                         f"{prev} {nxt} {speaker}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)
