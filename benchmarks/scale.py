"""Cost curves (issue 18): time and peak memory against work size, spokenlm next to its
baseline on the same inputs, each curve fitted with a growth exponent (seconds ~ size^k).

Curves (one JSON line each, bench names ``scale_*``):

- ``scale_abx``: triphone ABX (within context; within- and across-speaker; ``--abx-context
  any`` adds context-free phone ABX), angular distance, libri-light's subsampling (10 tokens
  per category, 5 X speakers), from 1k items to the largest item file (``--abx-items``).
  spokenlm: ``eval.abx.abx_error``. Baseline: libri-light's ABX as ``zerospeech-libriabx2``
  packages it (``zrc_abx2`` 0.9.8), run for real when importable (installed, or
  ``--reference-site DIR`` after ``pip install --target DIR --no-deps
  zerospeech-libriabx2``, which keeps it and its torchaudio pin out of the venv; its CPC
  loader imports torchaudio, which is stubbed: features come from .npy files); otherwise
  the loop-for-loop re-implementation ``spokenlm.testing.abx_reference`` (pure Python, far
  slower than the Cython original: its times are then not the reference's). Both sides
  read the same .npy features and .item file and keep the same frames (libri-light's:
  ``ceil(50 onset - 0.5) <= i < floor(50 offset - 0.5)``); files are listed in item-file
  order, so the reference draws the same subsamples and the scores must agree to 0.1
  point. Speed anchor: fastabx (Poli et al. 2025, arXiv:2505.02692) reports libri-light
  at 370 s and fastabx at 30 s on CPU (11 s GPU) for dev-clean within/within with no
  subsampling, on their hardware.
- ``scale_scoring``: story-cloze-shaped items (a prompt of 100-300 units, two endings of
  30-90) under a random ``small`` LLaMA (500 units), 100 to 10k items. spokenlm: shared
  prefix (``lm.score.log_likelihood_shared``: the prompt once, its KV cache per ending);
  baseline: full scoring of every prompt + ending (``UnitLM.log_likelihood``, the same
  length-sorted batches without sharing). Agreement: candidate sums and decisions.

The ABX input is synthetic and shaped like LibriSpeech dev-clean (40 speakers, ~7 s
utterances, phones of 30 ms and up, ~80 ms on average, on a 10 ms grid): sentences from
spokenlm's grammar spelled with its ARPAbet lexicon, 50 Hz frames = a phone prototype
(blended with the previous phone over the first third) + a speaker offset + noise, in
``--abx-dim`` dimensions. Each point runs in its own process: wall seconds (end to end:
reading the features, cutting the items, scoring) and peak RSS (``ru_maxrss``).

    python benchmarks/scale.py                  # the full curves (long on 2 CPU cores)
    python benchmarks/scale.py --reduced        # what `make bench` runs (a few minutes)
    python benchmarks/scale.py --only abx --reference-site /tmp/zrc --threads 2

Rows are printed on stdout and appended to ``benchmarks/results.jsonl`` (``--no-record``
to skip; ``run_all.py`` records them itself).
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import _round, emit, log, parser, setup  # noqa: E402

FRAME_RATE = 50
ABX_FULL = (1_000, 3_000, 10_000, 30_000, 100_000, 220_000)
ABX_REDUCED = (3_000, 10_000)
SCORING_FULL = (100, 300, 1_000, 3_000, 10_000)
SCORING_REDUCED = (100, 300)


# ---- the synthetic ABX corpus ------------------------------------------------------------


def build_abx_corpus(root: Path, n_items: int, *, dim: int, n_speakers: int = 40,
                     seed: int = 0) -> Path:
    """Features (one .npy per utterance, 50 Hz) and ``items.tsv`` (every item line, in
    order) for at least ``n_items`` phone items; reused when already there (a corpus made
    for more items has the same first ``n_items``: the streams do not depend on it)."""
    out = root / f"abx_d{dim}_s{n_speakers}_seed{seed}"
    done = out / "items.tsv"
    if done.exists() and len(done.read_text().splitlines()) >= n_items:
        return out
    from spokenlm.data.grammar import generate_parsed
    from spokenlm.data.vocabulary import vocabulary

    (out / "features").mkdir(parents=True, exist_ok=True)
    lexicon = vocabulary().lexicon()
    rng = np.random.default_rng(seed)
    phones = sorted({p for pron in lexicon.values() for p in pron})
    pid = {p: i for i, p in enumerate(phones)}
    protos = rng.standard_normal((len(phones), dim)).astype(np.float32)
    shifts = 0.6 * rng.standard_normal((n_speakers, dim)).astype(np.float32)

    def sentence_stream():
        for chunk in range(10**6):
            yield from generate_parsed(2000, seed + chunk)

    sentences = sentence_stream()
    lines, n_done, utt = [], 0, 0
    while n_done < n_items:
        spk = utt % n_speakers
        seq: list[str] = ["SIL"]
        while len(seq) < 90:  # ~7 s: sentences separated by pauses
            seq += [p for w in next(sentences).text.split() for p in lexicon.get(w, [])]
            seq.append("SIL")
        is_sil = np.array(seq) == "SIL"
        dur = np.where(is_sil, 20, 3 + rng.gamma(2.0, 2.5, len(seq)).astype(int))
        ends = np.cumsum(dur)  # in 10 ms steps
        starts = ends - dur
        centre = (np.arange(int(ends[-1]) // 2) + 0.5) * 2  # 50 Hz frame centres
        seg = np.searchsorted(ends, centre, side="right")  # the phone under each frame
        cur = np.array([pid.get(p, 0) for p in seq])
        prev = np.concatenate([[cur[0]], cur[:-1]])
        blend = np.clip(3 * (centre - starts[seg]) / dur[seg], 0, 1)[:, None]
        feats = blend * protos[cur[seg]] + (1 - blend) * protos[prev[seg]]
        feats = feats + shifts[spk] + 0.9 * rng.standard_normal(feats.shape)
        feats[is_sil[seg]] = 0.3 * rng.standard_normal((int(is_sil[seg].sum()), dim))
        fid = f"u{utt:05d}"
        np.save(out / "features" / f"{fid}.npy", feats.astype(np.float32))
        for k, p in enumerate(seq):
            if p != "SIL" and n_done < n_items:
                lines.append(f"{fid}\t{starts[k] / 100:.2f}\t{ends[k] / 100:.2f}\t{p}\t"
                             f"{seq[k - 1]}\t{seq[k + 1]}\ts{spk:02d}")
                n_done += 1
        utt += 1
    for old in out.glob("items_*.item"):
        old.unlink()
    done.write_text("\n".join(lines) + "\n")
    return out


def item_file(corpus: Path, n_items: int) -> Path:
    """The first ``n_items`` items as a ZeroSpeech .item file."""
    path = corpus / f"items_{n_items}.item"
    if not path.exists():
        rows = (corpus / "items.tsv").read_text().splitlines()[:n_items]
        path.write_text("#file onset offset #phone prev-phone next-phone speaker\n" +
                        "".join(r.replace("\t", " ") + "\n" for r in rows))
    return path


def read_items(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines()[1:] if ln.strip()]


def cut_items(corpus: Path, items: list[list[str]]):
    """libri-light's frames of every item: (per kept item the frames, its (context, label,
    speaker)), files in item-file order."""
    frames, keys, cache = [], [], {}
    for fid, on, off, phone, prev, nxt, spk in items:
        if fid not in cache:
            cache.clear()
            cache[fid] = np.load(corpus / "features" / f"{fid}.npy")
        feats = cache[fid]
        start = max(0, math.ceil(FRAME_RATE * float(on) - 0.5))
        end = min(len(feats), math.floor(FRAME_RATE * float(off) - 0.5))
        if start >= len(feats) or end <= start:
            continue
        frames.append(feats[start:end].copy())  # not a view: the file's array can go
        keys.append((f"{prev}+{nxt}", phone, spk))
    return frames, keys


# ---- one measured point (run in a child process) --------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used: steadier than wall time on a
    machine others share."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def point_abx(args) -> dict:
    corpus, n = Path(args.data), args.items
    path = item_file(corpus, n)
    contexts = ["within"] + (["any"] if args.abx_context == "any" else [])
    before, cpu0 = _rss_mb(), _cpu_s()
    t0 = time.perf_counter()
    if args.point == "abx-spokenlm":
        from spokenlm.eval.abx import Token, abx_error

        items = read_items(path)
        frames, keys = cut_items(corpus, items)
        t1 = time.perf_counter()
        out = abx_error([torch.from_numpy(f) for f in frames],
                        [Token(k[1], k[0], k[2]) for k in keys], distance="angular",
                        context_modes=contexts, device=args.device,
                        id_order=[Token(r[3], f"{r[4]}+{r[5]}", r[6]) for r in items])
        scores = {k: out[k] for k in ("within", "across", "within_any", "across_any")
                  if k in out and out[k] is not None}
        extra = {"abx_seconds": time.perf_counter() - t1, "n_pairs": out["n_pairs"],
                 "n_groups": {k: out[f"n_{k}_groups"] for k in scores}}
    elif has_reference(args.reference_site):
        import types

        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
        from zrc_abx2.ABX_src.models import Pooling
        from zrc_abx2.eval_ABX import EvalABX

        files = list(dict.fromkeys(r[0] for r in read_items(path)))
        res = EvalABX()._ABX(Pooling.NONE, 3459, lambda p: torch.from_numpy(np.load(p)),
                             str(path), [(f, str(corpus / "features" / f"{f}.npy"))
                                         for f in files], "cosine", float(FRAME_RATE),
                             ["within", "across"], contexts, cuda=args.device == "cuda",
                             max_x_across=5, max_size_group=10)
        scores = {(s if c == "within" else f"{s}_any"): res[f"{s}-{c}"]
                  for c in contexts for s in ("within", "across")}
        extra = {}
    else:
        from spokenlm.testing.abx_reference import reference_abx

        items = read_items(path)
        frames, keys = cut_items(corpus, items)
        order = [(f"{r[4]}+{r[5]}", r[3], r[6]) for r in items]
        scores = {(s if c == "within" else f"{s}_any"): reference_abx(
            frames, keys, speaker_mode=s, context_mode=c, id_order=order)
            for c in contexts for s in ("within", "across")}
        extra = {}
    seconds = time.perf_counter() - t0
    return {"items": n, "seconds": seconds, "cpu_seconds": _cpu_s() - cpu0,
            "peak_rss_mb": _peak_mb(), "rss_before_mb": before, "scores": scores, **extra}


def has_reference(site: str | None) -> bool:
    """Whether zrc_abx2 (and its compiled DTW) can be imported, from ``site`` if given."""
    import importlib.util

    if site and site not in sys.path:
        sys.path.insert(0, site)
    return all(importlib.util.find_spec(m) is not None for m in ("zrc_abx2", "libri_light_dtw"))


def scoring_items(n: int, n_units: int, seed: int):
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(0, n_units, int(rng.integers(100, 301))).tolist() for _ in range(n)]
    endings = [[rng.integers(0, n_units, int(rng.integers(30, 91))).tolist() for _ in range(2)]
               for _ in range(n)]
    return prompts, endings


def point_scoring(args) -> dict:
    from spokenlm.lm.config import LMConfig
    from spokenlm.lm.model import UnitLM
    from spokenlm.lm.score import log_likelihood_shared

    lm = UnitLM.build(500, LMConfig.named(args.lm_size), seed=args.seed).to(args.device)
    lm.model.eval()
    prompts, endings = scoring_items(args.items, 500, args.seed)
    before, cpu0 = _rss_mb(), _cpu_s()
    t0 = time.perf_counter()
    if args.point == "scoring-spokenlm":
        res = log_likelihood_shared(lm, prompts, endings)
        sums = [[e.sum for e in r.endings] for r in res]
    else:
        flat = lm.log_likelihood([p + e for p, es in zip(prompts, endings) for e in es])
        it = iter(flat)
        sums = [[float(next(it).per_token[-len(e):].sum()) for e in es] for es in endings]
    seconds = time.perf_counter() - t0
    np.save(args.out, np.array(sums, dtype=np.float64))
    n_tokens = sum(len(p) + 1 + sum(len(e) for e in es) for p, es in zip(prompts, endings))
    return {"items": args.items, "seconds": seconds, "cpu_seconds": _cpu_s() - cpu0,
            "peak_rss_mb": _peak_mb(), "rss_before_mb": before,
            "items_per_s": args.items / seconds,
            "unique_tokens": n_tokens}


# ---- curves --------------------------------------------------------------------------


def run_point(args, point: str, items: int, **extra: str) -> dict | None:
    """One point in a child process (its own peak RSS); None if it failed or timed out."""
    cmd = [sys.executable, __file__, "--point", point, "--items", str(items),
           "--device", str(args.device), "--threads", str(args.threads), "--seed", str(args.seed),
           "--lm-size", args.lm_size, "--abx-context", args.abx_context]
    if args.reference_site:
        cmd += ["--reference-site", args.reference_site]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", v]
    log(f"{point}, {items} items")
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=args.point_timeout)
    except subprocess.TimeoutExpired:
        log(f"  {point} at {items} items: over --point-timeout {args.point_timeout} s, skipped")
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        log(f"  {point} at {items} items failed (exit {proc.returncode})")
        return None
    row = json.loads(lines[-1])
    log(f"  {row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:.0f} MB")
    return row


def exponent(points: list[dict], key: str = "seconds", last: int | None = None
             ) -> float | None:
    """k of ``key ~ items^k``, least squares in log-log over the ``last`` largest points (all
    by default; None with fewer than 2)."""
    pts = [(p["items"], p[key]) for p in points if p and p.get(key)][-(last or 0):]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def curve_abx(args, device: torch.device) -> dict:
    sizes = args.abx_items or (ABX_REDUCED if args.reduced else ABX_FULL)
    root = Path(args.data_dir)
    corpus = build_abx_corpus(root, max(sizes), dim=args.abx_dim, seed=args.seed)
    ours = [run_point(args, "abx-spokenlm", n, data=str(corpus)) for n in sizes]
    ref_name = ("zrc_abx2 0.9.8 (zerospeech-libriabx2, libri-light ABX), real package"
                if has_reference(args.reference_site) else
                "spokenlm.testing.abx_reference: pure-Python re-implementation of zrc_abx2 "
                "(slower than the Cython original; times are not the reference's)")
    base = [run_point(args, "abx-reference", n, data=str(corpus)) if n <= args.baseline_max_items
            else None for n in sizes]
    both = [(o, b) for o, b in zip(ours, base) if o and b]
    diffs = [abs(o["scores"][k] - b["scores"][k]) for o, b in both for k in b["scores"]]
    largest = both[-1] if both else None
    agree = bool(diffs) and max(diffs) <= 1e-3
    ours_ok = [p for p in ours if p]
    k_base = exponent([b for b in base if b])
    extrapolated = None
    if ours_ok and k_base is not None and ours_ok[-1]["items"] > max(b["items"] for b in base if b):
        b_last = [b for b in base if b][-1]
        extrapolated = b_last["seconds"] * (ours_ok[-1]["items"] / b_last["items"]) ** k_base
    return emit(
        "scale_abx",
        spokenlm={"points": ours_ok, "time_exponent": exponent(ours_ok),
                  "time_exponent_largest3": exponent(ours_ok, last=3),
                  "cpu_exponent_largest3": exponent(ours_ok, "cpu_seconds", last=3),
                  "rss_exponent": exponent(ours_ok, "peak_rss_mb")},
        baseline={"recipe": ref_name, "points": [b for b in base if b],
                  "time_exponent": k_base,
                  "time_exponent_largest3": exponent([b for b in base if b], last=3),
                  "cpu_exponent_largest3": exponent([b for b in base if b], "cpu_seconds",
                                                    last=3),
                  "rss_exponent": exponent([b for b in base if b], "peak_rss_mb"),
                  "seconds_at_largest_extrapolated": extrapolated},
        ratio=(largest[1]["seconds"] / largest[0]["seconds"]) if largest else None,
        outputs_agree=agree if diffs else None,
        agreement={"max_abs_score_diff": max(diffs) if diffs else None,
                   "cpu_ratio_at_largest": (largest[1]["cpu_seconds"] /
                                            largest[0]["cpu_seconds"]) if largest else None,
                   "compared_at_items": [o["items"] for o, _ in both]},
        bar="same scores as the reference (within 0.1 point); the largest item file in "
            "minutes on 2 cores, memory bounded",
        meets_bar=bool(agree and ours_ok and ours_ok[-1]["seconds"] < 600) if diffs else None,
        device=device,
        size={"items": list(sizes), "dim": args.abx_dim, "speakers": 40,
              "contexts": ["within"] + (["any"] if args.abx_context == "any" else []),
              "reduced": args.reduced, "full": not args.reduced})


def curve_scoring(args, device: torch.device) -> dict:
    sizes = args.scoring_items or (SCORING_REDUCED if args.reduced else SCORING_FULL)
    with tempfile.TemporaryDirectory() as tmp:
        ours, base, same, rel = [], [], [], []
        for n in sizes:
            a, b = Path(tmp) / f"s{n}.npy", Path(tmp) / f"f{n}.npy"
            o = run_point(args, "scoring-spokenlm", n, out=str(a))
            f = run_point(args, "scoring-full", n, out=str(b))
            ours.append(o)
            base.append(f)
            if o and f:
                x, y = np.load(a), np.load(b)
                rel.append(float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-9))))
                same.append(float(np.mean((x[:, 0] > x[:, 1]) == (y[:, 0] > y[:, 1]))))
    ok = [(o, f) for o, f in zip(ours, base) if o and f]
    ours, base = [o for o in ours if o], [f for f in base if f]
    ratios = [f["seconds"] / o["seconds"] for o, f in ok]
    cpu_ratios = [f["cpu_seconds"] / o["cpu_seconds"] for o, f in ok]
    agree = bool(rel) and max(rel) < 1e-4 and min(same) == 1.0
    return emit(
        "scale_scoring",
        spokenlm={"recipe": "shared prefix (prompt once, KV cache per ending)",
                  "points": ours, "time_exponent": exponent(ours)},
        baseline={"recipe": "full scoring of every prompt + ending (length-sorted batches)",
                  "points": base, "time_exponent": exponent(base)},
        ratio=ratios[-1] if ratios else None, outputs_agree=agree if rel else None,
        agreement={"max_rel_diff_of_sums": max(rel) if rel else None,
                   "items_decided_the_same": min(same) if same else None,
                   "ratio_per_size": ratios, "cpu_ratio_per_size": cpu_ratios},
        bar="same decisions as full scoring; cost of one prompt instead of one per ending",
        meets_bar=bool(agree and ratios and ratios[-1] > 1.0) if rel else None, device=device,
        size={"items": list(sizes), "prompt_units": [100, 300], "ending_units": [30, 90],
              "endings": 2, "model": args.lm_size, "n_units": 500, "reduced": args.reduced,
              "full": not args.reduced})


def record(rows: list[dict], path: Path, flags: list[str]) -> None:
    from run_all import git_commit

    meta = {"run_id": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_commit": git_commit(),
            "flags": flags}
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(_round({**row, **meta})) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    p = parser(__doc__)
    p.add_argument("--reduced", action="store_true", help="small curves (what `make bench` runs)")
    p.add_argument("--only", default="abx,scoring", help="comma-separated: abx, scoring")
    p.add_argument("--abx-items", type=int, nargs="+", default=None)
    p.add_argument("--abx-dim", type=int, default=256, help="feature dimension")
    p.add_argument("--abx-context", choices=("within", "any"), default="within",
                   help="any: also context-free (phone) ABX")
    p.add_argument("--reference-site", default=None,
                   help="folder holding zrc_abx2 (pip install --target DIR --no-deps "
                        "zerospeech-libriabx2); default: the pure-Python re-implementation")
    p.add_argument("--baseline-max-items", type=int, default=30_000,
                   help="run the ABX baseline up to this size (its exponent extrapolates)")
    p.add_argument("--scoring-items", type=int, nargs="+", default=None)
    p.add_argument("--lm-size", default="small")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "spokenlm_scale"))
    p.add_argument("--point-timeout", type=float, default=3600)
    p.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    p.add_argument("--results", type=Path, default=HERE / "results.jsonl")
    # internal: one measured point
    p.add_argument("--point", default=None, help=argparse_hidden())
    p.add_argument("--items", type=int, default=0, help=argparse_hidden())
    p.add_argument("--data", default=None, help=argparse_hidden())
    p.add_argument("--out", default=None, help=argparse_hidden())
    args = p.parse_args(argv)
    device = setup(args)
    if args.point:
        row = point_abx(args) if args.point.startswith("abx") else point_scoring(args)
        print(json.dumps(row), file=sys.__stdout__, flush=True)
        return [row]
    if args.reduced and args.baseline_max_items == 30_000:
        args.baseline_max_items = 3_000
    curves = {"abx": curve_abx, "scoring": curve_scoring}
    names = args.only.split(",")
    unknown = sorted(set(names) - set(curves))
    if unknown:
        p.error(f"unknown curve(s) {unknown}; choose from {', '.join(curves)}")
    rows = [curves[name](args, device) for name in names]
    if not args.no_record:
        record(rows, args.results, sys.argv[1:] if argv is None else list(argv))
    return rows


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("SPOKENLM_PROGRESS", "0")
    main()
