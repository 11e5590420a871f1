"""Optimizers, learning-rate schedules and training budgets, for every trainer.

Budgets (Slam, Maimon et al. 2025: "the best model a budget allows"): a :class:`Budget`
combines ``--max-steps``, ``--max-tokens`` (a fixed number of steps: tokens per step are
fixed) and ``--max-hours`` (wall clock, counted across resumes). Its :meth:`~Budget.progress`
is the larger of the step and time fractions used so far; warmup is linear over the first
steps, then the cosine decays on that progress, so a time-limited run anneals to
``min_lr_ratio`` as its hours run out, whatever its speed. :meth:`~Budget.exhausted` says
which budget ended the run. :func:`lr_factor` builds the multiplier of any
``--lr-schedule`` (cosine, constant, exponential per epoch) from :class:`TrainerOptions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..common.errors import InputError
from .options import TrainerOptions


@dataclass(frozen=True)
class Budget:
    """The limits of one run; ``step_tokens`` = tokens per optimizer step (all processes)."""

    max_steps: int
    step_tokens: int
    max_tokens: int | None = None
    max_hours: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise InputError("--max-steps must be >= 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InputError("--max-tokens must be >= 1")
        if self.max_hours is not None and not self.max_hours > 0:
            raise InputError("--max-hours must be > 0")

    @property
    def steps(self) -> int:
        """The step limit: ``max_steps``, or fewer when ``max_tokens`` is smaller."""
        if self.max_tokens is None:
            return self.max_steps
        return min(self.max_steps, max(1, math.ceil(self.max_tokens / self.step_tokens)))

    @property
    def seconds(self) -> float | None:
        return None if self.max_hours is None else self.max_hours * 3600.0

    def progress(self, step: int, elapsed_s: float) -> float:
        """Fraction of the budget used after ``step`` steps and ``elapsed_s`` seconds (0-1)."""
        p = step / self.steps
        if self.seconds is not None:
            p = max(p, elapsed_s / self.seconds)
        return min(1.0, p)

    def exhausted(self, step: int, elapsed_s: float) -> str | None:
        """``"max_hours"``, ``"max_tokens"``, ``"max_steps"`` or None while the run goes on."""
        if self.seconds is not None and elapsed_s >= self.seconds:
            return "max_hours"
        if step >= self.steps:
            return "max_tokens" if self.steps < self.max_steps else "max_steps"
        return None

    def describe(self) -> str:
        tokens = f" ({self.steps * self.step_tokens:,} tokens)" if self.step_tokens else ""
        parts = [f"{self.steps} steps{tokens}"]
        if self.max_hours is not None:
            parts.append(f"{self.max_hours:g} h")
        return " or ".join(parts)


def budget_schedule(budget: Budget, warmup_steps: int, min_lr_ratio: float,
                    elapsed: Callable[[], float]) -> Callable[[int], float]:
    """LR multiplier for ``LambdaLR``: linear warmup over ``warmup_steps`` (at most a fifth
    of the step budget), then cosine from 1 to ``min_lr_ratio`` over the budget's progress.
    ``elapsed()`` gives the run's wall-clock seconds so far (only read with ``max_hours``).
    Step ``s`` is the multiplier of the (s+1)-th update, as in :func:`warmup_cosine`
    (identical to it when only steps bound the run)."""
    warmup = min(warmup_steps, max(1, budget.steps // 5))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, budget.steps - warmup)
        t = min(1.0, (step - warmup) / span)
        if budget.seconds is not None:
            t = max(t, min(1.0, elapsed() / budget.seconds))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return factor



def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                   betas: tuple[float, float], device: torch.device,
                   kind: str = "adamw") -> torch.optim.Optimizer:
    """AdamW (or SGD with momentum ``betas[0]``); weights with >= 2 dims decay, norms and
    biases do not. Fused where supported."""
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights appear once
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=betas[0])
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


def build_optimizer(model: torch.nn.Module, opts: TrainerOptions,
                    device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of ``opts`` (kind, lr, betas, weight decay) over ``model``."""
    assert opts.lr is not None, "the recipe resolves --lr before training"
    return make_optimizer(model, opts.lr, opts.weight_decay, (opts.beta1, opts.beta2), device,
                          opts.optimizer)


def lr_factor(opts: TrainerOptions, budget: Budget, elapsed: Callable[[], float],
              epoch: Callable[[], int]) -> Callable[[int], float]:
    """LR multiplier for ``LambdaLR`` under ``opts.lr_schedule``: linear warmup, then the
    budget-fitted cosine (:func:`budget_schedule`), 1 (constant) or ``lr_decay ** epoch()``
    (exponential; the epoch of the data the recipe is in, as HiFi-GAN decays per epoch)."""
    if opts.lr_schedule == "cosine":
        return budget_schedule(budget, opts.warmup_steps, opts.min_lr_ratio, elapsed)
    warmup = min(opts.warmup_steps, max(1, budget.steps // 5))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 1.0 if opts.lr_schedule == "constant" else opts.lr_decay ** epoch()

    return factor
