"""Unit HiFi-GAN generator (Polyak et al. 2021, speech-resynthesis ``CodeGenerator``).

Units at 50 Hz are embedded, concatenated with an optional speaker embedding (and F0
features for imported F0-conditioned generators, :mod:`.hifigan_f0`), and upsampled
by transposed convolutions (rates whose product is the 320-sample hop), each followed by
a multi-receptive-field fusion of residual blocks (HiFi-GAN, Kong et al. 2020).
Discriminators and losses live in :mod:`.discriminators` and :mod:`.losses`.

The generator is convolutions only, so long speech is synthesised chunk by chunk exactly
(:meth:`~spokenlm.vocoder.base.VocoderModel.synthesize_stream`): each chunk is run with
:meth:`UnitHifiGan.receptive_field_frames` of context each side and trimmed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from ..audio.constants import HOP_LENGTH
from ..common.errors import InputError
from .base import VocoderModel, register_vocoder
from .f0 import F0_PER_FRAME, fit_f0_length
from .hifigan_f0 import F0Conditioning

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


def _conv_span(module: nn.Module) -> float:
    """Input steps each side a stack of 1-D convs (in forward order, strides compounding)
    looks at, counted generously: the whole kernel span ``(k - 1) * dilation`` per conv."""
    span, scale = 0.0, 1.0
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            span += (m.kernel_size[0] - 1) * m.dilation[0] * scale
            scale *= m.stride[0]
    return span


@register_vocoder("hifigan")
class UnitHifiGan(VocoderModel):
    """Unit-to-waveform HiFi-GAN generator with an optional duration predictor.

    Config (see :data:`HIFIGAN_SIZES`): ``n_units``, ``embedding_dim``, ``speakers``,
    ``upsample_rates`` (product 320, or a divisor of ``hop_length``: each unit frame is then
    repeated ``hop_length / prod`` times first, as for 25 Hz units; 80 for raw-F0
    generators), ``upsample_kernel_sizes``,
    ``upsample_initial_channel``, ``resblock`` ("1" | "2"), ``resblock_kernel_sizes``,
    ``resblock_dilation_sizes``, ``duration_predictor``; optional ``f0``
    (:class:`~spokenlm.vocoder.f0_norm.F0Config` as JSON) for F0-conditioned generators
    imported from speech-resynthesis (:mod:`.hifigan_f0`).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        dim = int(config["embedding_dim"])
        self.f0 = F0Conditioning(config["f0"], dim) if config.get("f0") else None
        rates = list(config["upsample_rates"])
        if self.f0 is not None and self.hop_length != HOP_LENGTH:
            raise ValueError(f"F0-conditioned HiFi-GAN generators work on 50 Hz units (hop "
                             f"{HOP_LENGTH}), not hop_length={self.hop_length}")
        hop = self.hop_length if self.f0 is None else self.f0.generator_hop
        if hop % math.prod(rates):
            raise ValueError(f"upsample_rates {rates} multiply to {math.prod(rates)}, "
                             f"which does not divide the generator hop {hop}")
        #: unit frames are repeated this many times before the generator (1 at 50 Hz)
        self.frame_repeat = hop // math.prod(rates)
        ch = int(config["upsample_initial_channel"])
        in_ch = dim * (2 if self.speaker_embedding is not None else 1)
        if self.f0 is not None:
            in_ch += self.f0.channels + self.f0.extra_channels
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
              duration_predictor: bool = True, hop_length: int = HOP_LENGTH) -> UnitHifiGan:
        """A fresh generator of a named size (:data:`HIFIGAN_SIZES`) for units every
        ``hop_length`` samples (320: 50 Hz; 640: 25 Hz)."""
        return cls({"n_units": n_units, **HIFIGAN_SIZES[size], "speakers": speakers or [],
                    "duration_predictor": duration_predictor, "size": size,
                    "hop_length": hop_length})

    @property
    def needs_f0(self) -> bool:
        return self.f0 is not None

    def receptive_field_frames(self) -> int:
        """Unit frames each side one output sample depends on (upper bound), from the conv
        stack: conv_pre, each transposed conv and the widest residual block after it,
        conv_post; plus the F0 quantizer's encoder for F0 vocoders. Chunked synthesis
        with this much context is exact (:meth:`generate_stream`)."""
        c = self.config
        rates, kernels = list(c["upsample_rates"]), list(c["upsample_kernel_sizes"])
        pairs = 2 if str(c.get("resblock", "1")) == "1" else 1
        steps, scale = 3.0, 1.0  # in generator input steps; conv_pre: kernel 7
        for u, k in zip(rates, kernels):
            steps += math.ceil(k / u) * scale  # a transposed conv, in its input steps
            scale /= u
            steps += scale * max(sum((k_r - 1) // 2 * (d if pairs == 1 else d + 1) for d in ds)
                                 for k_r, ds in zip(c["resblock_kernel_sizes"],
                                                    c["resblock_dilation_sizes"]))
        steps += 3 * scale  # conv_post: kernel 7
        steps_per_frame = self.hop_length // math.prod(rates)  # 1; 2 at 25 Hz; 4 raw F0
        frames = math.ceil(steps / steps_per_frame)
        if self.f0 is not None and self.f0.quantizer is not None:
            frames += math.ceil(_conv_span(self.f0.quantizer.encoder) / F0_PER_FRAME)
        return frames + self.frame_multiple()

    def frame_multiple(self) -> int:
        return 1 if self.f0 is None else self.f0.frame_multiple

    def forward(self, frames: Tensor, speaker: Tensor | None = None, f0: Tensor | None = None,
                f0_stats: Tensor | None = None) -> Tensor:
        """Frame units (B, F) -> waveform (B, 1, F * hop_length) in [-1, 1].

        F0 vocoders also take ``f0`` (B, 4F), generator-ready (normalised as the config
        says; :meth:`f0_input` makes it from Hz) and, with ``f0_feats``, ``f0_stats`` (B, 2)
        (speaker F0 mean, std in Hz). The F0 quantizer needs F to be a multiple of
        ``self.f0.frame_multiple`` (4); :meth:`generate` pads to it.
        """
        if self.frame_repeat > 1:  # e.g. 25 Hz units on a 320-sample generator
            frames = frames.repeat_interleave(self.frame_repeat, dim=1)
        x = self.embedding(frames).transpose(1, 2)  # (B, E, F)
        if self.f0 is not None:
            x = self.f0.condition(x, f0)  # (B, E + C, T): T = 4F raw, F quantized
        if self.speaker_embedding is not None:
            if speaker is None:
                speaker = torch.zeros(frames.shape[0], dtype=torch.long, device=frames.device)
            s = self.speaker_embedding(speaker)[:, :, None].expand(-1, -1, x.shape[-1])
            x = torch.cat([x, s], dim=1)  # (B, C + E, T)
        if self.f0 is not None and self.f0.extra_channels:
            if f0_stats is None:
                raise InputError("this vocoder also takes f0_stats (B, 2): the speaker's F0 "
                                 "mean and std in Hz (f0_feats)")
            x = torch.cat([x, f0_stats[:, :, None].to(x.dtype).expand(-1, -1, x.shape[-1])], 1)
        x = self.conv_pre(x)  # (B, C, T)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C / 2^(i+1), T * prod(rates[:i+1]))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # (B, 1, T * hop)
        return torch.tanh(x)

    def generate(self, frames: Tensor, speaker: Tensor | None = None,
                 f0: Tensor | None = None) -> Tensor:
        """Frame units (B, F) (+ generator-ready ``f0`` (B, 4F) for F0 vocoders) -> waveform
        (B, F * hop_length). Frames are padded (last unit and F0 repeated) to the quantizer's
        multiple and the output cut back to F * 320 samples."""
        if self.f0 is None:
            if f0 is not None:
                raise InputError("this vocoder is not conditioned on F0; drop f0")
            return self(frames, speaker)[:, 0]
        if f0 is None:
            return self(frames, speaker, None)[:, 0]  # raises the no-F0 error
        n = frames.shape[1]
        if tuple(f0.shape) != (frames.shape[0], F0_PER_FRAME * n):
            raise InputError(f"f0 must be (batch, 4 * frames) = ({frames.shape[0]}, "
                             f"{F0_PER_FRAME * n}), got {tuple(f0.shape)}")
        pad = -n % self.f0.frame_multiple
        if pad and n:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, pad)], dim=1)
            f0 = torch.cat([f0, f0[:, -1:].expand(-1, F0_PER_FRAME * pad)], dim=1)
        stats = None
        if self.f0.extra_channels:
            default = None if self.speaker_embedding is None else 0
            ids = [default] * frames.shape[0] if speaker is None else speaker.tolist()
            stats = self.f0.stats_input(ids, frames.device)
        return self(frames, speaker, f0, stats)[:, 0, :n * self.hop_length]

    def f0_input(self, f0: np.ndarray | Sequence[float] | None, n_frames: int,
                 speaker: int | None) -> Tensor | None:
        """F0 in Hz at 200 frames/s (cut or edge-padded to 4 * n_frames) -> generator-ready
        (1, 4 * n_frames). Without F0, the config's fallback (a flat contour at the speaker's
        mean, or an error)."""
        if self.f0 is None:
            return super().f0_input(f0, n_frames, speaker)
        if f0 is None:
            values = self.f0.config.default_input(F0_PER_FRAME * n_frames, speaker)
            self._warn_once("f0:fallback", "vocoder: no F0 given; speaking on a flat contour "
                                           "at the speaker's mean F0 (pass f0= for intonation)")
        else:
            values = self.f0.config.prepare(fit_f0_length(np.asarray(f0), n_frames), speaker)
        return torch.from_numpy(values)[None].to(self.device)
