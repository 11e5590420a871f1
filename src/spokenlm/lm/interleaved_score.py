"""Scoring and sampling whole token sequences of an interleaved LM (text, units, markers).

:func:`~spokenlm.lm.score.log_likelihood` and :func:`~spokenlm.lm.sampling.generate` speak
units; cross-modal evaluation needs sequences that mix text ids, units and markers, scored
on their last tokens only (the ending, not the prompt), and continuations restricted to one
modality (SpiritLM's generation bans the other modality's tokens). Same batching as the
unit scorer: length-sorted right-padded batches within a token budget.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .sampling import SamplingOptions, next_token, repetition_penalty, sampling_options
from .score import default_batch_tokens, length_batches


@torch.inference_mode()
def score_suffixes(model: torch.nn.Module, seqs: Sequence[Sequence[int]],
                   n_scored: Sequence[int], pad_id: int,
                   batch_tokens: int | None = None) -> list[np.ndarray]:
    """Log-probabilities (float64 (n,)) of the last ``n_scored[i]`` tokens of each token
    sequence ``seqs[i]`` given everything before them; input order kept."""
    device = next(model.parameters()).device
    budget = batch_tokens or default_batch_tokens(device)
    out: list[np.ndarray | None] = [None] * len(seqs)
    was_training = model.training
    model.eval()
    try:
        for batch in length_batches([len(s) for s in seqs], budget):
            width = max(len(seqs[i]) for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(seqs[i])] = torch.tensor(list(seqs[i]))
                mask[row, : len(seqs[i])] = 1
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
            target = logp.gather(-1, ids[:, 1:, None]).squeeze(-1).double().cpu().numpy()
            for row, i in enumerate(batch):
                n, k = len(seqs[i]), int(n_scored[i])
                if not 0 <= k < n:
                    raise ValueError(f"sequence {i}: {k} scored tokens of {n} (the first "
                                     "token is never predicted)")
                out[i] = target[row, n - 1 - k: n - 1]
    finally:
        model.train(was_training)
    return [np.zeros(0) if r is None else r for r in out]


@torch.inference_mode()
def sample_restricted(model: torch.nn.Module, prompt: Sequence[int], allowed: Sequence[int],
                      eos_id: int, sampling: SamplingOptions | None = None, *,
                      generator: torch.Generator | None = None, **overrides: Any) -> list[int]:
    """Continue one token prompt drawing only ``allowed`` ids or ``eos_id`` (which ends the
    continuation and is not returned; never drawn without ``stop_at_eos``); KV cache, one
    token per step. ``sampling`` (default :class:`SamplingOptions`, loose keywords such as
    ``temperature=0`` replace its fields) says how; the draws come from ``generator``, which
    a caller continuing many prompts seeds once with ``sampling.seed`` (without one, a
    generator seeded with it here)."""
    opts = sampling_options(sampling, **overrides)
    device = next(model.parameters()).device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(opts.seed)
    vocab = model.get_output_embeddings().weight.shape[0]
    ok = torch.zeros(vocab, dtype=torch.bool, device=device)
    ok[torch.as_tensor(list(allowed), dtype=torch.long, device=device)] = True
    if opts.stop_at_eos:
        ok[eos_id] = True
    limit = getattr(model.config, "max_position_embeddings", None)
    prompt = list(prompt)
    if limit and len(prompt) + opts.max_new_tokens > limit:
        prompt = prompt[:1] + prompt[len(prompt) + opts.max_new_tokens - limit + 1:]
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    seen = torch.zeros((1, vocab), dtype=torch.bool, device=device)  # (1, V)
    seen[0, ids[0]] = True
    was_training = model.training
    model.eval()
    new: list[int] = []
    past = None
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters \
        else "past_key_values"  # transformers 5.x renamed it
    try:
        for _ in range(opts.max_new_tokens):
            out = model(input_ids=ids, use_cache=True, **{cache_arg: past})
            past = out.get("cache") if hasattr(out, "get") else None
            past = out.past_key_values if past is None else past
            logits = repetition_penalty(out.logits[:, -1].float(), seen,
                                        opts.repetition_penalty)
            logits = logits.masked_fill(~ok, float("-inf"))  # (1, V)
            token = int(next_token(logits, opts.temperature, opts.top_k, opts.top_p,
                                   generator)[0])
            if token == eos_id:
                break
            new.append(token)
            seen[0, token] = True
            ids = torch.tensor([[token]], dtype=torch.long, device=device)
    finally:
        model.train(was_training)
    return new
