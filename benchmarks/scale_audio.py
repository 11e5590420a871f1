"""Cost curves of long audio (issue 18): time and peak memory against work size, spokenlm
next to its baseline on the same inputs, each curve fitted with a growth exponent
(``seconds ~ size^k``, least squares in log-log).

Curves (one JSON line each, bench names ``scale_*``):

- ``scale_tokenize_one_file`` / ``scale_tokenize_many_files``: ``spokenlm tokenize run`` (the
  library call ``tokenize_manifest``, defaults: packed output too) with an MFCC + k-means
  (100 units) tokenizer on 1 min -> 1 h of audio, in one file or in 10 s files.
  spokenlm: the streaming path (a file over ``STREAM_ABOVE_S`` = 60 s is read block by
  block and encoded in 120 s chunks with 4 frames of context). Baseline: the same command
  with streaming switched off (``STREAM_ABOVE_S = inf``: every file decoded whole and
  encoded in one piece, the path before issue 18). Many 10 s files take the one-piece path
  on both sides, so there the two are the same code. Agreement: the units JSONL rows are
  identical.
- ``scale_resynth``: ``spokenlm resynth`` (same tokenizer, a fast vocoder of the ``base``
  size with random weights: the same compute as a trained one) on one long file; baseline
  as above (whole file in memory, one-piece synthesis), up to ``--resynth-baseline-max-s``.
  Agreement: units and output lengths (Griffin-Lim chunked is close to, not equal to,
  one-piece Griffin-Lim; tests/vocoder/test_vocoder_streaming.py).
- ``scale_kmeans``: k-means fits from 100k to 2M frames (768-dim synthetic SSL-like
  features from ``bench_kmeans.make_features``; ``--kmeans-k`` units, default 100).
  spokenlm: ``KMeans.fit`` with its defaults (k-means++ then 20 faiss Lloyd iterations on at
  most 256 frames per centroid); baseline: scikit-learn ``MiniBatchKMeans`` with fairseq's
  ``learn_kmeans.py`` settings, up to ``--kmeans-baseline-max`` frames (its exponent
  extrapolates beyond). Reported: fit seconds, peak RSS (the features themselves are
  ``features_mb`` of it, on both sides) and held-out inertia per frame.

Each point runs in its own process (wall seconds of the measured call; peak RSS =
``ru_maxrss`` of that process, ``rss_before_mb`` = its RSS after imports and inputs), so
points do not contaminate each other. Inputs (synthetic speech-like wavs, the tokenizer,
the vocoder) are written once under ``--data-dir`` and reused.

    python benchmarks/scale_audio.py                 # the full curves (long on 2 CPU cores)
    python benchmarks/scale_audio.py --reduced       # a few small sizes (< 2 min)
    python benchmarks/scale_audio.py --only tokenize,resynth --tokenize-seconds 3600

Rows are printed on stdout and appended to ``benchmarks/results.jsonl`` (``--no-record`` to
skip). ``benchmarks/scale.py`` can call :data:`CURVES` with :func:`add_arguments`' flags.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import emit, log, parser, setup  # noqa: E402

TOKENIZE_FULL = (60, 240, 900, 3600)
TOKENIZE_REDUCED = (10, 90)
RESYNTH_FULL = (60, 300, 3600)
RESYNTH_REDUCED = (10, 90)
KMEANS_FULL = (100_000, 300_000, 1_000_000, 2_000_000)
KMEANS_REDUCED = (10_000, 30_000)
#: seconds per file of the many-files corpus
MANY_FILE_S = 10.0
SR = 16_000
N_UNITS = 100


# ---- inputs (written once, reused) -----------------------------------------------------


def speech_like_block(seconds: float, seed: int) -> np.ndarray:
    """Cheap non-stationary audio: a gliding harmonic voice with a syllable envelope and
    noise (spectral encoders cost the same on any audio; this one is not periodic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    f0 = rng.uniform(90, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.7) * t
                                                  + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(rng.uniform(0.2, 1.0) * np.sin(h * phase) / h for h in (1, 2, 3, 4, 6, 9))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
    wav = wav * env + 0.03 * rng.standard_normal(len(t))
    return (0.4 * wav / np.abs(wav).max()).astype(np.float32)


def write_long_wav(path: Path, seconds: float, seed: int) -> Path:
    """A 16 kHz 16-bit wav of ``seconds``, written 30 s at a time (never held whole)."""
    import soundfile as sf

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    with sf.SoundFile(str(tmp), "w", SR, 1, subtype="PCM_16", format="WAV") as f:
        done, k = 0.0, 0
        while done < seconds:
            step = min(30.0, seconds - done)
            f.write(speech_like_block(step, seed * 100_003 + k))
            done, k = done + step, k + 1
    tmp.rename(path)
    return path


def audio_manifest(root: Path, seconds: float, many: bool) -> Path:
    """A manifest of ``seconds`` of audio: one file, or files of :data:`MANY_FILE_S`."""
    from spokenlm.common.files import write_jsonl

    kind = "many" if many else "one"
    path = root / f"audio_{kind}_{seconds:g}s.jsonl"
    if path.exists():
        return path
    if many:
        n = max(1, int(round(seconds / MANY_FILE_S)))
        files = [write_long_wav(root / "many" / f"f{i:05d}.wav", MANY_FILE_S, i)
                 for i in range(n)]
    else:
        files = [write_long_wav(root / "one" / f"long_{seconds:g}s.wav", seconds, 7)]
    return write_jsonl(path, [{"id": f.stem, "path": str(f)} for f in files])


def tokenizer_dir(root: Path) -> Path:
    """An MFCC (39-dim, 50 Hz) + 100-unit k-means tokenizer fitted on 60 s of the audio."""
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    out = root / "tokenizer"
    if (out / "config.json").exists():
        return out
    encoder = build_encoder({"name": "mfcc"})
    wav = np.concatenate([speech_like_block(10.0, 1000 + i) for i in range(6)])
    with torch.no_grad():
        feats = encoder(torch.from_numpy(wav)[None])[0].numpy()
    return SpeechTokenizer(encoder, KMeans.fit(feats, N_UNITS, seed=0),
                           device="cpu").save_pretrained(out)


def vocoder_dir(root: Path) -> Path:
    """A fast vocoder of the ``base`` size over 100 units, random weights."""
    from spokenlm.vocoder.fast import FastVocoder

    out = root / "vocoder_fast_base"
    if (out / "config.json").exists():
        return out
    torch.manual_seed(0)
    return FastVocoder.build("base", N_UNITS).save_pretrained(out)


# ---- one measured point (run in a child process) --------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _streaming(on: bool) -> None:
    """spokenlm's streaming path, or the baseline: every file whole, in one piece."""
    if not on:
        from spokenlm.audio import chunking

        chunking.STREAM_ABOVE_S = math.inf


def _digest(rows: list[dict], keys: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r.get(k) for k in keys]).encode())
    return h.hexdigest()[:16]


def point_tokenize(args: argparse.Namespace) -> dict:
    from spokenlm.common.files import read_jsonl
    from spokenlm.tokenize.run import tokenize_manifest

    _streaming(args.point.endswith("spokenlm"))
    with tempfile.TemporaryDirectory() as tmp:
        before = _rss_mb()
        t0 = time.perf_counter()
        out = tokenize_manifest(manifest=Path(args.data), tokenizer=Path(args.tokenizer),
                                output=Path(tmp) / "units.jsonl")
        seconds = time.perf_counter() - t0
        peak = _peak_mb()
        rows = read_jsonl(out)
    return {"size": args.size, "seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": before,
            "files": len(rows), "frames": sum(r["n_frames"] for r in rows),
            "x_realtime": args.size / seconds,
            "units_sha": _digest(rows, ("id", "units", "durations"))}


def point_resynth(args: argparse.Namespace) -> dict:
    from spokenlm.pipeline.index import read_index
    from spokenlm.pipeline.resynth import resynth

    _streaming(args.point.endswith("spokenlm"))
    with tempfile.TemporaryDirectory() as tmp:
        before = _rss_mb()
        t0 = time.perf_counter()
        out = resynth(input=Path(args.data), tokenizer=Path(args.tokenizer),
                      vocoder=Path(args.vocoder), output=Path(tmp) / "out")
        seconds = time.perf_counter() - t0
        peak = _peak_mb()
        rows = read_index(out / "resynth.jsonl")
    return {"size": args.size, "seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": before,
            "x_realtime": args.size / seconds,
            "duration_out": sum(r["duration_out"] for r in rows),
            "units_sha": _digest(rows, ("id", "units", "durations"))}


def point_kmeans(args: argparse.Namespace) -> dict:
    from bench_kmeans import fairseq_minibatch_kmeans, make_features

    from spokenlm.tokenize.kmeans import KMeans

    x, held = make_features(args.size, args.kmeans_dim, args.seed)
    before = _rss_mb()
    t0 = time.perf_counter()
    if args.point == "kmeans-spokenlm":
        model = KMeans.fit(x, args.kmeans_k, seed=args.seed)
    else:
        km = fairseq_minibatch_kmeans(args.kmeans_k, args.seed).fit(x)
        model = KMeans(km.cluster_centers_.astype(np.float32))
    seconds = time.perf_counter() - t0
    peak = _peak_mb()
    return {"size": args.size, "seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": before,
            "features_mb": (x.nbytes + held.nbytes) / 2 ** 20,
            "heldout_inertia_per_frame": model.inertia(held) / len(held)}


POINTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "tokenize": point_tokenize, "resynth": point_resynth, "kmeans": point_kmeans}


# ---- curves ----------------------------------------------------------------------------


def run_point(args: argparse.Namespace, point: str, size: float, **extra: str) -> dict | None:
    """One point in a child process (its own peak RSS); None if it failed or timed out."""
    cmd = [sys.executable, __file__, "--point", point, "--size", f"{size:g}",
           "--threads", str(args.threads), "--seed", str(args.seed),
           "--kmeans-k", str(args.kmeans_k), "--kmeans-dim", str(args.kmeans_dim)]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    log(f"{point}, size {size:g}")
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                              timeout=args.point_timeout,
                              env={**os.environ, "SPOKENLM_PROGRESS": "0"})
    except subprocess.TimeoutExpired:
        log(f"  {point} at {size:g}: over --point-timeout {args.point_timeout:g} s, skipped")
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        log(f"  {point} at {size:g} failed (exit {proc.returncode})")
        return None
    row = json.loads(lines[-1])
    log(f"  {row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB")
    return row


def exponent(points: list[dict], key: str = "seconds") -> float | None:
    """k of ``key ~ size^k``, least squares in log-log (None with fewer than 2 points)."""
    pts = [(p["size"], p[key]) for p in points if p and p.get(key)]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def _summary(points: list[dict | None]) -> dict:
    ok = [p for p in points if p]
    return {"points": ok, "time_exponent": exponent(ok),
            "rss_exponent": exponent(ok, "peak_rss_mb"),
            "peak_rss_mb_at_largest": ok[-1]["peak_rss_mb"] if ok else None}


def _curve(args: argparse.Namespace, device: torch.device, name: str, point: str,
           sizes: tuple[float, ...], baseline_max: float, agree_key: str, extra: dict,
           data: Callable[[float], Path], bar: str, recipes: tuple[str, str],
           size_info: dict) -> dict:
    ours = [run_point(args, f"{point}-spokenlm", s, data=data(s), **extra) for s in sizes]
    base = [run_point(args, f"{point}-baseline", s, data=data(s), **extra)
            if s <= baseline_max else None for s in sizes]
    both = [(o, b) for o, b in zip(ours, base) if o and b]
    agree = [o[agree_key] == b[agree_key] for o, b in both] if agree_key else []
    s, b = _summary(ours), _summary(base)
    largest = both[-1] if both else None
    return emit(
        name, spokenlm={"recipe": recipes[0], **s}, baseline={"recipe": recipes[1], **b},
        ratio=({"time": largest[1]["seconds"] / largest[0]["seconds"],
                "peak_rss": largest[1]["peak_rss_mb"] / largest[0]["peak_rss_mb"],
                "at_size": largest[0]["size"]} if largest else None),
        outputs_agree=all(agree) if agree else None,
        agreement={"compared_at": [o["size"] for o, _ in both], "key": agree_key},
        bar=bar, meets_bar=_meets(s, name) if s["points"] else None, device=device,
        size={"sizes": list(sizes), "reduced": args.reduced, "full": not args.reduced,
              **size_info})


def _meets(summary: dict, name: str) -> bool:
    """Tokenize/resynth: peak RSS under 2 GB at the largest size and no more than linear
    time; k-means: no more than linear time."""
    k = summary["time_exponent"]
    linear = k is None or k <= 1.15
    if name == "scale_kmeans":
        return bool(linear)
    return bool(linear and summary["peak_rss_mb_at_largest"] < 2048)


def curve_tokenize(args: argparse.Namespace, device: torch.device, many: bool = False) -> dict:
    root = Path(args.data_dir)
    sizes = tuple(args.tokenize_seconds or (TOKENIZE_REDUCED if args.reduced else TOKENIZE_FULL))
    tok = tokenizer_dir(root)
    layout = f"{MANY_FILE_S:g} s files" if many else "one file"
    return _curve(
        args, device, f"scale_tokenize_{'many_files' if many else 'one_file'}", "tokenize",
        sizes, math.inf, "units_sha", {"tokenizer": tok},
        lambda s: audio_manifest(root, s, many),
        "peak RSS under 2 GB on a 1-hour file, time linear in audio; same units",
        ("tokenize_manifest, streaming (files > 60 s in 120 s chunks from disk)",
         "tokenize_manifest with streaming off (each file decoded whole, one piece)"),
        {"unit": "seconds of audio", "layout": layout, "encoder": "mfcc", "n_units": N_UNITS})


def curve_tokenize_many(args: argparse.Namespace, device: torch.device) -> dict:
    return curve_tokenize(args, device, many=True)


def curve_resynth(args: argparse.Namespace, device: torch.device) -> dict:
    root = Path(args.data_dir)
    sizes = tuple(args.resynth_seconds or (RESYNTH_REDUCED if args.reduced else RESYNTH_FULL))
    return _curve(
        args, device, "scale_resynth", "resynth", sizes, args.resynth_baseline_max_s,
        "units_sha", {"tokenizer": tokenizer_dir(root), "vocoder": vocoder_dir(root)},
        lambda s: audio_manifest(root, s, False),
        "peak RSS under 2 GB on a 1-hour file, time linear in audio; same units",
        ("resynth, streaming (tokenize from disk, vocoder in 20 s chunks, wav written as it "
         "comes)", "resynth with streaming off (file whole, one-piece synthesis)"),
        {"unit": "seconds of audio", "layout": "one file", "encoder": "mfcc",
         "vocoder": "fast base (random weights)", "n_units": N_UNITS})


def curve_kmeans(args: argparse.Namespace, device: torch.device) -> dict:
    sizes = tuple(args.kmeans_frames or (KMEANS_REDUCED if args.reduced else KMEANS_FULL))
    row = _curve(
        args, device, "scale_kmeans", "kmeans", sizes, args.kmeans_baseline_max, "", {},
        lambda s: Path("-"), "time no more than linear in frames; held-out inertia reported",
        ("KMeans.fit (k-means++ + 20 faiss Lloyd iterations on <= 256 frames/centroid)",
         "sklearn MiniBatchKMeans, fairseq learn_kmeans.py settings"),
        {"unit": "frames", "dim": args.kmeans_dim, "k": args.kmeans_k})
    base = [p for p in row["baseline"]["points"]]
    k_base = row["baseline"]["time_exponent"]
    if base and k_base is not None and sizes[-1] > base[-1]["size"]:
        row["baseline"]["seconds_at_largest_extrapolated"] = \
            base[-1]["seconds"] * (sizes[-1] / base[-1]["size"]) ** k_base
    return row


#: curve name -> function(args, device) -> the emitted row
CURVES: dict[str, Callable[[argparse.Namespace, torch.device], dict]] = {
    "tokenize": curve_tokenize, "tokenize_many": curve_tokenize_many,
    "resynth": curve_resynth, "kmeans": curve_kmeans}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This module's flags (on top of ``_common.parser``'s)."""
    p.add_argument("--reduced", action="store_true", help="a few small sizes (< 2 min)")
    p.add_argument("--only", default="tokenize,tokenize_many,resynth,kmeans",
                   help=f"comma-separated subset of {','.join(CURVES)}")
    p.add_argument("--tokenize-seconds", type=float, nargs="+", default=None)
    p.add_argument("--resynth-seconds", type=float, nargs="+", default=None)
    p.add_argument("--resynth-baseline-max-s", type=float, default=300.0,
                   help="run the resynth baseline (whole file in memory) up to this length")
    p.add_argument("--kmeans-frames", type=int, nargs="+", default=None)
    p.add_argument("--kmeans-dim", type=int, default=768)
    p.add_argument("--kmeans-k", type=int, default=N_UNITS)
    p.add_argument("--kmeans-baseline-max", type=int, default=300_000,
                   help="run scikit-learn up to this many frames (its exponent extrapolates)")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "spokenlm_scale_audio"))
    p.add_argument("--point-timeout", type=float, default=3600)


def record(rows: list[dict], path: Path, flags: list[str]) -> None:
    from run_all import git_commit

    meta = {"run_id": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_commit": git_commit(),
            "flags": flags}
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps({**row, **meta}) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    p = parser(__doc__)
    add_arguments(p)
    p.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    p.add_argument("--results", type=Path, default=HERE / "results.jsonl")
    # internal: one measured point
    p.add_argument("--point", default=None, help=argparse.SUPPRESS)
    p.add_argument("--size", type=float, default=0, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tokenizer", default=None, help=argparse.SUPPRESS)
    p.add_argument("--vocoder", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    device = setup(args)
    if args.point:
        if args.point.startswith("kmeans"):
            args.size = int(args.size)
        row = POINTS[args.point.split("-")[0]](args)
        print(json.dumps(row), file=sys.__stdout__, flush=True)
        return [row]
    if args.reduced:
        args.kmeans_dim = 64 if args.kmeans_dim == 768 else args.kmeans_dim
        args.kmeans_k = 50 if args.kmeans_k == N_UNITS else args.kmeans_k
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    names = args.only.split(",")
    unknown = sorted(set(names) - set(CURVES))
    if unknown:
        p.error(f"unknown curve(s) {unknown}; choose from {', '.join(CURVES)}")
    rows = [CURVES[name](args, device) for name in names]
    if not args.no_record:
        record(rows, args.results, sys.argv[1:] if argv is None else list(argv))
    return rows


if __name__ == "__main__":
    os.environ.setdefault("SPOKENLM_PROGRESS", "0")
    main()
