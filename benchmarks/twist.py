"""TWIST at laptop scale: does a text-pretrained warm start help a unit LM?

Given a demo run dir (``spokenlm demo``: corpus/, tokenizer/, units/, bench/), this script

1. pretrains a text LM (LLaMA, preset ``--size``) on the corpus's training transcripts plus
   ``--extra-sentences`` grammar sentences that are not spoken anywhere (not in the corpus,
   not in any benchmark under bench/);
2. warm-starts a unit LM from it (``spokenlm lm train --init-from``, TWIST);
3. trains a cold-start unit LM of the same size on the same units, steps, batch and seed;
4. scores both on the demo's spoken benchmarks: bench/spot_the_word, bench/acceptability
   (``spokenlm data bench build --generate acceptability``; skipped with a note when absent)
   and any other benchmark dir found under bench/;

then prints a markdown table and one JSON line (numbers, seeds, step budgets, wall times),
also written to ``<output>/results.json``. Every training run resumes, so a re-run after a
kill (or with the same options) only redoes what is missing.

    python benchmarks/twist.py --run runs/demo --text-steps 300 --unit-steps 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=Path("runs/demo"), help="demo run dir")
    p.add_argument("--output", type=Path, default=None, help="default: <run>/twist")
    p.add_argument("--size", default="small", help="LM preset of all three models")
    p.add_argument("--text-steps", type=int, default=300, help="text LM steps")
    p.add_argument("--unit-steps", type=int, default=300, help="steps of each unit LM")
    p.add_argument("--extra-sentences", type=int, default=20000,
                   help="grammar sentences added to the text LM's data")
    p.add_argument("--extra-seed", type=int, default=1000, help="their grammar seed")
    p.add_argument("--level", choices=("word", "char"), default="word",
                   help="text LM tokenizer")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--init", choices=("mean", "random"), default="mean",
                   help="warm start: init of the unit embeddings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--acceptability-items", type=int, default=200,
                   help="pairs to speak into <output>/bench/acceptability when the run has "
                        "no bench/acceptability (0: skip that benchmark)")
    p.add_argument("--acceptability-seed", type=int, default=1,
                   help="their grammar seed (not the corpus's)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="auto")
    return p.parse_args(argv)


def bench_dirs(run: Path, out: Path, n_acceptability: int, seed: int) -> dict[str, Path]:
    """Benchmark dirs of the run: spot_the_word and acceptability first, then any other.
    Without bench/acceptability in the run, ``n_acceptability`` pairs are spoken into
    ``<out>/bench/acceptability`` (0: skipped)."""
    root = run / "bench"
    found = {p.name: p for p in sorted(root.iterdir())
             if (p / "items.jsonl").exists()} if root.is_dir() else {}
    own = out / "bench" / "acceptability"
    if "acceptability" not in found and n_acceptability > 0:
        if not (own / "items.jsonl").exists():
            from spokenlm.common.errors import SpokenLMError
            from spokenlm.data.benchmark_builders import build_benchmark

            try:
                build_benchmark(generate="acceptability", corpus=run / "corpus", output=own,
                                n_items=n_acceptability, seed=seed)
            except SpokenLMError as e:
                print(f"[twist] acceptability benchmark not built: {e}", file=sys.stderr)
        if (own / "items.jsonl").exists():
            found["acceptability"] = own
    for name, how in (("spot_the_word", "`spokenlm demo` builds it"),
                      ("acceptability", "`spokenlm data bench build --generate acceptability "
                                        f"--corpus {run / 'corpus'} --output "
                                        f"{root / 'acceptability'}`, or --acceptability-items")):
        if name not in found:
            print(f"[twist] {root / name}: absent, skipped ({how})", file=sys.stderr)
    order = [n for n in ("spot_the_word", "acceptability") if n in found]
    return {n: found[n] for n in order + sorted(set(found) - set(order))}


def text_lm_sentences(run: Path, n_extra: int, seed: int, benches: dict[str, Path]
                      ) -> tuple[list[str], int]:
    """Training transcripts + grammar sentences spoken nowhere; (lines, extra kept)."""
    from spokenlm.common.files import iter_jsonl
    from spokenlm.data.grammar import generate_sentences
    from spokenlm.lm.text_lm import TextTokenizer, read_text

    def norm(t: str) -> str:
        return " ".join(TextTokenizer.split(t, "word"))

    lines = read_text(run / "corpus")  # train split only
    spoken = {norm(r.get("text") or "") for s in ("train", "valid", "test")
              for r in iter_jsonl(run / "corpus" / f"{s}.jsonl")}
    for b in benches.values():
        spoken |= {norm(r.get("text") or "") for r in iter_jsonl(b / "manifest.jsonl")}
    extra = [s for s in generate_sentences(n_extra, seed=seed) if norm(s) not in spoken]
    return lines + extra, len(extra)


def score(lm_dir: Path, benches: dict[str, tuple], device: str) -> dict[str, dict]:
    """Accuracy of one unit LM on every benchmark (units encoded once, passed in)."""
    from spokenlm.common.device import resolve_device
    from spokenlm.eval.benchmark import accuracy, score_items
    from spokenlm.lm import UnitLM

    lm = UnitLM.from_pretrained(lm_dir, device=resolve_device(device))
    out = {}
    for name, (bench, units) in benches.items():
        acc = accuracy(score_items(bench, units, lm))
        out[name] = {k: acc[k] for k in ("n_items", "accuracy_sum", "accuracy_mean")}
        out[name]["subsets"] = {s: round(v["accuracy_sum"], 4)
                                for s, v in acc["subsets"].items()}
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from spokenlm.common.files import read_json
    from spokenlm.eval.benchmark import Benchmark, encode_audio
    from spokenlm.lm.text_lm import pretrain_text_lm
    from spokenlm.lm.train import train_lm
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    run = args.run
    need = [run / "corpus" / "train.jsonl", run / "tokenizer" / "config.json",
            run / "units" / "train.jsonl"]
    if any(not p.exists() for p in need):
        missing = [str(p) for p in need if not p.exists()]
        sys.exit(f"[twist] {run}: not a complete demo run (missing {', '.join(missing)}); "
                 f"make one with `spokenlm demo --output {run}` (about 15 min on 2 cores)")
    out = args.output or run / "twist"
    out.mkdir(parents=True, exist_ok=True)
    paths = bench_dirs(run, out, args.acceptability_items, args.acceptability_seed)
    if not paths:
        sys.exit(f"[twist] {run / 'bench'}: no benchmark to score on; finish the demo run")
    walls: dict[str, float] = {}

    t0 = time.perf_counter()
    lines, n_extra = text_lm_sentences(run, args.extra_sentences, args.extra_seed, paths)
    text_file = out / "text_lm_sentences.txt"
    text_file.write_text("\n".join(lines) + "\n")
    common = dict(size=args.size, seq_len=args.seq_len, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed, device=args.device, save_every=100)
    text_lm = pretrain_text_lm(text=text_file, output=out / "text_lm", level=args.level,
                               max_steps=args.text_steps, eval_every=args.text_steps,
                               **common)
    walls["text_lm"] = time.perf_counter() - t0

    units = dict(units=run / "units" / "train.jsonl", max_steps=args.unit_steps,
                 eval_every=args.unit_steps, tokenizer=run / "tokenizer", **common)
    if (run / "units" / "valid.bin").exists():  # the demo's held-out speakers
        units["valid_units"] = run / "units" / "valid.jsonl"
    models = {}
    for name, extra in (("cold", {}),
                        ("warm", {"init_from": text_lm, "init_embeddings": args.init})):
        t0 = time.perf_counter()
        models[name] = train_lm(output=out / name, **units, **extra)
        walls[name] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tokenizer = SpeechTokenizer.from_pretrained(run / "tokenizer")
    benches = {}
    for name, path in paths.items():
        bench = Benchmark.load(path)
        benches[name] = (bench, encode_audio(bench.audio, tokenizer, desc=f"tokenize {name}"))
    results = {name: score(d, benches, args.device) for name, d in models.items()}
    walls["eval"] = time.perf_counter() - t0

    text_metrics = read_json(out / "text_lm" / "run" / "metrics.json")
    report = {
        "benchmark": "twist", "run": str(run), "size": args.size, "seed": args.seed,
        "text_lm": {"steps": args.text_steps, "sentences": len(lines), "extra_sentences":
                    n_extra, "extra_seed": args.extra_seed, "level": args.level,
                    "valid_loss": text_metrics.get("valid_loss"), "dir": str(text_lm)},
        "unit_lm": {"steps": args.unit_steps, "batch_size": args.batch_size,
                    "seq_len": args.seq_len, "lr": args.lr, "warm_init": args.init},
        "valid_loss": {n: read_json(out / n / "metrics.json").get("valid_loss")
                       for n in models},
        "train_time_s": {n: read_json(out / n / "metrics.json").get("time_s")
                         for n in ("text_lm/run", *models)},
        "results": results, "wall_s": {k: round(v, 1) for k, v in walls.items()},
        "threads": args.threads, "benchmarks": {n: str(p) for n, p in paths.items()},
    }
    print(table(report))
    print(json.dumps(report))
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def table(report: dict) -> str:
    """Markdown: one row per unit LM, accuracy (summed / mean log-lik) per benchmark."""
    names = list(report["results"]["cold"])
    head = ["unit LM", "valid loss"] + [f"{n} (sum / mean)" for n in names] + ["train s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, label in (("cold", "cold start"), ("warm", "TWIST warm start")):
        vl = report["valid_loss"][m]
        cells = [label, "-" if vl is None else f"{vl:.3f}"]
        cells += [f"{r['accuracy_sum']:.3f} / {r['accuracy_mean']:.3f} (n={r['n_items']})"
                  for r in (report["results"][m][n] for n in names)]
        rows.append("| " + " | ".join(cells + [f"{report['train_time_s'][m]:.0f}"]) + " |")
    t, u = report["text_lm"], report["unit_lm"]
    rows.append(f"\ntext LM: {report['size']}, {t['steps']} steps on {t['sentences']} "
                f"sentences ({t['extra_sentences']} unspoken), valid loss "
                f"{t['valid_loss'] or float('nan'):.3f}; unit LMs: {u['steps']} steps x "
                f"{u['batch_size']} x {u['seq_len']} tokens, seed {report['seed']}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
