"""Duration predictor for deduplicated units (speech-resynthesis' ``VariancePredictor``).

It predicts ``log(d + 1)`` per unit, is trained with MSE, and at inference a duration is
``max(1, round(exp(pred) - 1))`` frames, so a deduplicated unit sequence produced by a
unit LM can be spoken at a natural rate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DurationPredictor(nn.Module):
    """(conv1d -> ReLU -> LayerNorm -> dropout) x n_layers -> linear, per unit.

    Input: unit features (B, N, C); output: log(duration + 1) (B, N).
    """

    def __init__(self, in_dim: int, hidden: int = 128, kernel_size: int = 3,
                 dropout: float = 0.5, n_layers: int = 2) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(n_layers):
            self.convs.append(nn.Conv1d(in_dim if i == 0 else hidden, hidden, kernel_size,
                                        padding=kernel_size // 2))
            self.norms.append(nn.LayerNorm(hidden))
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, N, C) -> (B, N) predicted log(d + 1)."""
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(conv(x.transpose(1, 2))).transpose(1, 2)  # (B, N, H)
            x = self.dropout(norm(x))
        return self.proj(x).squeeze(-1)


def durations_from_log(log_pred: Tensor) -> Tensor:
    """Predicted log(d + 1) -> integer durations >= 1 (same shape, int64)."""
    return torch.clamp(torch.round(torch.exp(log_pred) - 1.0), min=1).long()


def duration_loss(log_pred: Tensor, durations: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE between predicted log(d + 1) (B, N) and the true durations (B, N), over ``mask``."""
    target = torch.log(durations.float() + 1.0)
    if mask is None:
        return F.mse_loss(log_pred, target)
    mask = mask.float()
    return ((log_pred - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)
