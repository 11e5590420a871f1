"""The loss of each vocoder type, registered by type name (used by :mod:`.train`).

A task knows its model class, sizes and defaults, the modules trained beside the model
(HiFi-GAN's discriminators, with their own optimizer) and ``loss(model, batch, extras)``.
The training loop (:mod:`spokenlm.training.loop`) handles the optimizers, data, logging,
checkpoints and resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..audio.constants import SAMPLE_RATE
from .base import VocoderModel
from .data import Batch
from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from .duration import duration_loss
from .fast import FAST_SIZES, FastVocoder
from .hifigan import HIFIGAN_SIZES, UnitHifiGan
from .losses import (MEL_WEIGHT, discriminator_loss, feature_loss, generator_loss,
                     mel_loss)
from .mel import MelSpectrogram

#: type name -> task class
TASKS: dict[str, type[Task]] = {}


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    def deco(cls: type[Task]) -> type[Task]:
        TASKS[name] = cls
        return cls

    return deco


class Task:
    """Base: the loss of one vocoder type. ``extras[name].module`` / ``.update(loss)`` are
    the loop's handles on :meth:`extra_modules`."""

    default_lr: float = 2e-4
    default_clip_grad: float = 0.0
    default_segment_frames: int = 32
    sizes: dict[str, dict[str, Any]] = {}
    model_cls: type[VocoderModel]

    def __init__(self, model: VocoderModel) -> None:
        self.model = model

    def extra_modules(self) -> dict[str, nn.Module]:
        return {}

    def loss(self, model: VocoderModel, batch: Batch, extras: dict[str, Any]
             ) -> dict[str, Tensor]:
        raise NotImplementedError

    @staticmethod
    def duration(model: VocoderModel, batch: Batch) -> Tensor:
        """The duration predictor's MSE on log durations (0 without a predictor)."""
        if model.duration is None:
            return torch.zeros((), device=batch.wav.device)
        pred = model.duration_log_pred(batch.units, batch.speaker)
        return duration_loss(pred, batch.durations, batch.mask)


class Discriminators(nn.Module):
    """HiFi-GAN's multi-period and multi-scale discriminators, one module (one optimizer)."""

    def __init__(self, channel_div: int = 1) -> None:
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(channel_div=channel_div)
        self.msd = MultiScaleDiscriminator(channel_div=channel_div)

    def forward(self, y: Tensor, y_hat: Tensor) -> tuple[tuple, tuple]:
        """Real and generated (B, 1, T) -> (MPD, MSD) outputs (real scores, fake scores,
        real feature maps, fake feature maps)."""
        return self.mpd(y, y_hat), self.msd(y, y_hat)


@register_task("hifigan")
class HifiGanTask(Task):
    """GAN training as HiFi-GAN: D step (MPD + MSD, LSGAN) on the detached generation, then
    the G loss (adv + feature matching + 45 x mel L1) plus the duration MSE."""

    default_lr = 2e-4
    default_clip_grad = 0.0  # HiFi-GAN does not clip
    default_segment_frames = 32  # 10240 samples, ~HiFi-GAN's 8192
    model_cls = UnitHifiGan
    sizes = HIFIGAN_SIZES

    def __init__(self, model: VocoderModel) -> None:
        assert isinstance(model, UnitHifiGan)
        super().__init__(model)
        self.mel = MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=80,
                                  fmax=8000.0).to(model.device)

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"discriminator": Discriminators(int(self.model.config.get("disc_channel_div", 1)))}

    def loss(self, model: VocoderModel, batch: Batch, extras: dict[str, Any]
             ) -> dict[str, Tensor]:
        disc = extras["discriminator"]
        y = batch.wav[:, None]  # (B, 1, T)
        y_hat = model(batch.frames, batch.speaker)  # (B, 1, T)
        (r_p, g_p, _, _), (r_s, g_s, _, _) = disc.module(y, y_hat.detach())
        loss_d = discriminator_loss(r_p, g_p) + discriminator_loss(r_s, g_s)
        disc.update(loss_d)
        loss_mel = mel_loss(self.mel, y[:, 0], y_hat[:, 0])
        (_, g_p, fr_p, fg_p), (_, g_s, fr_s, fg_s) = disc.module(y, y_hat)
        loss_fm = feature_loss(fr_p, fg_p) + feature_loss(fr_s, fg_s)
        loss_adv = generator_loss(g_p) + generator_loss(g_s)
        loss_dur = self.duration(model, batch)
        loss_g = loss_adv + loss_fm + MEL_WEIGHT * loss_mel + loss_dur
        return {"loss": loss_g, "loss_g": loss_g, "loss_d": loss_d.detach(), "mel": loss_mel,
                "fm": loss_fm, "adv": loss_adv, "duration": loss_dur}


@register_task("fast")
class FastTask(Task):
    """L1 regression of log-mel from units, plus the duration MSE."""

    default_lr = 1e-3
    default_clip_grad = 1.0
    default_segment_frames = 64
    model_cls = FastVocoder
    sizes = FAST_SIZES

    def loss(self, model: VocoderModel, batch: Batch, extras: dict[str, Any]
             ) -> dict[str, Tensor]:
        assert isinstance(model, FastVocoder)
        with torch.no_grad():
            target = model.target(batch.wav)  # (B, M, S * ratio)
        loss_mel = F.l1_loss(model(batch.frames, batch.speaker), target)
        loss_dur = self.duration(model, batch)
        return {"loss": loss_mel + loss_dur, "mel": loss_mel, "duration": loss_dur}
