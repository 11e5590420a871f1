"""Fast CPU vocoder: units -> log-mel regression -> pseudo-inverse -> fast Griffin-Lim.

Meant for demos on a laptop: it trains in minutes with a plain L1 loss on log-mel and
synthesises far faster than real time. Speech is intelligible but buzzy; use HiFi-GAN
(:mod:`.hifigan`) for quality.

Each 320-sample unit frame maps to ``320 / mel_hop`` mel frames (2 at the default hop of
160); mel frame j is centred on sample ``j * mel_hop``.

Long speech is synthesised chunk by chunk (:meth:`FastVocoder.generate_stream`): the log-mel
network exactly, Griffin-Lim per chunk with overlap, carried phases and a crossfade, so the
result is close to the one-piece synthesis but not equal to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..audio.chunking import Chunking, plan_chunks
from ..audio.constants import HOP_LENGTH, SAMPLE_RATE
from ..common.errors import InputError
from .base import VOCODER_CHUNK_S, VocoderModel, register_vocoder
from .griffinlim import griffin_lim, mel_to_magnitude
from .mel import MelSpectrogram

_BASE = dict(embedding_dim=128, channels=128, n_blocks=3, kernel_size=3, post_blocks=1,
             mel_hop=160, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0,
             griffin_lim_iters=32, griffin_lim_momentum=0.99, duration_hidden=128)

#: Unit frames (0.5 s at 50 Hz) of extra log-mel Griffin-Lim gets each side of a chunk when
#: long speech is synthesised chunk by chunk; neighbours are crossfaded over half of it.
GL_CONTEXT_FRAMES = 25

#: Named sizes of the fast vocoder.
FAST_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {**_BASE, "embedding_dim": 16, "channels": 16, "n_blocks": 1,
             "duration_hidden": 16},
    "base": _BASE,
}


class ConvBlock(nn.Module):
    """Residual block: LayerNorm over channels -> GELU -> dilated conv -> GELU -> 1x1 conv."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, T) -> (B, C, T)."""
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.proj(F.gelu(self.conv(F.gelu(h))))


@register_vocoder("fast")
class FastVocoder(VocoderModel):
    """Unit embedding -> dilated residual convs -> upsample to mel rate -> log-mel (80).

    Config (see :data:`FAST_SIZES`): ``n_units``, ``embedding_dim``, ``channels``,
    ``n_blocks``, ``kernel_size``, ``post_blocks``, ``mel_hop`` (divides ``hop_length``, 320 at
    50 Hz), ``n_fft``,
    ``n_mels``, ``fmin``, ``fmax``, ``griffin_lim_iters``, ``griffin_lim_momentum``,
    ``speakers``, ``duration_predictor``.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        c, k = int(config["channels"]), int(config["kernel_size"])
        self.mel_hop = int(config["mel_hop"])
        if self.hop_length % self.mel_hop:
            raise ValueError(f"mel_hop={self.mel_hop} must divide the unit hop {self.hop_length}")
        self.ratio = self.hop_length // self.mel_hop
        self.mel = MelSpectrogram(SAMPLE_RATE, int(config["n_fft"]), self.mel_hop,
                                  n_mels=int(config["n_mels"]), fmin=float(config["fmin"]),
                                  fmax=config["fmax"])
        self.pre = nn.Conv1d(int(config["embedding_dim"]), c, 1)
        self.blocks = nn.ModuleList(ConvBlock(c, k, 2 ** (i % 4))
                                    for i in range(int(config["n_blocks"])))
        self.sub_frame = nn.Parameter(torch.zeros(c, self.ratio))  # position inside a frame
        self.post = nn.ModuleList(ConvBlock(c, k, 1) for _ in range(int(config["post_blocks"])))
        self.out = nn.Conv1d(c, int(config["n_mels"]), 1)
        nn.init.constant_(self.out.bias, -5.0)

    @classmethod
    def build(cls, size: str, n_units: int, speakers: list[str] | None = None,
              duration_predictor: bool = True, hop_length: int = HOP_LENGTH) -> FastVocoder:
        """A fresh model of a named size (:data:`FAST_SIZES`) for units every ``hop_length``
        samples (320: 50 Hz; 640: 25 Hz)."""
        return cls({"n_units": n_units, **FAST_SIZES[size], "speakers": speakers or [],
                    "duration_predictor": duration_predictor, "size": size,
                    "hop_length": hop_length})

    def forward(self, frames: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Frame units (B, F) -> predicted log-mel (B, n_mels, F * ratio)."""
        if self.speaker_embedding is not None and speaker is None:
            speaker = torch.zeros(frames.shape[0], dtype=torch.long, device=frames.device)
        x = self.pre(self.unit_features(frames, speaker).transpose(1, 2))  # (B, C, F)
        for block in self.blocks:
            x = block(x)
        b, c, n = x.shape
        x = x[:, :, :, None] + self.sub_frame[None, :, None, :]  # (B, C, F, ratio)
        x = x.reshape(b, c, n * self.ratio)  # (B, C, F * ratio)
        for block in self.post:
            x = block(x)
        return self.out(x)

    def target(self, wav: Tensor) -> Tensor:
        """Audio (B, F * hop_length) -> the log-mel the model regresses (B, n_mels, F * ratio)."""
        n = wav.shape[-1] // self.mel_hop
        return self.mel.log_mel(wav)[:, :, :n]

    def vocode(self, log_mel: Tensor) -> Tensor:
        """Log-mel (B, n_mels, N) -> waveform (B, N * mel_hop) by Griffin-Lim."""
        mag = mel_to_magnitude(torch.exp(log_mel.float()), self.mel.fb)  # (B, F, N)
        mag = torch.cat([mag, mag[:, :, -1:]], dim=-1)  # centred STFT of N*hop has N+1 frames
        return griffin_lim(mag, self.mel.n_fft, self.mel_hop, self.mel.win_length,
                           n_iter=int(self.config["griffin_lim_iters"]),
                           momentum=float(self.config["griffin_lim_momentum"]),
                           length=log_mel.shape[-1] * self.mel_hop)

    def generate(self, frames: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Frame units (B, F) -> waveform (B, F * hop_length)."""
        return self.vocode(self(frames, speaker))

    # -- long inputs ----------------------------------------------------------------------
    def receptive_field_frames(self) -> int:
        """Unit frames each side one predicted log-mel frame depends on (the dilated conv
        blocks at the frame rate, the post blocks at the mel rate), plus one."""
        k = int(self.config["kernel_size"])
        radius = sum((k - 1) // 2 * 2 ** (i % 4) for i in range(len(self.blocks)))
        radius += math.ceil(len(self.post) * ((k - 1) // 2) / self.ratio)
        return radius + 1

    @property
    def chunking(self) -> Chunking:
        """Chunks of :data:`~spokenlm.vocoder.base.VOCODER_CHUNK_S` s; the log-mel network
        is exact with its receptive field, Griffin-Lim gets :data:`GL_CONTEXT_FRAMES` more
        per side: close to the one-piece output, not equal (see :meth:`generate_stream`)."""
        rate = self.framing.frame_rate
        return Chunking(int(round(VOCODER_CHUNK_S * rate)),
                        self.receptive_field_frames() + GL_CONTEXT_FRAMES, exact=False,
                        note="Griffin-Lim is iterative over the whole spectrogram")

    def generate_stream(self, frames: Tensor, speaker: Tensor | None = None,
                        f0: Tensor | None = None, chunk_frames: int | None = None
                        ) -> Iterator[Tensor]:
        """Frame units (1, F) -> waveform pieces (T_k,), chunk by chunk, in bounded memory.

        The log-mel of each chunk is exact (the network's receptive field as context).
        Griffin-Lim then runs per chunk on :data:`GL_CONTEXT_FRAMES` frames of extra log-mel
        each side; a chunk starts from the phases the previous chunk ended with over their
        overlap (random elsewhere), and neighbouring chunks are crossfaded (raised cosine)
        over half that overlap around their boundary. Griffin-Lim is iterative and global
        (and starts from random phases), so the waveform is not the one-piece one sample
        for sample; its spectrogram is close (tests/vocoder/test_vocoder_streaming.py states the
        tolerance). Input of one chunk or less is exactly :meth:`generate`.
        """
        if f0 is not None:
            raise InputError(f"this {self.type!r} vocoder is not conditioned on F0; drop f0")
        n, gl, hop = frames.shape[1], GL_CONTEXT_FRAMES, self.hop_length
        chunk = max(int(chunk_frames or self.chunking.chunk_frames), 2 * gl)
        plan = plan_chunks(n, chunk, self.receptive_field_frames() + gl, min_last=gl)
        if len(plan) == 1:
            yield self.generate(frames, speaker)[0]
            return
        half = (gl // 2) * hop  # crossfade: `half` samples each side of a boundary
        ramp = torch.sin(0.5 * torch.pi * (torch.arange(2 * half, device=frames.device) + 0.5)
                         / (2 * half)) ** 2  # (2 half,) fade-in; 1 - ramp fades out
        pending: Tensor | None = None  # previous chunk's samples around the next boundary
        carry: Tensor | None = None  # previous chunk's phases over the overlap columns
        for k, c in enumerate(plan):
            a, b = c.start - min(c.left, gl), c.stop + min(c.right, gl)  # frames for GL
            log_mel = self(frames[:, c.lo:c.hi], speaker)[:, :, (a - c.lo) * self.ratio:
                                                          (b - c.lo) * self.ratio]
            mag = mel_to_magnitude(torch.exp(log_mel.float()), self.mel.fb)  # (1, F, M)
            mag = torch.cat([mag, mag[:, :, -1:]], dim=-1)  # M + 1 centred frames
            gen = torch.Generator(device="cpu").manual_seed(k)
            phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device)
            angles = torch.polar(torch.ones_like(mag), phase * 2 * torch.pi)
            if carry is not None:
                angles[:, :, :carry.shape[-1]] = carry
            wav = griffin_lim(mag, self.mel.n_fft, self.mel_hop, self.mel.win_length,
                              n_iter=int(self.config["griffin_lim_iters"]),
                              momentum=float(self.config["griffin_lim_momentum"]),
                              length=(b - a) * hop, angles=angles)[0]  # samples [a hop, b hop)
            at = c.start * hop - a * hop  # index of the chunk's first own sample in wav
            if pending is None:
                yield wav[:at + (c.stop - c.start) * hop - (0 if k == len(plan) - 1 else half)]
            else:
                yield pending * (1 - ramp) + wav[at - half:at + half] * ramp
                end = at + (c.stop - c.start) * hop
                yield wav[at + half:end if k == len(plan) - 1 else end - half]
            if k < len(plan) - 1:
                end = at + (c.stop - c.start) * hop
                pending = wav[end - half:end + half]
                first = (c.stop - gl - a) * self.ratio  # next chunk's first GL column, here
                spec = self.mel.stft(wav[None])[:, :, first:(b - a) * self.ratio]
                carry = spec / (spec.abs() + 1e-16)
