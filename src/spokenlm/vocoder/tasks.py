"""One training step per vocoder type, registered by type name (used by :mod:`.train`).

A task owns the model, any auxiliary modules (discriminators), the optimizers, and
``step(batch) -> losses``. The trainer handles data, logging, checkpoints and resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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

ADAM_BETAS = (0.8, 0.99)


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    def deco(cls: type[Task]) -> type[Task]:
        TASKS[name] = cls
        return cls

    return deco


class Task:
    """Base: a model plus optimizers. Subclasses set ``model``, ``aux``, ``optimizers``."""

    default_lr: float = 2e-4
    default_segment_frames: int = 32
    sizes: dict[str, dict[str, Any]] = {}
    model_cls: type[VocoderModel]
    model: VocoderModel
    aux: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def __init__(self, model: VocoderModel, lr: float) -> None:
        raise NotImplementedError

    def step(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def train(self) -> None:
        self.model.train()
        for m in self.aux.values():
            m.train()

    def _duration_loss(self, batch: Batch) -> torch.Tensor:
        if self.model.duration is None:
            return torch.zeros((), device=batch.wav.device)
        pred = self.model.duration_log_pred(batch.units, batch.speaker)
        return duration_loss(pred, batch.durations, batch.mask)


@register_task("hifigan")
class HifiGanTask(Task):
    """GAN training as HiFi-GAN: D step (MPD + MSD, LSGAN), then G step
    (adv + feature matching + 45 x mel L1) plus the duration MSE on the generator side."""

    default_lr = 2e-4
    default_segment_frames = 32  # 10240 samples, ~HiFi-GAN's 8192
    model_cls = UnitHifiGan
    sizes = HIFIGAN_SIZES

    def __init__(self, model: VocoderModel, lr: float) -> None:
        assert isinstance(model, UnitHifiGan)
        self.model = model
        div = int(model.config.get("disc_channel_div", 1))
        device = model.device
        self.aux = {"mpd": MultiPeriodDiscriminator(channel_div=div).to(device),
                    "msd": MultiScaleDiscriminator(channel_div=div).to(device)}
        self.mel = MelSpectrogram(SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=80,
                                  fmax=8000.0).to(device)
        d_params = list(self.aux["mpd"].parameters()) + list(self.aux["msd"].parameters())
        self.optimizers = {
            "generator": torch.optim.AdamW(model.parameters(), lr, betas=ADAM_BETAS),
            "discriminator": torch.optim.AdamW(d_params, lr, betas=ADAM_BETAS)}

    def step(self, batch: Batch) -> dict[str, float]:
        mpd, msd = self.aux["mpd"], self.aux["msd"]
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        y = batch.wav[:, None]  # (B, 1, T)
        y_hat = self.model(batch.frames, batch.speaker)  # (B, 1, T)

        opt_d.zero_grad(set_to_none=True)
        r, g, _, _ = mpd(y, y_hat.detach())
        loss_mpd = discriminator_loss(r, g)
        r, g, _, _ = msd(y, y_hat.detach())
        loss_msd = discriminator_loss(r, g)
        loss_d = loss_mpd + loss_msd
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_mel = mel_loss(self.mel, y[:, 0], y_hat[:, 0])
        _, g_p, fr_p, fg_p = mpd(y, y_hat)
        _, g_s, fr_s, fg_s = msd(y, y_hat)
        loss_fm = feature_loss(fr_p, fg_p) + feature_loss(fr_s, fg_s)
        loss_adv = generator_loss(g_p) + generator_loss(g_s)
        loss_dur = self._duration_loss(batch)
        loss_g = loss_adv + loss_fm + MEL_WEIGHT * loss_mel + loss_dur
        loss_g.backward()
        opt_g.step()
        return {"loss_g": loss_g.item(), "loss_d": loss_d.item(), "mel": loss_mel.item(),
                "fm": loss_fm.item(), "adv": loss_adv.item(), "duration": loss_dur.item()}


@register_task("fast")
class FastTask(Task):
    """L1 regression of log-mel from units, plus the duration MSE."""

    default_lr = 1e-3
    default_segment_frames = 64
    model_cls = FastVocoder
    sizes = FAST_SIZES

    def __init__(self, model: VocoderModel, lr: float) -> None:
        assert isinstance(model, FastVocoder)
        self.model = model
        self.aux = {}
        self.optimizers = {"model": torch.optim.AdamW(model.parameters(), lr, betas=ADAM_BETAS)}

    def step(self, batch: Batch) -> dict[str, float]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            target = self.model.target(batch.wav)  # (B, M, S * ratio)
        pred = self.model(batch.frames, batch.speaker)
        loss_mel = F.l1_loss(pred, target)
        loss_dur = self._duration_loss(batch)
        loss = loss_mel + loss_dur
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item(), "mel": loss_mel.item(), "duration": loss_dur.item()}


def build_task(type_: str, model: VocoderModel, lr: float) -> Task:
    return TASKS[type_](model, lr)
