"""Acceptability (sBLIMP) and story cloze (sSC / tSC) with a unit LM.

Both read a benchmark directory (spokenlm layout, or a ZeroSpeech 2021 syntactic folder
for acceptability) and score it with :func:`spokenlm.eval.benchmark.evaluate_benchmark`:
an item is right when the LM gives the right candidate the highest log-likelihood
(given the spoken prompt for cloze), reported with summed and length-normalised
log-likelihood, overall and per subset. Build benchmarks with ``spokenlm data bench build
--generate acceptability|story_cloze``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..common.files import write_json, write_jsonl
from ..common.options import arg, command
from ..common.progress import log
from .benchmark import UnitLMBenchOptions, evaluate_benchmark


@dataclass
class LikelihoodBenchOptions(UnitLMBenchOptions):
    benchmark: Path = arg(positional=True, help="benchmark directory (spokenlm or ZeroSpeech 2021)")
    output: Path = arg(Path("benchmark.json"), help="metrics JSON to write")
    share_prefix: bool = arg(True, help="score the endings of a shared prompt from one run of "
                             "it (KV cache); same scores as --no-share-prefix, less compute")


def _run(opts: LikelihoodBenchOptions, name: str) -> dict:
    metrics, scored = evaluate_benchmark(opts.benchmark, opts.tokenizer, opts.lm,
                                         opts.batch_tokens, output=opts.output,
                                         share_prefix=opts.share_prefix)
    metrics["metric"] = name
    write_json(opts.output, metrics)
    write_jsonl(Path(opts.output).with_suffix(".items.jsonl"), scored)
    log(f"{name}: accuracy {metrics['accuracy_sum']:.3f} (sum), "
        f"{metrics['accuracy_mean']:.3f} (mean) over {metrics['n_items']} items")
    return metrics


@command("eval acceptability", LikelihoodBenchOptions)
def evaluate_acceptability(opts: LikelihoodBenchOptions) -> dict:
    """sBLIMP-style accuracy: does the LM prefer the grammatical sentence of each pair?"""
    return _run(opts, "acceptability")


@command("eval story-cloze", LikelihoodBenchOptions)
def evaluate_story_cloze(opts: LikelihoodBenchOptions) -> dict:
    """Story cloze accuracy: does the LM prefer the real ending given the spoken story?"""
    return _run(opts, "story_cloze")
