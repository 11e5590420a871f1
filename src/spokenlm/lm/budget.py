"""Training budgets: steps, tokens or wall-clock hours, with the schedule fitted to them.

Slam (Maimon et al. 2025) trains "the best model a budget allows": the learning-rate
schedule must reach its end exactly when the budget does. A :class:`Budget` combines
``--max-steps``, ``--max-tokens`` (a fixed number of steps: tokens per step are fixed) and
``--max-hours`` (wall clock, counted across resumes). Its :meth:`progress` is the larger of
the step and time fractions used so far; warmup is linear over the first steps, then the
cosine decays on that progress, so a time-limited run anneals to ``min_lr_ratio`` as its
hours run out, whatever its speed. :meth:`exhausted` says which budget ended the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..common.errors import InputError


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
        parts = [f"{self.steps} steps ({self.steps * self.step_tokens:,} tokens)"]
        if self.max_hours is not None:
            parts.append(f"{self.max_hours:g} h")
        return " or ".join(parts)


def budget_schedule(budget: Budget, warmup_steps: int, min_lr_ratio: float,
                    elapsed: Callable[[], float]) -> Callable[[int], float]:
    """LR multiplier for ``LambdaLR``: linear warmup over ``warmup_steps`` (at most a fifth
    of the step budget), then cosine from 1 to ``min_lr_ratio`` over the budget's progress.
    ``elapsed()`` gives the run's wall-clock seconds so far (only read with ``max_hours``).
    Step ``s`` is the multiplier of the (s+1)-th update, as in :func:`.optim.warmup_cosine`
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
