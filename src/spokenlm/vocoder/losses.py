"""HiFi-GAN training losses: LSGAN adversarial, feature matching, mel L1; duration MSE.

Weights as in HiFi-GAN: total generator loss = adv + 2 * fm + 45 * mel (the factor 2 is
inside :func:`feature_loss`; 45 is :data:`MEL_WEIGHT`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .duration import duration_loss
from .mel import MelSpectrogram

MEL_WEIGHT = 45.0

__all__ = ["MEL_WEIGHT", "discriminator_loss", "duration_loss", "feature_loss",
           "generator_loss", "mel_loss"]


def feature_loss(fmap_r: list[list[Tensor]], fmap_g: list[list[Tensor]]) -> Tensor:
    """2 x sum over discriminators and layers of mean |real - fake| feature differences."""
    loss = torch.zeros(())
    for dr, dg in zip(fmap_r, fmap_g):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.detach() - g))
    return loss * 2


def discriminator_loss(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """LSGAN: sum of mean (1 - D(y))^2 + mean D(G(x))^2 over discriminators."""
    loss = torch.zeros(())
    for dr, dg in zip(real, fake):
        loss = loss + torch.mean((1 - dr) ** 2) + torch.mean(dg ** 2)
    return loss


def generator_loss(fake: list[Tensor]) -> Tensor:
    """LSGAN: sum of mean (1 - D(G(x)))^2 over discriminators."""
    loss = torch.zeros(())
    for dg in fake:
        loss = loss + torch.mean((1 - dg) ** 2)
    return loss


def mel_loss(mel: MelSpectrogram, y: Tensor, y_hat: Tensor) -> Tensor:
    """L1 between log-mels of real and generated audio (B, T) (unweighted)."""
    return F.l1_loss(mel.log_mel(y_hat), mel.log_mel(y))
