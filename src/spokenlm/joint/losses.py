"""Losses of the joint objectives, each on plain tensors so it can be tested on tiny inputs.

- :func:`masked_ce`: cross-entropy on selected positions (UMLM, text MLM, TLM, code MLM).
- :func:`ctc_loss`: CTC over characters (SpeechLM's UCTC), blank = 0.
- :func:`random_swap`: SpeechLM's random swapping of unmasked speech frames with unit
  embeddings.
- :func:`contrastive_loss`: wav2vec 2.0 / w2v-BERT contrastive loss against quantised
  targets with distractors from other masked frames of the same utterance.
- :func:`stm_negatives`: SLAM's speech-text matching negatives (another utterance's text in
  the batch, never the true transcript).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def masked_ce(logits: torch.Tensor, labels: torch.Tensor, select: torch.Tensor
              ) -> tuple[torch.Tensor, float]:
    """Mean cross-entropy over positions where ``select`` is True and ``labels >= 0``.

    Args:
        logits: (B, L, K). labels: (B, L) int64 (-100 or any negative: ignore).
        select: (B, L) bool.
    Returns:
        (loss scalar, accuracy on those positions as a float, NaN when none).
    """
    keep = select & (labels >= 0)
    if not bool(keep.any()):
        return logits.sum() * 0.0, float("nan")
    lg, lab = logits[keep].float(), labels[keep]
    loss = F.cross_entropy(lg, lab)
    return loss, float((lg.argmax(-1) == lab).float().mean())


def ctc_loss(log_probs: torch.Tensor, lengths: torch.Tensor,
             targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """CTC (blank 0), mean over target tokens: log_probs (B, L, V), lengths (B,), targets
    (B, N_b) id lists (ids >= 1)."""
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
    tlen = torch.tensor([len(s) for s in targets], dtype=torch.long)
    return F.ctc_loss(log_probs.float().transpose(0, 1), flat, lengths.cpu(), tlen, blank=0,
                      reduction="mean", zero_infinity=True)


def random_swap(hidden: torch.Tensor, unit_emb: torch.Tensor, mask: torch.Tensor,
                valid: torch.Tensor, prob: float, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each unmasked valid frame, with probability ``prob``, by its unit embedding.

    Args:
        hidden: (B, F, H) speech-transformer output. unit_emb: (B, F, H) embedding of each
        frame's own unit. mask: (B, F) bool masked frames (never swapped). valid: (B, F)
        bool frames that have a unit label.
    Returns:
        (swapped hidden (B, F, H), swapped positions (B, F) bool).
    """
    if prob <= 0:
        return hidden, torch.zeros_like(mask)
    r = torch.rand(mask.shape, generator=generator).to(mask.device)
    swap = (r < prob) & ~mask & valid
    return torch.where(swap[..., None], unit_emb.to(hidden.dtype), hidden), swap


def contrastive_loss(context: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                     n_negatives: int = 20, temperature: float = 0.1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """InfoNCE of masked frames: ``cos(c_t, q_t)`` against ``n_negatives`` distractors
    ``q_t'`` drawn from other masked frames of the same utterance (wav2vec 2.0).
    Distractors equal to the positive are ignored.

    Args:
        context: (B, F, D) projected context vectors. targets: (B, F, D) quantised targets.
        mask: (B, F) bool masked frames.
    """
    losses = []
    for b in range(context.shape[0]):
        idx = torch.nonzero(mask[b]).squeeze(1)  # (M,)
        m = idx.numel()
        if m < 2:
            continue
        c, q = context[b, idx].float(), targets[b, idx].float()  # (M, D)
        k = min(n_negatives, m - 1)
        # distractor j of frame i: a uniformly drawn other masked frame (never i itself)
        draw = torch.randint(0, m - 1, (m, k), generator=generator).to(idx.device)
        draw = draw + (draw >= torch.arange(m, device=idx.device)[:, None]).long()
        cands = torch.cat([q[:, None], q[draw]], dim=1)  # (M, 1 + k, D)
        logits = F.cosine_similarity(c[:, None], cands, dim=-1) / temperature  # (M, 1 + k)
        same = (cands[:, 1:] == q[:, None]).all(-1)  # distractor identical to the positive
        logits[:, 1:] = logits[:, 1:].masked_fill(same, float("-inf"))
        losses.append(F.cross_entropy(logits, torch.zeros(m, dtype=torch.long,
                                                          device=idx.device)))
    if not losses:
        return context.sum() * 0.0
    return torch.stack(losses).mean()


def stm_negatives(texts: Sequence[str], generator: torch.Generator | None = None
                  ) -> list[int]:
    """For each utterance ``i``, the index of another utterance whose text differs from
    ``texts[i]`` (drawn at random), or -1 when every text in the batch is the same."""
    n = len(texts)
    out = []
    for i in range(n):
        cands = [j for j in range(n) if texts[j] != texts[i]]
        if not cands:
            out.append(-1)
            continue
        out.append(cands[int(torch.randint(len(cands), (1,), generator=generator))])
    return out
