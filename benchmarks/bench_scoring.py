"""Scoring speed: sum log-likelihood of spoken minimal pairs (sWUGGY / sBLIMP / StoryCloze
style), spokenlm's batched scorer against one forward per item, same model, same process.

- spokenlm: ``UnitLM.log_likelihood`` (``lm/score.py``): sequences sorted by length and
  packed into right-padded batches of at most ``batch_tokens`` tokens, one forward each.
- baseline: the per-item loop of the public evaluation scripts (GSLM / textlesslib
  ``compute_lm_scores``-style, slamkit's per-sample scoring): for each item, ``BOS u..``
  through the Hugging Face model alone (batch of one, no padding), ``log_softmax``, gather
  the next-token log-probs, sum.

Model: a randomly initialised spokenlm LLaMA (``--size``, 500 units); items: random unit
sequences of 20-200 units (pairs share nothing; timing does not depend on the weights).
Agreement: relative difference of the sums, and whether every pair is decided the same way.
Profile: the model FLOPs (counted on the meta device) over each side's seconds, as a
fraction of this machine's measured fp32 matmul peak; ``achievable_ratio_at_peak`` is the
largest ratio any scorer could reach against the baseline at that peak (on a CPU the batch-1
forward is already compute-bound, so this ceiling is low; on a GPU it is launch-bound).

Bar (issue 6): >= 10x on 10,000 pairs.

    python benchmarks/bench_scoring.py [--full] [--device cuda] [--threads N]
"""

from __future__ import annotations

import copy
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, peak_matmul_flops, setup, timed  # noqa: E402


def forward_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    """FLOPs of one batch-1 forward per sequence of ``lengths`` tokens, counted on the meta
    device (shapes only); the batched forward does the same work plus its padding."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta")
    total = 0.0
    for n, times in Counter(lengths).items():
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            meta(input_ids=torch.zeros(1, n, dtype=torch.long, device="meta"))
        total += fc.get_total_flops() * times
    return total


@torch.inference_mode()
def per_item_scores(lm, seqs) -> list[float]:
    """One forward per item, as the reference scoring loops do."""
    model, device = lm.model.eval(), lm.device
    out = []
    for s in seqs:
        ids = torch.tensor([[lm.bos_id, *(int(u) + lm.unit_offset for u in s)]], device=device)
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        out.append(float(logp.gather(-1, ids[0, 1:, None]).sum()))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--pairs", type=int, default=None)
    p.add_argument("--size", default="small", help="spokenlm LM preset")
    p.add_argument("--n-units", type=int, default=500)
    p.add_argument("--lengths", type=int, nargs=2, default=(20, 200), metavar=("MIN", "MAX"))
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="default: spokenlm's for the device (2048 CPU, 16384 GPU)")
    args = p.parse_args(argv)
    device = setup(args)
    n_pairs = args.pairs or (10_000 if args.full else 300)
    from spokenlm.lm.score import default_batch_tokens
    if args.batch_tokens is None:
        args.batch_tokens = default_batch_tokens(device)

    from spokenlm.lm.config import LMConfig
    from spokenlm.lm.model import UnitLM

    lm = UnitLM.build(args.n_units, LMConfig.named(args.size), seed=args.seed).to(device)
    lm.model.eval()
    rng = np.random.default_rng(args.seed)
    seqs = [rng.integers(0, args.n_units, size=int(rng.integers(*args.lengths))).tolist()
            for _ in range(2 * n_pairs)]
    n_tokens = sum(len(s) + 1 for s in seqs)
    log(f"{n_pairs} pairs, {n_tokens} tokens, model {args.size}")

    lm.log_likelihood(seqs[:8], batch_tokens=args.batch_tokens)  # warm up
    per_item_scores(lm, seqs[:8])
    ours, t_ours = timed(lambda: lm.log_likelihood(seqs, batch_tokens=args.batch_tokens),
                         device)
    log(f"spokenlm {t_ours:.2f} s; baseline: one forward per item")
    base, t_base = timed(lambda: per_item_scores(lm, seqs), device)
    log(f"  {t_base:.2f} s")

    flops = forward_flops(lm.model, [len(s) + 1 for s in seqs])
    peak = peak_matmul_flops(device)
    a = np.array([r.sum for r in ours])
    b = np.array(base)
    rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-9)))
    same_decisions = float(np.mean((a[0::2] > a[1::2]) == (b[0::2] > b[1::2])))
    ratio = t_base / t_ours
    agree = bool(same_decisions == 1.0 and rel < 1e-4)
    return emit(
        "scoring",
        spokenlm={"seconds": t_ours, "pairs_per_s": n_pairs / t_ours,
                  "tokens_per_s": n_tokens / t_ours, "batch_tokens": args.batch_tokens},
        baseline={"recipe": "one forward per item", "seconds": t_base,
                  "pairs_per_s": n_pairs / t_base, "tokens_per_s": n_tokens / t_base},
        ratio=ratio, outputs_agree=agree,
        agreement={"max_rel_diff_of_sums": rel, "pairs_decided_the_same": same_decisions},
        bar=">=10x, same decisions", meets_bar=bool(ratio >= 10 and agree), device=device,
        profile={"model_gflop": flops / 1e9, "peak_fp32_matmul_gflops": peak / 1e9,
                 "spokenlm_fraction_of_peak": flops / t_ours / peak,
                 "baseline_fraction_of_peak": flops / t_base / peak,
                 "achievable_ratio_at_peak": peak / (flops / t_base)},
        size={"pairs": n_pairs, "sequences": 2 * n_pairs, "tokens": n_tokens,
              "lengths": list(args.lengths), "model": args.size, "n_units": args.n_units,
              "full": args.full})


if __name__ == "__main__":
    main()
