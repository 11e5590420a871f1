"""An exponential moving average of a model's weights (Polyak averaging), ``--ema DECAY``.

After every optimizer step ``avg <- decay * avg + (1 - decay) * w`` for each floating
parameter ``w`` (kept in float32 whatever the model's dtype). The loop evaluates with the
average swapped in and hands the average to ``final/``; checkpoints keep both the trained
weights and the average, so a resumed run ends where an uninterrupted one would. With
decay ``d`` the average spans about ``1 / (1 - d)`` steps (0.99: the last ~100).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..common.errors import ArtifactError


class WeightAverage:
    """The running average of ``model``'s floating parameters, started at their values."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay {decay} not in (0, 1)")
        self.decay = decay
        self.params = {n: p for n, p in model.named_parameters() if p.is_floating_point()}
        self.avg = {n: p.detach().float().clone() for n, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights in (call after each optimizer step)."""
        for n, p in self.params.items():
            self.avg[n].lerp_(p.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Overwrite the model's weights with the average (cast to each weight's dtype)."""
        for n, p in self.params.items():
            p.copy_(self.avg[n])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The average in the model inside the block, the trained weights back after it."""
        saved = {n: p.detach().clone() for n, p in self.params.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.params.items():
                    p.copy_(saved[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.avg

    def load_state_dict(self, state: dict[str, torch.Tensor], where: str) -> None:
        if set(state) != set(self.avg) or any(state[n].shape != a.shape
                                              for n, a in self.avg.items()):
            raise ArtifactError(f"{where}: its weight average does not fit this model; "
                                f"resume with the options it was trained with")
        for n, a in self.avg.items():
            a.copy_(state[n])
