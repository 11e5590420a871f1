"""``spokenlm eval salmon``: SALMon (acoustic consistency and semantic-acoustic alignment)
from its released folder, scored as SALMon's ``salmon.py`` and slamkit score it: each part's
accuracy at preferring option 0 of every sample, with summed and length-normalised
log-likelihood. Layout: :mod:`spokenlm.eval.releases.salmon`; scoring:
:mod:`spokenlm.eval.releases.scoring`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..common.options import arg, command
from .official import ReleaseScoringOptions
from .releases.salmon import PARTS, load_salmon
from .releases.scoring import run_release


@dataclass
class SalmonOptions(ReleaseScoringOptions):
    benchmark: Path = arg(positional=True, scanned=True, help="SALMon folder "
                          "(salmon_benchmark/ with its part folders, or one part folder)")
    output: Path = arg(Path("salmon.json"), help="metrics JSON to write (per-sample scores "
                       "go to <output>.items.jsonl)")
    parts: list[str] = arg(["all"], help=f"parts to score: all, or some of {', '.join(PARTS)}")


@command("eval salmon", SalmonOptions)
def evaluate_salmon(opts: SalmonOptions) -> dict:
    """SALMon accuracy per part, scored as SALMon's salmon.py and slamkit score it.

    Parts: speaker, gender, sentiment, background (in-domain, random), room consistency;
    sentiment and background alignment."""
    release = load_salmon(opts.benchmark, opts.parts)
    return run_release(release, tokenizer=opts.tokenizer, lm=opts.lm, output=opts.output,
                       eos=opts.eos, batch_tokens=opts.batch_tokens, device=opts.device)
