"""Spot-the-word (sWUGGY): does the LM give a real word higher likelihood than a
pseudo-word with the same phoneme count and phonotactics, both spoken by the same voice?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..common.files import write_json, write_jsonl
from ..common.options import arg, command
from ..common.progress import log
from .benchmark import UnitLMBenchOptions, evaluate_benchmark


@dataclass
class SpotTheWordOptions(UnitLMBenchOptions):
    benchmark: Path = arg(positional=True, help="spokenlm benchmark directory of word/pseudo-word pairs")
    output: Path = arg(Path("spot_the_word.json"), help="metrics JSON to write")


@command("eval spot-the-word", SpotTheWordOptions)
def spot_the_word(opts: SpotTheWordOptions) -> dict:
    """Spot-the-word accuracy of a unit LM on spoken word/pseudo-word pairs."""
    metrics, scored = evaluate_benchmark(opts.benchmark, opts.tokenizer, opts.lm, opts.batch_tokens,
                                         output=opts.output)
    metrics["metric"] = "spot_the_word"
    write_json(opts.output, metrics)
    write_jsonl(Path(opts.output).with_suffix(".items.jsonl"), scored)
    log(f"spot-the-word: accuracy {metrics['accuracy_sum']:.3f} (sum), "
        f"{metrics['accuracy_mean']:.3f} (mean) over {metrics['n_items']} pairs")
    return metrics
