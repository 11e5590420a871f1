"""HiFi-GAN discriminators: multi-period (MPD) and multi-scale (MSD).

Each returns, for real ``y`` and generated ``y_hat`` (B, 1, T): the per-discriminator
scores and feature maps used by the adversarial and feature-matching losses.
``channel_div`` shrinks every layer's width for tiny test models.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import weight_norm

from .hifigan import LRELU_SLOPE

Scores = list[Tensor]
FeatureMaps = list[list[Tensor]]


def _ch(c: int, div: int, groups: int = 1) -> int:
    """``c / div`` rounded to a multiple of ``groups`` (at least ``groups``)."""
    return max(groups, (c // div) // groups * groups)


class DiscriminatorP(nn.Module):
    """Looks at the signal folded into a 2-D (T / period, period) grid."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3,
                 channel_div: int = 1) -> None:
        super().__init__()
        self.period = period
        chans = [1] + [_ch(c, channel_div) for c in (32, 128, 512, 1024, 1024)]
        pad = (kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (kernel_size, 1),
                                  (stride if i < 4 else 1, 1), padding=(pad, 0)))
            for i in range(5))
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, 1, T) -> scores (B, K), feature maps."""
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - (t % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)  # (B, 1, T/p, p)
        return _conv_stack(self.convs, self.conv_post, x)


class DiscriminatorS(nn.Module):
    """Strided grouped 1-D convs over the raw (or average-pooled) waveform."""

    def __init__(self, use_spectral_norm: bool = False, channel_div: int = 1) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        spec = [  # (in, out, kernel, stride, groups, padding)
            (1, 128, 15, 1, 1, 7), (128, 128, 41, 2, 4, 20), (128, 256, 41, 2, 16, 20),
            (256, 512, 41, 4, 16, 20), (512, 1024, 41, 4, 16, 20), (1024, 1024, 41, 1, 16, 20),
            (1024, 1024, 5, 1, 1, 2)]
        layers = []
        prev = 1
        for _, c_out, k, s, g, p in spec:
            g_eff = min(g, prev)
            out = _ch(c_out, channel_div, g_eff)
            layers.append(norm(nn.Conv1d(prev, out, k, s, groups=g_eff, padding=p)))
            prev = out
        self.convs = nn.ModuleList(layers)
        self.conv_post = norm(nn.Conv1d(prev, 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B, 1, T) -> scores (B, K), feature maps."""
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`DiscriminatorP` per period (2, 3, 5, 7, 11)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channel_div: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(DiscriminatorP(p, channel_div=channel_div)
                                            for p in periods)

    def forward(self, y: Tensor, y_hat: Tensor) -> tuple[Scores, Scores, FeatureMaps, FeatureMaps]:
        """Real and generated (B, 1, T) -> (real scores, fake scores, real fmaps, fake fmaps)."""
        return _run(self.discriminators, y, y_hat)


class MultiScaleDiscriminator(nn.Module):
    """:class:`DiscriminatorS` on the waveform, then on 2x and 4x average-pooled copies."""

    def __init__(self, channel_div: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([
            DiscriminatorS(use_spectral_norm=True, channel_div=channel_div),
            DiscriminatorS(channel_div=channel_div), DiscriminatorS(channel_div=channel_div)])
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2),
                                        nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, y: Tensor, y_hat: Tensor) -> tuple[Scores, Scores, FeatureMaps, FeatureMaps]:
        """Real and generated (B, 1, T) -> (real scores, fake scores, real fmaps, fake fmaps)."""
        outs: tuple[Scores, Scores, FeatureMaps, FeatureMaps] = ([], [], [], [])
        for i, d in enumerate(self.discriminators):
            if i > 0:
                y, y_hat = self.meanpools[i - 1](y), self.meanpools[i - 1](y_hat)
            r, fr = d(y)
            g, fg = d(y_hat)
            for lst, v in zip(outs, (r, g, fr, fg)):
                lst.append(v)
        return outs


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: Tensor
                ) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU convs then the output conv: scores (B, K) and every layer's output."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = post(x)
    fmap.append(x)
    return x.flatten(1, -1), fmap


def _run(discs: nn.ModuleList, y: Tensor, y_hat: Tensor
         ) -> tuple[Scores, Scores, FeatureMaps, FeatureMaps]:
    outs: tuple[Scores, Scores, FeatureMaps, FeatureMaps] = ([], [], [], [])
    for d in discs:
        r, fr = d(y)
        g, fg = d(y_hat)
        for lst, v in zip(outs, (r, g, fr, fg)):
            lst.append(v)
    return outs
