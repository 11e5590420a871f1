"""Rescore finished demo runs on larger benchmark sets: the same tokenizer and unit LM, on
spot-the-word and acceptability sets of ``--n-pairs`` pairs built from each run's own corpus
(its held-out test voices), so seeds and settings compare with less evaluation noise than
the demo's 200 pairs (+-0.035 a set).

    python benchmarks/demo_rescore.py runs/demo_s0 runs/demo_s1 --n-pairs 700

Sets are built once per corpus seed under ``--sets`` and shared by runs of that seed; each
run's scores go to ``<sets>/<run name>/`` and one JSON line per run is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="demo run directories")
    p.add_argument("--n-pairs", type=int, default=700, help="pairs of each benchmark")
    p.add_argument("--sets", type=Path, default=Path("runs/rescore"), help="benchmark sets + scores")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def rescore(run: Path, n_pairs: int, sets: Path) -> dict:
    """Spot-the-word and acceptability (summed log-likelihood) of one demo run on sets of
    ``n_pairs`` built from its corpus with its seed."""
    from spokenlm.data.benchmark_builders import build_benchmark
    from spokenlm.data.spoken_benchmark import build_spot_the_word
    from spokenlm.eval.acceptability import evaluate_acceptability
    from spokenlm.eval.spot_the_word import spot_the_word

    options = json.loads((run / "demo_options.json").read_text())
    seed = int(options.get("seed", 0))
    corpus_sets = sets / f"corpus_s{seed}_u{options.get('n_utterances')}_k{options.get('n_speakers')}"
    stw, acc = corpus_sets / f"spot_the_word_{n_pairs}", corpus_sets / f"acceptability_{n_pairs}"
    if not (stw / "items.jsonl").exists():
        build_spot_the_word(corpus=run / "corpus", output=stw, n_pairs=n_pairs, seed=seed, jobs=1)
    if not (acc / "items.jsonl").exists():
        build_benchmark(generate="acceptability", corpus=run / "corpus", output=acc,
                        n_items=n_pairs, seed=seed, jobs=1)
    out = sets / run.name
    out.mkdir(parents=True, exist_ok=True)
    models = {"tokenizer": run / "tokenizer", "lm": run / "lm" / "final"}
    a = spot_the_word(benchmark=stw, output=out / f"spot_the_word_{n_pairs}.json", **models)
    b = evaluate_acceptability(benchmark=acc, output=out / f"acceptability_{n_pairs}.json",
                               **models)
    return {"run": str(run), "seed": seed, "voice_pairs": options.get("voice_pairs", 0),
            "n_pairs": n_pairs, "spot_the_word": a["accuracy_sum"],
            "acceptability": b["accuracy_sum"]}


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for run in args.runs:
        row = rescore(run, args.n_pairs, args.sets)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
