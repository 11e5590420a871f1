"""F0 conditioning of the unit HiFi-GAN (speech-resynthesis ``CodeGenerator`` with ``f0``).

The generator input is the unit embeddings (B, E, F) at 50 Hz, then the F0 features, then
the speaker embedding, then (``f0_feats``) the speaker's F0 mean and std, concatenated on
channels. F0 comes at 200 Hz, 4 values per unit frame (see :mod:`.f0`):

- raw: F0 is one more channel (B, 1, 4F). The units are repeated 4x to meet it, so the
  generator runs at 200 Hz and its upsampling rates multiply to 80, not 320;
- quantized: the F0 VQ-VAE encoder turns (B, 1, 4F) into codes (B, 4F / 16), embedded by
  ``f0_dict`` (B, E, F / 4) and repeated 4x to the unit rate; rates multiply to 320.

Whichever of units and F0 features is shorter is repeated to the other's length, and that
length must be an exact multiple, as in the original ``_upsample``.

The F0 of source audio comes from the tracker the config names (``"tracker"`` in the
``"f0"`` block; YAAPT, what speech-resynthesis trains on, when absent), see
:func:`.f0.vocoder_f0_tracker`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..audio.constants import HOP_LENGTH
from ..common.errors import InputError
from .f0 import F0_HOP, F0_PER_FRAME, VOCODER_F0_TRACKER, f0_tracker
from .f0_norm import F0Config
from .f0_quantizer import F0Quantizer


def stretch(x: Tensor, length: int, what: str) -> Tensor:
    """Repeat each step of (B, C, T) ``length / T`` times -> (B, C, length); exact multiples
    only."""
    t = x.shape[-1]
    if t == 0 or length % t:
        raise InputError(f"{what}: {t} steps cannot be repeated to {length}; give 4 F0 values "
                         f"(200 per second) per unit frame and, for an F0-quantizer vocoder, a "
                         f"multiple of its frame_multiple unit frames (generate() pads for you)")
    return x.repeat_interleave(length // t, dim=-1)


class F0Conditioning(nn.Module):
    """F0 (B, 4F) generator input -> channels to concatenate, plus the F0 settings.

    ``channels``: F0 feature channels (1 raw, E quantized); ``extra_channels``: 2 with
    ``f0_feats``; ``generator_hop``: samples per generator input step (80 raw, 320 with the
    published quantizer); ``frame_multiple``: unit frames per F0 code (1 raw, 4 quantized);
    ``tracker``: the F0 tracker to run on source audio (``yaapt`` unless the config says).
    """

    def __init__(self, config: dict[str, Any], dim: int) -> None:
        super().__init__()
        self.config = F0Config.from_json(config)
        self.tracker = str(config.get("tracker") or VOCODER_F0_TRACKER)
        f0_tracker(self.tracker, what="vocoder config f0.tracker")  # fails on unknown names
        self.quantizer: F0Quantizer | None = None
        self.embedding: nn.Embedding | None = None
        down = 1
        if self.config.quantizer is not None:
            self.quantizer = F0Quantizer(self.config.quantizer)
            bins = int(self.config.quantizer["f0_vq_params"]["l_bins"])
            self.embedding = nn.Embedding(bins, dim)
            down = self.quantizer.downsampling
        if not (F0_PER_FRAME % down == 0 or down % F0_PER_FRAME == 0):
            raise InputError(f"F0 quantizer downsamples by {down}; spokenlm needs a divisor or "
                             f"multiple of {F0_PER_FRAME} (F0 values per unit frame)")
        self.channels = 1 if self.quantizer is None else dim
        self.extra_channels = 2 if self.config.feats else 0
        self.generator_hop = min(HOP_LENGTH, F0_HOP * down)
        self.frame_multiple = max(1, down // F0_PER_FRAME)

    def features(self, f0: Tensor) -> Tensor:
        """Generator-ready F0 (B, T0) -> F0 channels (B, 1, T0) or (B, E, T0 / 16)."""
        x = f0[:, None, :].to(self.dtype)
        if self.quantizer is None or self.embedding is None:
            return x
        codes = self.quantizer.encode(x)  # (B, T0 / 16)
        return self.embedding(codes).transpose(1, 2)

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.weight.dtype if self.embedding is not None else torch.float32

    def condition(self, x: Tensor, f0: Tensor | None) -> Tensor:
        """Unit embeddings (B, E, F) + F0 (B, 4F) -> (B, E + C, T), T = max(F, F0 steps)."""
        if f0 is None:
            raise InputError("this vocoder is conditioned on F0: pass f0 (B, 4 * frames), F0 at "
                             "200 frames/s prepared as its config says (VocoderModel.synthesize "
                             "takes Hz and does that)")
        if f0.dim() != 2 or f0.shape[0] != x.shape[0]:
            raise InputError(f"f0 must be (batch, 4 * frames) = ({x.shape[0]}, "
                             f"{F0_PER_FRAME * x.shape[-1]}), got {tuple(f0.shape)}")
        c = self.features(f0)
        if x.shape[-1] < c.shape[-1]:
            x = stretch(x, c.shape[-1], "unit frames")
        else:
            c = stretch(c, x.shape[-1], "F0 features")
        return torch.cat([x, c.to(x.dtype)], dim=1)

    def stats_input(self, speakers: list[int | None], device: torch.device) -> Tensor:
        """Per-utterance speaker F0 (mean, std) in Hz (B, 2), the ``f0_feats`` channels."""
        return torch.tensor([self.config.speaker_stats(s) for s in speakers],
                            dtype=torch.float32, device=device)
