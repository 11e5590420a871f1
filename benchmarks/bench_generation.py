"""Generation speed: unit continuations of many prompts, spokenlm's batched KV-cache sampler
against ``transformers`` ``generate`` one prompt at a time, same model, same process.

- spokenlm: ``UnitLM.generate`` (``lm/sampling.py``): prompts left-padded into one batch
  (position ids skip the pads), the prompt run once, then one token per step with the KV
  cache; only unit tokens can be drawn.
- baseline: the GSLM / textlesslib / slamkit continuation loop: for each prompt,
  ``model.generate(input_ids=[BOS u..], max_new_tokens=N)`` (HF's own KV cache), one prompt
  at a time, non-unit tokens suppressed (``suppress_tokens``).

Both decode greedily (temperature 0) and never stop early (EOS excluded on both sides), so
they do the same work and their outputs can be compared token for token; sampling costs
the same per step. Agreement: share of prompts whose continuation is identical, and share
of tokens before the first divergence (greedy decoding amplifies float near-ties of the
padded batch into different continuations; that is expected, not an error).

Bar (issue 6): >= 3x for 64 prompts x 150 new tokens.

    python benchmarks/bench_generation.py [--full] [--device cuda] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, setup, timed  # noqa: E402


@torch.inference_mode()
def hf_generate_one_by_one(lm, prompts, max_new_tokens: int) -> list[list[int]]:
    model, device = lm.model.eval(), lm.device
    suppress = [lm.bos_id, lm.eos_id, lm.pad_id]
    out = []
    for p in prompts:
        ids = torch.tensor([lm.to_tokens(p, add_bos=True)], device=device)
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                             do_sample=False, suppress_tokens=suppress, pad_token_id=lm.pad_id,
                             eos_token_id=lm.eos_id, top_k=None, top_p=None, temperature=None)
        out.append(lm.to_units(gen[0, ids.shape[1]:].tolist()))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--prompts", type=int, default=None)
    p.add_argument("--new-tokens", type=int, default=None)
    p.add_argument("--prompt-lengths", type=int, nargs=2, default=(50, 150))
    p.add_argument("--size", default="small", help="spokenlm LM preset")
    p.add_argument("--n-units", type=int, default=500)
    args = p.parse_args(argv)
    device = setup(args)
    n_prompts = args.prompts or (64 if args.full else 16)
    new = args.new_tokens or (150 if args.full else 50)

    from spokenlm.lm.config import LMConfig
    from spokenlm.lm.model import UnitLM
    from spokenlm.lm.sampling import SamplingOptions

    lm = UnitLM.build(args.n_units, LMConfig.named(args.size), seed=args.seed).to(device)
    lm.model.eval()
    rng = np.random.default_rng(args.seed)
    prompts = [rng.integers(0, args.n_units, size=int(rng.integers(*args.prompt_lengths)))
               .tolist() for _ in range(n_prompts)]
    log(f"{n_prompts} prompts x {new} new tokens, model {args.size}")

    greedy = SamplingOptions(max_new_tokens=new, temperature=0, stop_at_eos=False)
    lm.generate(prompts[:2], greedy.replace(max_new_tokens=4))  # warm up
    hf_generate_one_by_one(lm, prompts[:1], 4)
    ours, t_ours = timed(lambda: lm.generate(prompts, greedy, batch_size=64), device)
    log(f"spokenlm {t_ours:.2f} s; baseline: HF generate one prompt at a time")
    base, t_base = timed(lambda: hf_generate_one_by_one(lm, prompts, new), device)
    log(f"  {t_base:.2f} s")

    identical = float(np.mean([a == b for a, b in zip(ours, base)]))
    prefix = []
    for a, b in zip(ours, base):
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        prefix.append(n / new)
    first_token = float(np.mean([bool(a) and bool(b) and a[0] == b[0] for a, b in zip(ours, base)]))
    ratio = t_base / t_ours
    n_tok = n_prompts * new
    return emit(
        "generation",
        spokenlm={"seconds": t_ours, "new_tokens_per_s": n_tok / t_ours, "batch_size": 64},
        baseline={"recipe": "HF generate, one prompt at a time", "seconds": t_base,
                  "new_tokens_per_s": n_tok / t_base},
        ratio=ratio, outputs_agree=bool(first_token == 1.0),
        agreement={"identical_continuations": identical,
                   "mean_share_before_first_divergence": float(np.mean(prefix)),
                   "first_token_equal": first_token},
        bar=">=3x", meets_bar=bool(ratio >= 3), device=device,
        size={"prompts": n_prompts, "new_tokens": new, "prompt_lengths": list(args.prompt_lengths),
              "model": args.size, "n_units": args.n_units, "decoding": "greedy",
              "full": args.full})


if __name__ == "__main__":
    main()
