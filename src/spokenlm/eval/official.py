"""``spokenlm eval official``: a released benchmark (sLM21 lexical / syntactic, ProsAudit,
TWIST's sSC / tSC, SALMon) from its own folder, scored and reported as its reference tool
does; see :mod:`spokenlm.eval.releases` for the layouts and
:mod:`spokenlm.eval.releases.scoring` for the scoring.

The metrics JSON holds the pair accuracy with summed and length-normalised log-likelihood
(``accuracy_sum`` / ``accuracy_mean``, per ``subsets``: slamkit's number for sBLIMP, sSC,
tSC and SALMon) and ``official``: the reference tool's report (ZeroSpeech's
``lexical_all`` / ``in_vocab`` / ``by_frequency`` / ``by_length``, ``by_type``; SALMon's
``by_part``) for both scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..common.options import arg, command
from .releases import require_release
from .releases.scoring import run_release

BENCHMARK_HELP = ("a released benchmark folder: sLM21 lexical/dev or syntactic/dev (wavs + "
                  "gold.csv), a ProsAudit folder, TWIST's sSC or tSC, SALMon")
EOS_HELP = ("score the EOS after the units, as slamkit does (--no-eos: the units only; "
            "default: EOS unless the LM is a released TWIST LM, which has none)")


@dataclass(kw_only=True)
class ReleaseScoringOptions:
    """The unit LM that scores a released benchmark, and how (``eval official``, ``eval
    salmon``, ``eval zerospeech-submission``)."""

    tokenizer: Path = arg(help="tokenizer directory (or hub id)")
    lm: Path = arg(help="unit LM directory (or hub id)")
    eos: bool | None = arg(None, help=EOS_HELP)
    batch_tokens: int | None = arg(None, help="token budget per LM forward (default: 2048 "
                                   "on CPU, 16384 on GPU)")
    device: str = arg("auto", help="where the tokenizer and LM run: auto, cpu, cuda")


@dataclass
class OfficialOptions(ReleaseScoringOptions):
    benchmark: Path = arg(positional=True, scanned=True, help=BENCHMARK_HELP)
    output: Path = arg(Path("official.json"), help="metrics JSON to write (per-item scores "
                       "go to <output>.items.jsonl)")


@command("eval official", OfficialOptions)
def evaluate_official(opts: OfficialOptions) -> dict:
    """Score a released benchmark folder (sLM21, ProsAudit, sSC/tSC, SALMon) the reference way.

    Pairs are decided and reported as the ZeroSpeech 2021 tools (sLM21, ProsAudit) or
    slamkit (sSC / tSC / SALMon) do, with summed and length-normalised log-likelihood."""
    return run_release(require_release(opts.benchmark), tokenizer=opts.tokenizer, lm=opts.lm,
                       output=opts.output, eos=opts.eos, batch_tokens=opts.batch_tokens,
                       device=opts.device)
