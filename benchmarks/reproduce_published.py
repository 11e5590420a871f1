"""Reproduce published speech-LM numbers: the released tokenizer + LM scored on the released
benchmarks by spokenlm, next to the paper's figures.

Given local paths (or Hugging Face hub ids) of the official tokenizer (mHuBERT-25Hz + km500,
imported with ``spokenlm interop hubert-import`` / ``interop kmeans-import``), an LM (TWIST-350M,
TWIST-1.3B, TWIST-7B or Slam, loaded as released) and the benchmark folders (ZeroSpeech
2021 sBLIMP ``syntactic/dev``, TWIST's spoken StoryCloze sSC and topic StoryCloze tSC,
SALMon), it runs ``spokenlm eval official`` on each (tokenizer -> LM log-likelihood, scored
as slamkit / the ZeroSpeech tools do) and prints one JSON line per benchmark and a table::

    python benchmarks/reproduce_published.py --model TWIST-1.3B \\
        --tokenizer tok-twist --lm slprl/TWIST-1.3B \\
        --sblimp zr2021/syntactic/dev --ssc sSC --tsc tSC --device cuda

Published figures (accuracy %, summed log-likelihood as the papers report; TWIST: Hassid
et al. 2023, Table 2/4; Slam: Maimon et al. 2025, Table 1):

    TWIST-350M  sBLIMP 56.2
    TWIST-1.3B  sBLIMP 57.0  sSC 52.4  tSC 70.6
    TWIST-7B    sBLIMP 59.0  sSC 55.3  tSC 74.1
    Slam        sBLIMP 58.86 sSC 58.04 tSC 82.04

It cannot run without those files (none ship with spokenlm); without any benchmark folder
it says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: model -> benchmark -> published accuracy (%)
PUBLISHED: dict[str, dict[str, float]] = {
    "TWIST-350M": {"sblimp": 56.2},
    "TWIST-1.3B": {"sblimp": 57.0, "ssc": 52.4, "tsc": 70.6},
    "TWIST-7B": {"sblimp": 59.0, "ssc": 55.3, "tsc": 74.1},
    "Slam": {"sblimp": 58.86, "ssc": 58.04, "tsc": 82.04},
}
BENCHMARKS = ("sblimp", "ssc", "tsc", "salmon")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(PUBLISHED), required=True,
                   help="which published row to compare against")
    p.add_argument("--tokenizer", required=True, help="tokenizer dir or hub id (25 Hz "
                   "mHuBERT + km500 for TWIST and Slam)")
    p.add_argument("--lm", required=True, help="LM dir or hub id (released TWIST / Slam)")
    for name in BENCHMARKS:
        p.add_argument(f"--{name}", type=Path, default=None,
                       help=f"{name} benchmark folder as released")
    p.add_argument("--output", type=Path, default=Path("runs/reproduce"),
                   help="folder for the per-benchmark metrics JSON")
    p.add_argument("--device", default="auto", help="cuda for the real models")
    p.add_argument("--batch-tokens", type=int, default=None)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict]:
    from spokenlm.eval.official import evaluate_official

    rows = []
    for name in BENCHMARKS:
        folder = getattr(args, name)
        if folder is None:
            continue
        t0 = time.perf_counter()
        metrics = evaluate_official(benchmark=folder, tokenizer=args.tokenizer, lm=args.lm,
                                    output=args.output / f"{name}.json",
                                    batch_tokens=args.batch_tokens, device=args.device)
        published = PUBLISHED[args.model].get(name)
        row = {"bench": f"reproduce_{name}", "model": args.model,
               "spokenlm_sum": 100 * metrics["accuracy_sum"],
               "spokenlm_mean": 100 * metrics["accuracy_mean"],
               "published": published, "n_items": metrics.get("n_items"),
               "seconds": round(time.perf_counter() - t0, 1)}
        if published is not None:
            row["delta_sum"] = round(row["spokenlm_sum"] - published, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| benchmark | spokenlm (sum) | spokenlm (mean) | published |", "|---|---|---|---|"]
    for r in rows:
        pub = "—" if r["published"] is None else f"{r['published']:.2f}"
        lines.append(f"| {r['bench'].removeprefix('reproduce_')} | {r['spokenlm_sum']:.2f} | "
                     f"{r['spokenlm_mean']:.2f} | {pub} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not any(getattr(args, n) is not None for n in BENCHMARKS):
        print("reproduce_published: pass at least one benchmark folder (--sblimp, --ssc, "
              "--tsc, --salmon); none ships with spokenlm", file=sys.stderr)
        return 2
    rows = run(args)
    print(table(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
