"""ABX inputs: ZeroSpeech ``.item`` files over audio, or spoken word pairs, turned into
per-token frame representations (encoder features, unit ids, or unit embeddings).

ZeroSpeech item file (space separated, one header line)::

    #file onset offset #phone prev-phone next-phone speaker
    1272-128104-0000 0.5100 0.7400 AE K T 1272
    1272-128104-0000 0.6000 0.8300 T AE IH 1272

``#file`` is a manifest ``id`` (or the audio file's stem); onset/offset in seconds. The
frames of a token are those whose index i satisfies ceil(r * onset - 0.5) <= i <=
floor(r * offset - 0.5) at the tokenizer's frame rate r (libri-light's ``ABXFeatureLoader``;
r = 50 Hz for HuBERT Base, 25 Hz for mHuBERT-25Hz).

``spokenlm eval abx-items`` (:func:`abx_items`) writes such a file from alignments of any
format :func:`~spokenlm.data.alignments.read_alignments` reads, laid out like the ZeroSpeech
2021 (libri-light) triphone item files: a token per phone whose two neighbours are phones
(not silence, not an utterance edge: the phones ZeroSpeech's item tooling, abkhazia's
``alignment2item``, leaves out), labelled by the phone, its context the neighbours, timed
from the previous phone's onset to the next phone's offset (so the tokens of consecutive
phones overlap, as in ``dev-clean.item``). The times are the aligner's (ZeroSpeech's sit on
the centres of 10 ms frames, x.xx25 s). ``--span phone`` times each token by its own phone
instead (phoneme rather than triphone ABX), and ``--silence-context`` keeps edge and
silence neighbours, as ``SIL``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from ..audio.framing import DEFAULT_FRAMING
from ..audio.load import AudioError, load_row
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import atomic_path
from ..common.options import arg, command
from ..common.progress import log, progress
from ..data.alignments import (ALIGNMENTS_HELP, SILENCE, SILENCE_HELP, STRESS_HELP, TIER_HELP,
                               TOLERANCE, Alignments, Interval, is_silence, read_alignments)
from ..tokenize.tokenizer import SpeechTokenizer
from .abx_groups import Token
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


def frame_span(onset: float, offset: float, n_frames: int,
               frame_rate: float = DEFAULT_FRAMING.frame_rate) -> tuple[int, int]:
    """[start, end) frame indices of a segment (libri-light convention: frame i is taken
    when ceil(rate * onset - 0.5) <= i <= floor(rate * offset - 0.5))."""
    start = max(0, int(math.ceil(frame_rate * onset - 0.5)))
    end = min(n_frames, int(math.floor(frame_rate * offset - 0.5)) + 1)
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
            feats = tokenizer.features(load_row(row))
        except AudioError as e:
            skips.add("unreadable audio", e, len(segs))
            continue
        units = (torch.from_numpy(tokenizer.units_from_features(feats, dedup=False).units)
                 if len(feats) else None)
        feats_t = torch.from_numpy(np.asarray(feats, np.float32))
        for seg in segs:
            start, end = (0, len(feats)) if seg.onset is None else frame_span(
                seg.onset, seg.offset, len(feats), tokenizer.frame_rate)
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


# ---- item files from alignments --------------------------------------------------------

#: header line of a ZeroSpeech item file
ITEM_HEADER = "#file onset offset #phone prev-phone next-phone speaker"
#: skip reasons of phones that get no item
EDGE, GAP, NEXT_TO_SILENCE, OTHER_SPEAKER = (
    "utterance edge", "gap next to it (context unknown)", "next to silence",
    "context said by another speaker")


class TriphoneItem(NamedTuple):
    """One phone token of an item file: times in seconds, its label and context."""

    onset: float
    offset: float
    phone: str
    prev: str
    next: str
    index: int  # of the centre phone in the utterance's intervals


def triphone_items(intervals: Sequence[Interval], *, span: Literal["triphone", "phone"] =
                   "triphone", silence_context: bool = False,
                   silence_label: str | None = SILENCE,
                   speakers: Sequence[str | None] | None = None, skips: Skips | None = None,
                   name: str = "") -> list[TriphoneItem]:
    """The phone tokens of one utterance, each with its previous and next phone as context.

    ZeroSpeech (``silence_context=False``): a phone is a token only when both neighbours
    are phones that touch it (no gap), said by the same speaker (``speakers``, per
    interval); so the first and last phone of an utterance and phones next to silence give
    none. ``silence_context=True`` makes a token of every phone, with ``SIL`` as the context
    of an edge, a silence or a gap. ``span="triphone"`` gives each token the times of the
    whole triphone (previous phone's onset to next phone's offset), as the ZeroSpeech 2021
    item files do; ``"phone"`` the centre phone's own times. Tokens left out are counted in
    ``skips`` (``name`` names the utterance there).
    """
    sil = silence_label or SILENCE

    def neighbour(k: int, j: int) -> tuple[Interval | None, str | None]:
        if not 0 <= j < len(intervals):
            return None, EDGE
        first, second = sorted((intervals[j], intervals[k]))
        if second.start - first.end > TOLERANCE:
            return None, GAP
        if is_silence(intervals[j].label, silence_label):
            return None, NEXT_TO_SILENCE
        if speakers is not None and speakers[j] != speakers[k]:
            return None, OTHER_SPEAKER
        return intervals[j], None

    out = []
    for k, iv in enumerate(intervals):
        if is_silence(iv.label, silence_label):
            continue
        (prev, why_prev), (nxt, why_next) = neighbour(k, k - 1), neighbour(k, k + 1)
        if not silence_context and (prev is None or nxt is None):
            if skips is not None:
                skips.add(why_prev or why_next, f"{name} {iv.label} at {iv.start:.3f} s")
            continue
        whole = span == "triphone"
        out.append(TriphoneItem(prev.start if whole and prev else iv.start,
                                nxt.end if whole and nxt else iv.end, iv.label,
                                prev.label if prev else sil, nxt.label if nxt else sil, k))
    return out


def item_lines(alignments: Alignments, speaker_of: Callable[[str, int], str], *,
               span: Literal["triphone", "phone"] = "triphone", silence_context: bool = False,
               silence_label: str | None = SILENCE, skips: Skips | None = None
               ) -> list[str]:
    """Item file lines (header first) of every utterance of ``alignments``;
    ``speaker_of(id, interval index)`` gives each token's speaker. Whitespace inside a
    label or speaker becomes ``_`` (the file is space separated)."""
    lines = [ITEM_HEADER]
    for uid, intervals in alignments.items():
        if uid != "".join(uid.split()):
            raise InputError(f"{alignments.source}: utterance id {uid!r} holds whitespace, "
                             f"which an item file cannot; rename the file")
        for it in triphone_items(intervals, span=span, silence_context=silence_context,
                                 silence_label=silence_label,
                                 speakers=alignments.speakers.get(uid), skips=skips, name=uid):
            phone, prev, nxt, spk = (_field(x) for x in (it.phone, it.prev, it.next,
                                                           speaker_of(uid, it.index)))
            lines.append(f"{uid} {it.onset:.4f} {it.offset:.4f} {phone} {prev} {nxt} {spk}")
    return lines


def _field(text: str) -> str:
    return "_".join(str(text).split()) or "_"


def write_item_file(alignments: Path, audio: dict[str, dict], path: Path) -> Path:
    """spokenlm's phone item file (what ``eval all`` writes) from alignments of any format
    :func:`~spokenlm.data.alignments.read_alignments` reads: one item per phone of the
    utterances in ``audio``, with its own times and ``SIL`` as the context at edges and
    silences (``silence_context=True``, ``span="phone"``); speakers from ``audio`` rows."""
    al = read_alignments(alignments)
    al = Alignments({k: v for k, v in al.items() if k in audio}, source=al.source,
                    format=al.format, speakers=al.speakers)
    lines = item_lines(al, lambda uid, _: str(audio[uid].get("speaker", "?")), span="phone",
                       silence_context=True)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


@dataclass
class ABXItemsOptions:
    alignments: Path = arg(positional=True, scanned=True, help=ALIGNMENTS_HELP)
    output: Path = arg(Path("abx.item"), help="ZeroSpeech .item file to write")
    manifest: Path | None = arg(None, help="audio manifest: only its ids get items, and its "
                                           "`speaker` column names their speakers")
    tier: str = arg("phones", help=TIER_HELP)
    speaker_prefix: str | None = arg(None, help="speaker = the id up to the first occurrence "
                                                "of this separator (e.g. '-': 6295-244435-0009"
                                                " -> 6295); overrides tier and manifest "
                                                "speakers")
    span: Literal["triphone", "phone"] = arg("triphone", help="token times: the whole "
                                             "triphone (ZeroSpeech 2021) or the centre phone")
    silence_context: bool = arg(False, help="also make tokens of phones at an utterance edge "
                                            "or next to silence (context SIL), as `eval all` "
                                            "does; ZeroSpeech leaves them out")
    silence_label: str | None = arg(SILENCE, help=SILENCE_HELP)
    strip_stress: bool = arg(True, help=STRESS_HELP)


@command("eval abx-items", ABXItemsOptions)
def abx_items(opts: ABXItemsOptions) -> dict:
    """ZeroSpeech .item file of phone triphones from alignments, for `eval abx --item-file`.

    Alignments: a TextGrid, an MFA folder, a CTM or spokenlm's JSONL. Each phone with a phone on both sides is a token labelled by itself, its context the
    previous and next phone, timed over the whole triphone (ZeroSpeech 2021); phones at an
    utterance's edges, next to silence or a gap, or next to another speaker's phone are
    left out. A token's speaker is, in this order: the id's prefix (``--speaker-prefix``),
    the MFA tier's speaker (``<speaker> - phones``), the manifest row's ``speaker``.
    """
    al = read_alignments(opts.alignments, tier=opts.tier, silence_label=opts.silence_label,
                         strip_stress=opts.strip_stress)
    rows = load_audio_rows(opts.manifest, None) if opts.manifest is not None else None
    skips = Skips("ABX items", "phones")
    if rows is not None:
        missing = [k for k in al if k not in rows]
        if missing:
            log(f"ABX items: {len(missing)} of {len(al)} aligned utterances are not in "
                f"{opts.manifest} and get no item (first: {missing[0]})")
        al = Alignments({k: v for k, v in al.items() if k in rows}, source=al.source,
                        format=al.format, speakers=al.speakers)
        if not al:
            raise InputError(f"{opts.alignments}: none of its utterance ids is in "
                             f"{opts.manifest} (first: {missing[0]!r}); pass the manifest "
                             f"of the aligned audio (ids = file stems)")

    def speaker_of(uid: str, k: int) -> str:
        if opts.speaker_prefix:
            if opts.speaker_prefix not in uid:
                raise InputError(f"{opts.alignments}: id {uid!r} has no "
                                 f"{opts.speaker_prefix!r} to end its speaker prefix; pass "
                                 f"another --speaker-prefix, or --manifest")
            return uid.split(opts.speaker_prefix, 1)[0]
        tier_spk = al.speakers.get(uid)
        if tier_spk is not None and tier_spk[k] is not None:
            return tier_spk[k]
        if rows is not None and rows[uid].get("speaker") not in (None, ""):
            return str(rows[uid]["speaker"])
        raise InputError(f"{opts.alignments}: no speaker for utterance {uid!r}; pass "
                         f"--manifest with a `speaker` column, or --speaker-prefix SEP")

    lines = item_lines(al, speaker_of, span=opts.span, silence_context=opts.silence_context,
                       silence_label=opts.silence_label, skips=skips)
    n_items = len(lines) - 1
    skips.require(n_items, opts.alignments)
    with atomic_path(opts.output) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    tokens = [line.split() for line in lines[1:]]
    summary = {"output": str(opts.output), "n_items": n_items, "n_utterances": len(
        {t[0] for t in tokens}), "n_phones": len({t[3] for t in tokens}),
        "n_contexts": len({(t[4], t[5]) for t in tokens}),
        "n_speakers": len({t[6] for t in tokens}), "alignments_format": al.format,
        **skips.report()}
    log(f"ABX items: {n_items} tokens of {summary['n_phones']} phones by "
        f"{summary['n_speakers']} speakers -> {opts.output}")
    return summary
