"""Unit HiFi-GAN generator (Polyak et al. 2021, speech-resynthesis ``CodeGenerator``).

Units at 50 Hz are embedded, concatenated with an optional speaker embedding, and
upsampled by transposed convolutions (rates whose product is the 320-sample hop), each
followed by a multi-receptive-field fusion of residual blocks (HiFi-GAN, Kong et al. 2020).
Discriminators and losses live in :mod:`.discriminators` and :mod:`.losses`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..audio.constants import HOP_LENGTH
from .base import VocoderModel, register_vocoder

LRELU_SLOPE = 0.1

_V1 = dict(embedding_dim=128, upsample_rates=[5, 4, 4, 2, 2],
           upsample_kernel_sizes=[11, 8, 8, 4, 4], upsample_initial_channel=512,
           resblock="1", resblock_kernel_sizes=[3, 7, 11],
           resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]], disc_channel_div=1)

#: Named sizes. ``v1`` is HiFi-GAN V1 with speech-resynthesis' 320x upsampling.
HIFIGAN_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {**_V1, "embedding_dim": 32, "upsample_initial_channel": 32,
             "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
             "disc_channel_div": 32, "duration_hidden": 32},
    "small": {**_V1, "upsample_initial_channel": 128, "disc_channel_div": 4},
    "v1": _V1,
    "base": _V1,
}


def _init_weights(m: nn.Module, std: float = 0.01) -> None:
    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
        m.weight.data.normal_(0.0, std)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Two dilated convs per dilation, each pair wrapped in a residual connection."""

    def __init__(self, channels: int, kernel_size: int = 3,
                 dilation: tuple[int, ...] | list[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(
            channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilation)
        self.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(
            channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size)))
            for _ in dilation)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """One dilated conv per dilation with a residual connection (HiFi-GAN V3)."""

    def __init__(self, channels: int, kernel_size: int = 3,
                 dilation: tuple[int, ...] | list[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(weight_norm(nn.Conv1d(
            channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilation)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


@register_vocoder("hifigan")
class UnitHifiGan(VocoderModel):
    """Unit-to-waveform HiFi-GAN generator with an optional duration predictor.

    Config (see :data:`HIFIGAN_SIZES`): ``n_units``, ``embedding_dim``, ``speakers``,
    ``upsample_rates`` (product must be 320), ``upsample_kernel_sizes``,
    ``upsample_initial_channel``, ``resblock`` ("1" | "2"), ``resblock_kernel_sizes``,
    ``resblock_dilation_sizes``, ``duration_predictor``.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        rates = list(config["upsample_rates"])
        if math.prod(rates) != HOP_LENGTH:
            raise ValueError(f"upsample_rates {rates} multiply to {math.prod(rates)}, "
                             f"not the hop {HOP_LENGTH}")
        dim = int(config["embedding_dim"])
        ch = int(config["upsample_initial_channel"])
        in_ch = dim * (2 if self.speaker_embedding is not None else 1)
        block = ResBlock1 if str(config.get("resblock", "1")) == "1" else ResBlock2
        self.conv_pre = weight_norm(nn.Conv1d(in_ch, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        kernels = list(config["resblock_kernel_sizes"])
        for i, (u, k) in enumerate(zip(rates, config["upsample_kernel_sizes"])):
            c_in, c_out = ch // (2 ** i), ch // (2 ** (i + 1))
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u,
                                                           padding=(k - u) // 2)))
            for k_r, d_r in zip(kernels, config["resblock_dilation_sizes"]):
                self.resblocks.append(block(c_out, k_r, d_r))
        self.num_kernels = len(kernels)
        self.conv_post = weight_norm(nn.Conv1d(ch // (2 ** len(rates)), 1, 7, 1, padding=3))
        self.ups.apply(_init_weights)
        self.conv_post.apply(_init_weights)

    @classmethod
    def build(cls, size: str, n_units: int, speakers: list[str] | None = None,
              duration_predictor: bool = True) -> UnitHifiGan:
        """A fresh generator of a named size (:data:`HIFIGAN_SIZES`)."""
        return cls({"n_units": n_units, **HIFIGAN_SIZES[size], "speakers": speakers or [],
                    "duration_predictor": duration_predictor, "size": size})

    def forward(self, frames: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Frame units (B, F) -> waveform (B, 1, F * 320) in [-1, 1]."""
        x = self.embedding(frames).transpose(1, 2)  # (B, E, F)
        if self.speaker_embedding is not None:
            if speaker is None:
                speaker = torch.zeros(frames.shape[0], dtype=torch.long, device=frames.device)
            s = self.speaker_embedding(speaker)[:, :, None].expand(-1, -1, x.shape[-1])
            x = torch.cat([x, s], dim=1)  # (B, 2E, F)
        x = self.conv_pre(x)  # (B, C, F)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C / 2^(i+1), F * prod(rates[:i+1]))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # (B, 1, T)
        return torch.tanh(x)

    def generate(self, frames: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Frame units (B, F) -> waveform (B, F * 320)."""
        return self(frames, speaker)[:, 0]
