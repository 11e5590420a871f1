"""Unit continuation sampling with the HF KV cache, in our own loop.

Prompts are left-padded into one batch (attention mask + position ids that skip the pads),
the prompt is run once, then one token per step is fed with ``past_key_values``. Only unit
tokens (and EOS, when ``stop_at_eos``) can be drawn; BOS/PAD never are.

A repetition penalty (Keskar et al. 2019, CTRL; the definition of Hugging Face's
``RepetitionPenaltyLogitsProcessor``) can discourage units already in the prompt or the
continuation; Slam generates with 1.1 after DPO, which makes continuations repetitive.

Every setting of a draw is one frozen :class:`SamplingOptions`, its defaults written here
only (the slamkit/TWIST convention for generation metrics: temperature 0.8, top-k 25, 150 new
units); commands nest it in their options (``spokenlm generate``: ``--temperature`` ...) and
pass it whole to :func:`generate` / :meth:`UnitLM.generate
<spokenlm.lm.model.UnitLM.generate>` and :func:`~spokenlm.lm.interleaved_score.sample_restricted`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..common.errors import InputError
from ..common.options import arg

if TYPE_CHECKING:
    from .model import UnitLM


@dataclass(frozen=True)
class SamplingOptions:
    """How continuations are drawn. Invalid values raise :class:`InputError` naming the flag."""

    max_new_tokens: int = arg(150, help="units to generate per continuation")
    """Most tokens drawn per continuation (fewer when it ends at EOS); >= 0."""
    temperature: float = arg(0.8, help="sampling temperature (0 = greedy)")
    """Logits are divided by it before the softmax; 0 = greedy (argmax); >= 0."""
    top_k: int = arg(25, help="sample among the k most likely units (0 = off)")
    """Draw among the ``top_k`` most likely allowed tokens only; 0 = all; >= 0."""
    top_p: float = arg(1.0, help="nucleus sampling mass (1.0 = off)")
    """Draw within the smallest set of tokens whose probability reaches it; in (0, 1]."""
    repetition_penalty: float = arg(1.0, help="divide the logits of units already in the "
                                    "prompt or continuation by this (multiply when negative), "
                                    "as CTRL / Hugging Face do; 1.0 = off; Slam uses 1.1 after "
                                    "DPO")
    """See :func:`repetition_penalty`: over the prompt as fed and the tokens drawn so far;
    1.0 = off; > 0."""
    stop_at_eos: bool = arg(True, help="end a continuation when the LM ends the utterance; "
                                       "--no-stop-at-eos always generates max_new_tokens")
    """EOS may be drawn and ends the continuation (it is not returned); False: EOS is never
    drawn, so every continuation has ``max_new_tokens`` tokens."""
    seed: int = arg(0, help="sampling seed")
    """Seed of the ``torch.Generator`` every draw of one call comes from."""

    def __post_init__(self) -> None:
        checks = (("max_new_tokens", self.max_new_tokens >= 0, "must be >= 0"),
                  ("temperature", self.temperature >= 0, "must be >= 0 (0 = greedy)"),
                  ("top_k", self.top_k >= 0, "must be >= 0 (0 = off)"),
                  ("top_p", 0 < self.top_p <= 1, "must be in (0, 1] (1.0 = off)"),
                  ("repetition_penalty", self.repetition_penalty > 0,
                   "must be > 0 (1.0 = off, 1.1 as Slam)"))
        for name, ok, rule in checks:
            if not ok:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: {rule}")

    def replace(self, **changes: Any) -> SamplingOptions:
        return dataclasses.replace(self, **changes)


def sampling_options(sampling: SamplingOptions | None = None, /,
                     **overrides: Any) -> SamplingOptions:
    """``sampling`` (default :class:`SamplingOptions`) with the fields named in ``overrides``
    replaced: the loose keywords (``temperature=0``) older callers pass still work."""
    if sampling is not None and not isinstance(sampling, SamplingOptions):
        raise TypeError(f"sampling must be a SamplingOptions, not {type(sampling).__name__}; "
                        "pass loose settings by keyword (max_new_tokens=...)")
    names = {f.name for f in dataclasses.fields(SamplingOptions)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown sampling settings {unknown}; SamplingOptions has "
                        f"{sorted(names)}")
    base = sampling if sampling is not None else SamplingOptions()
    return base.replace(**overrides) if overrides else base


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top ``top_k`` (0 = all) and outside the smallest
    set whose probability reaches ``top_p``; the best token always survives. (B, V) -> (B, V)"""
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly better tokens
        drop_sorted = before >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide the logits of ``seen`` tokens by ``penalty`` where positive, multiply them where
    negative (so ``penalty > 1`` always lowers them); 1.0 returns ``logits`` itself.
    logits (B, V), seen (B, V) bool -> (B, V)"""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def next_token(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
               generator: torch.Generator | None) -> torch.Tensor:
    """Greedy when ``temperature <= 0``, else sample from filtered softmax. (B, V) -> (B,)"""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def allowed_mask(lm: UnitLM, vocab: int, stop_at_eos: bool, device: torch.device) -> torch.Tensor:
    """(V,) bool: the unit ids, plus EOS when it may end a continuation."""
    allowed = torch.zeros(vocab, dtype=torch.bool, device=device)
    allowed[lm.unit_offset: lm.unit_offset + lm.n_units] = True
    if stop_at_eos:
        allowed[lm.eos_id] = True
    return allowed


@torch.inference_mode()
def generate(lm: UnitLM, prompts: Sequence[Sequence[int]], sampling: SamplingOptions | None = None,
             *, batch_size: int = 64, **overrides: Any) -> list[list[int]]:
    """New units for each prompt (unit ids, offset removed), in prompt order, drawn as
    ``sampling`` says (default :class:`SamplingOptions`; loose keywords such as
    ``temperature=0`` replace its fields). ``batch_size`` prompts are decoded together; the
    repetition penalty sees the prompt as fed, after any cut to the model's context."""
    opts = sampling_options(sampling, **overrides)
    max_new_tokens = opts.max_new_tokens
    device = lm.device
    generator = torch.Generator(device=device)
    generator.manual_seed(opts.seed)
    limit = getattr(lm.model.config, "max_position_embeddings", None)
    tokens = []
    for p in prompts:
        t = lm.to_tokens(p, add_bos=True)
        if limit and len(t) + max_new_tokens > limit:  # keep the most recent context
            head = [lm.bos_id] if lm.add_bos else []
            t = head + t[len(t) + max_new_tokens - limit + len(head):]
        tokens.append(t)
    out: list[list[int]] = []
    was_training = lm.model.training
    lm.model.eval()
    try:
        for start in range(0, len(tokens), batch_size):
            out += _generate_batch(lm, tokens[start: start + batch_size], opts, generator)
    finally:
        lm.model.train(was_training)
    return out


def _generate_batch(lm: UnitLM, tokens: list[list[int]], opts: SamplingOptions,
                    generator: torch.Generator) -> list[list[int]]:
    """One left-padded batch of token prompts -> the new units of each."""
    device, model, penalty = lm.device, lm.model, opts.repetition_penalty
    b, width = len(tokens), max(len(t) for t in tokens)
    ids = torch.full((b, width), lm.pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for row, t in enumerate(tokens):  # left padding: the last column is every prompt's end
        ids[row, width - len(t):] = torch.tensor(t)
        mask[row, width - len(t):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T): pads do not shift positions
    new = torch.empty((b, 0), dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    past, allowed, seen = None, None, None
    for _ in range(opts.max_new_tokens):
        outputs = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        past_key_values=past, use_cache=True)
        past = outputs.past_key_values
        logits = outputs.logits[:, -1].float()  # (B, V)
        if allowed is None:
            allowed = allowed_mask(lm, logits.shape[-1], opts.stop_at_eos, device)
        if penalty != 1.0:
            if seen is None:  # (B, V): the prompt's tokens, pads left out
                seen = torch.zeros(logits.shape, dtype=torch.long, device=device)
                seen = seen.scatter_add_(1, ids, mask) > 0
            logits = repetition_penalty(logits, seen, penalty)
        logits = logits.masked_fill(~allowed, float("-inf"))
        token = next_token(logits, opts.temperature, opts.top_k, opts.top_p, generator)  # (B,)
        token = torch.where(done, torch.full_like(token, lm.pad_id), token)
        if seen is not None:
            seen[torch.arange(b, device=device), token] = True
        new = torch.cat([new, token[:, None]], dim=1)
        done |= token == lm.eos_id
        if bool(done.all()):
            break
        ids = token[:, None]  # (B, 1)
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
    return [lm.to_units(_until_eos(row, lm.eos_id)) for row in new.tolist()]


def _until_eos(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row
