"""AdamW with decoupled weight decay on matrices only, and warmup + cosine learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                   betas: tuple[float, float], device: torch.device) -> torch.optim.AdamW:
    """AdamW; weights with >= 2 dims decay, norms and biases do not. Fused where supported."""
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights appear once
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if device.type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_cosine(warmup_steps: int, max_steps: int,
                  min_lr_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear warmup to 1 over ``warmup_steps``, then cosine to ``min_lr_ratio``
    at ``max_steps``. Step ``s`` (0-based) is the multiplier used by the (s+1)-th update."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, max_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return factor
