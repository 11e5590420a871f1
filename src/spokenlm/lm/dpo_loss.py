"""The DPO objective for unit LMs (Rafailov et al. 2023), as TRL's ``DPOTrainer`` computes it
with its default sigmoid loss, which Slam trains with:

    loss = -log σ(β [(log π(y_w|x) - log π_ref(y_w|x)) - (log π(y_l|x) - log π_ref(y_l|x))])

``log π(y|x)`` is the *sum* of the log-probabilities of the continuation's tokens given the
prompt (no length normalisation); the prompt's own tokens are context only, never scored.
As in TRL and slamkit, the prompt starts with BOS (for LMs trained with one) and each
continuation ends with EOS, which is scored: preferring a continuation includes preferring
where it ends. Prompts longer than ``max_prompt_tokens`` keep their end; continuations are
cut at the model's context.

The implicit rewards ``β (log π(y|x) - log π_ref(y|x))`` of the chosen and the rejected
continuation, their margin and the share of pairs whose chosen reward is higher (TRL's
``rewards/accuracies``) are what training logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .preference_data import PreferencePair

if TYPE_CHECKING:
    from .model import UnitLM


@dataclass(frozen=True)
class PairTokens:
    """A pair as token ids: ``context`` (BOS + prompt) is fed, ``chosen`` / ``rejected``
    (continuation + EOS) are fed and scored."""

    id: str
    context: list[int]
    chosen: list[int]
    rejected: list[int]


def encode_pair(lm: UnitLM, pair: PreferencePair, *, score_eos: bool = True,
                max_prompt_tokens: int | None = None,
                max_length: int | None = None) -> PairTokens | str:
    """Token ids of ``pair`` for ``lm``, or the reason it cannot be scored (no context for
    the first continuation token: an LM without BOS and an empty prompt; or nothing to score).
    The context keeps its BOS and last ``max_prompt_tokens - 1`` units when longer; each
    continuation is cut to fit ``max_length`` tokens with the context."""
    context = lm.to_tokens(pair.prompt, add_bos=True)
    if max_prompt_tokens is not None and len(context) > max_prompt_tokens:
        head = context[:1] if lm.add_bos else []
        context = head + context[len(context) - max_prompt_tokens + len(head):]
    if not context:
        return "no prompt, and the LM takes no BOS: nothing to condition the continuation on"
    ends = [lm.to_tokens(u, add_bos=False, add_eos=score_eos) for u in (pair.chosen,
                                                                         pair.rejected)]
    if max_length is not None:
        room = max_length - len(context)
        if room < 1:
            return f"the prompt fills the model's context of {max_length} tokens"
        ends = [e[:room] for e in ends]
    if not all(ends):
        return "an empty continuation (and EOS not scored): nothing to compare"
    return PairTokens(pair.id, context, *ends)


def collate(items: Sequence[PairTokens], pad_id: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chosen rows of ``items`` then their rejected rows, right-padded, as TRL's
    concatenated forward. Returns ``ids`` (2B, T), ``attention`` (2B, T) and ``scored``
    (2B, T-1) bool: position t predicts token t+1, scored where that is a continuation token."""
    rows = [(it.context, it.chosen) for it in items] + [(it.context, it.rejected) for it in items]
    width = max(len(c) + len(e) for c, e in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    scored = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    for r, (context, ending) in enumerate(rows):
        n = len(context) + len(ending)
        ids[r, :n] = torch.tensor(context + ending)
        attention[r, :n] = 1
        scored[r, len(context) - 1: n - 1] = True
    return ids, attention, scored


def continuation_logps(model: torch.nn.Module, ids: torch.Tensor, attention: torch.Tensor,
                       scored: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of the scored tokens of each row. (2B, T) -> (2B,) float32"""
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits  # (R, T, V)
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (R, T-1, V)
    target = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (R, T-1)
    return target.masked_fill(~scored, 0.0).sum(-1)


def pair_logps(model: torch.nn.Module, items: Sequence[PairTokens], pad_id: int,
               device: torch.device, amp: torch.dtype | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log π(y_w|x), log π(y_l|x))`` of ``items``, each (B,), one forward of 2B rows."""
    ids, attention, scored = (t.to(device) for t in collate(items, pad_id))
    with autocast(device, amp):
        logps = continuation_logps(model, ids, attention, scored)
    return logps[: len(items)], logps[len(items):]


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean sigmoid DPO loss over B pairs, and the chosen and rejected rewards (B,) (no
    gradient). Inputs: summed continuation log-probs (B,) under the policy and the reference."""
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))  # (B,)
    return losses.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


@torch.inference_mode()
def reference_logps(model: torch.nn.Module, items: Sequence[PairTokens], pad_id: int,
                    device: torch.device, amp: torch.dtype | None = None,
                    batch_size: int = 8) -> torch.Tensor:
    """Continuation log-probs of every pair under the frozen reference, computed once before
    training (TRL's ``precompute_ref_log_probs``). Returns (N, 2): chosen, rejected."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(items), batch_size):
            chosen, rejected = pair_logps(model, items[i: i + batch_size], pad_id, device, amp)
            out.append(torch.stack([chosen, rejected], dim=1).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 2))


def autocast(device: torch.device, amp: torch.dtype | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp)
