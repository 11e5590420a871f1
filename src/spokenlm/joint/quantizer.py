"""A learned Gumbel-softmax codebook quantiser (wav2vec 2.0 / w2v-BERT targets).

``G`` groups of ``V`` entries each; a frame's code is one entry per group, the quantised
vector the concatenation of the chosen entries projected to ``code_dim``. The single
integer code id ``sum_g idx_g * V**g`` is the class w2v-BERT's MLM predicts, so
``n_codes = V ** G`` (keep it small: G = 1 or 2). Hard straight-through Gumbel-softmax
while training, argmax in eval; the diversity loss pushes codebook usage towards uniform.

The logit projection starts as wav2vec 2.0's does (weights N(0, 1), bias 0), so the
initial logits of the layer-normed features have a std of ~sqrt(in_dim) and each frame's
code is a deterministic hash of its features: the hard sample is
``argmax(logits + gumbel noise)`` whatever the temperature, and with PyTorch's default
``nn.Linear`` init (logit std ~0.6, below the noise's 1.3) the codes were noise, the
diversity loss then flattened every frame's softmax (per-frame entropy ln V), and the
contrastive and code-MLM losses stayed at chance. ``Quantized.entropy`` reports the mean
per-frame entropy so that failure is visible in the training log.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    """vectors (B, F, code_dim), codes (B, F) int64 in [0, V**G), diversity loss scalar,
    perplexity (codebook usage over the batch, float), entropy (mean per-frame softmax
    entropy in nats, per group; ln V means the codes are noise)."""

    vectors: torch.Tensor
    codes: torch.Tensor
    diversity: torch.Tensor
    perplexity: float
    entropy: float


class GumbelQuantizer(nn.Module):
    """(B, F, in_dim) features -> :class:`Quantized`."""

    def __init__(self, in_dim: int, entries: int = 64, groups: int = 1, code_dim: int = 64,
                 tau: tuple[float, float, float] = (2.0, 0.5, 0.999995)) -> None:
        super().__init__()
        self.entries, self.groups = entries, groups
        self.norm = nn.LayerNorm(in_dim)
        self.logits = nn.Linear(in_dim, entries * groups)
        nn.init.normal_(self.logits.weight, 0.0, 1.0)
        nn.init.zeros_(self.logits.bias)
        self.codebook = nn.Parameter(torch.empty(groups, entries, code_dim // groups).uniform_())
        self.out = nn.Linear(code_dim - code_dim % groups, code_dim)
        self.tau_start, self.tau_min, self.tau_decay = tau
        self.tau = self.tau_start

    @property
    def n_codes(self) -> int:
        return self.entries ** self.groups

    def set_step(self, step: int, total_steps: int | None = None,
                 anneal_fraction: float = 0.7) -> None:
        """Anneal the Gumbel temperature. Without ``total_steps``: wav2vec 2.0's
        ``max(tau_min, tau_start * decay**step)`` (decay 0.999995 reaches tau_min after
        ~277k steps, ~70 % of its 400k-step runs). With ``total_steps``: the same geometric
        decay scaled to reach tau_min at ``anneal_fraction * total_steps``, so short runs
        anneal too (at a fixed 0.999995 a 400-step run never leaves tau ~2)."""
        if total_steps is None:
            self.tau = max(self.tau_min, self.tau_start * self.tau_decay ** step)
            return
        horizon = max(1.0, anneal_fraction * total_steps)
        ratio = self.tau_min / self.tau_start
        self.tau = max(self.tau_min, self.tau_start * ratio ** (step / horizon))

    def forward(self, x: torch.Tensor) -> Quantized:
        B, T, _ = x.shape
        logits = self.logits(self.norm(x)).float().view(B, T, self.groups, self.entries)
        probs = logits.softmax(-1)
        avg = probs.mean(dim=(0, 1))  # (G, V)
        ppl = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()
        diversity = (self.n_groups_entries - ppl) / self.n_groups_entries
        with torch.no_grad():
            entropy = float(-(probs * torch.log(probs + 1e-7)).sum(-1).mean())
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.tau, hard=True, dim=-1)
        else:
            onehot = F.one_hot(logits.argmax(-1), self.entries).to(logits.dtype)
        idx = onehot.argmax(-1)  # (B, T, G)
        vec = torch.einsum("btgv,gvd->btgd", onehot, self.codebook.float()).reshape(B, T, -1)
        base = self.entries ** torch.arange(self.groups, device=x.device)
        return Quantized(self.out(vec.to(x.dtype)), (idx * base).sum(-1), diversity,
                         float(ppl.detach()), entropy)

    @property
    def n_groups_entries(self) -> int:
        return self.groups * self.entries
