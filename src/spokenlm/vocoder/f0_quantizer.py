"""The F0 VQ-VAE of speech-resynthesis (``Quantizer``: jukebox-style encoder, codebook,
decoder), used by F0-conditioned unit HiFi-GANs to turn an F0 contour into discrete codes.

The encoder downsamples the (B, 1, T0) F0 track (200 frames/s) by ``prod(stride ** down)``
per level (16 in the published configs: one code per 80 ms) with strided convolutions, each
followed by a stack of dilated residual blocks; the codebook maps every output vector to
its nearest entry (squared Euclidean distance). The generator embeds the level-0 codes with
its own ``f0_dict`` table. The decoder (codes -> F0) is kept so that a converted quantizer
can be exported again and used on its own.

Module and parameter names follow the original, so ``Quantizer.state_dict()`` keys
(``encoder.level_blocks.0.model.0.0.weight``, ``vq.level_blocks.0.k``, ``decoder.out.bias``,
...) load as they are. Params are the original config dicts (``f0_encoder_params``,
``f0_vq_params``, ``f0_decoder_params``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..common.errors import InputError

_BLOCK_KEYS = {"width", "depth", "m_conv", "dilation_growth_rate", "dilation_cycle",
               "zero_out", "res_scale", "reverse_decoder_dilation", "checkpoint_res"}
_LEVEL_KEYS = {"input_emb_width", "output_emb_width", "levels", "downs_t", "strides_t"}


def _stages(stride: Any, down: Any) -> list[tuple[int, int, int, bool]]:
    """(stride, kernel, padding, last) of each strided conv of one level, in order; ``last``
    marks the conv whose decoder twin outputs the level's channels (the last one of the
    last stride group, as the original decides it)."""
    if isinstance(stride, (list, tuple)):
        out = []
        for g, (s, d) in enumerate(zip(stride, down)):
            k, p = (2 * s, s // 2) if s % 2 == 0 else (2 * s + 1, s // 2 + 1)
            out += [(s, k, p, g == len(stride) - 1 and i == d - 1) for i in range(d)]
        return out
    return [(stride, 2 * stride, stride // 2, i == down - 1) for i in range(int(down))]


def downsampling(params: dict[str, Any], level: int = 0) -> int:
    """F0 frames per code at ``level`` (``prod(stride ** down)``)."""
    stages = _stages(params["strides_t"][level], params["downs_t"][level])
    return math.prod(s for s, _, _, _ in stages)


class ResConv1DBlock(nn.Module):
    """x + scale * conv1x1(relu(dilated conv3(relu(x)))), (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, hidden: int, dilation: int, res_scale: float) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.ReLU(), nn.Conv1d(channels, hidden, 3, 1, dilation, dilation),
                                   nn.ReLU(), nn.Conv1d(hidden, channels, 1))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.model(x)


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilations ``growth ** i`` (cycled, optionally reversed)."""

    def __init__(self, width: int, depth: int, m_conv: float = 1.0,
                 dilation_growth_rate: int = 1, dilation_cycle: int | None = None,
                 zero_out: bool = False, res_scale: bool = False, reverse_dilation: bool = False
                 ) -> None:
        super().__init__()
        scale = 1.0 / math.sqrt(depth) if res_scale else 1.0
        blocks = [ResConv1DBlock(width, int(m_conv * width),
                                 dilation_growth_rate ** (i if dilation_cycle is None
                                                          else i % dilation_cycle), scale)
                  for i in range(depth)]
        self.model = nn.Sequential(*(blocks[::-1] if reverse_dilation else blocks))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _block_kwargs(params: dict[str, Any], decoder: bool) -> dict[str, Any]:
    kw = {k: params[k] for k in ("m_conv", "dilation_growth_rate", "dilation_cycle", "res_scale")
          if k in params}
    if decoder:
        kw["reverse_dilation"] = bool(params.get("reverse_decoder_dilation", False))
    return kw


class EncoderLevel(nn.Module):
    """Strided conv + residual stack per downsampling step, then a conv to ``out_ch``."""

    def __init__(self, in_ch: int, out_ch: int, down: Any, stride: Any, params: dict[str, Any]
                 ) -> None:
        super().__init__()
        width, depth = int(params["width"]), int(params["depth"])
        blocks: list[nn.Module] = []
        for i, (s, k, p, _) in enumerate(_stages(stride, down)):
            blocks.append(nn.Sequential(nn.Conv1d(in_ch if i == 0 else width, width, k, s, p),
                                        Resnet1D(width, depth, **_block_kwargs(params, False))))
        if blocks or isinstance(stride, (list, tuple)):
            blocks.append(nn.Conv1d(width, out_ch, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class DecoderLevel(nn.Module):
    """Conv from ``ch``, then residual stack + transposed conv per upsampling step."""

    def __init__(self, ch: int, down: Any, stride: Any, params: dict[str, Any]) -> None:
        super().__init__()
        width, depth = int(params["width"]), int(params["depth"])
        stages = _stages(stride, down)
        blocks: list[nn.Module] = []
        if stages or isinstance(stride, (list, tuple)):
            blocks.append(nn.Conv1d(ch, width, 3, 1, 1))
        for s, k, p, last in stages:
            out = ch if last else width
            blocks.append(nn.Sequential(Resnet1D(width, depth, **_block_kwargs(params, True)),
                                        nn.ConvTranspose1d(width, out, k, s, p)))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """(B, input_emb_width, T0) -> per level (B, output_emb_width, T0 / downsampling)."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        cin, cout = int(params["input_emb_width"]), int(params["output_emb_width"])
        self.input_width = cin
        self.level_blocks = nn.ModuleList(
            EncoderLevel(cin if lvl == 0 else cout, cout, params["downs_t"][lvl],
                         params["strides_t"][lvl], params)
            for lvl in range(int(params["levels"])))

    def forward(self, x: Tensor) -> list[Tensor]:
        xs = []
        for block in self.level_blocks:
            x = block(x)
            xs.append(x)
        return xs


class Decoder(nn.Module):
    """Level outputs (coarsest last) -> (B, input_emb_width, T0)."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        cin, cout = int(params["input_emb_width"]), int(params["output_emb_width"])
        self.level_blocks = nn.ModuleList(
            DecoderLevel(cout, params["downs_t"][lvl], params["strides_t"][lvl], params)
            for lvl in range(int(params["levels"])))
        self.out = nn.Conv1d(cout, cin, 3, 1, 1)

    def forward(self, xs: list[Tensor]) -> Tensor:
        x = xs[-1]
        for lvl in reversed(range(len(self.level_blocks))):
            x = self.level_blocks[lvl](x)
            if lvl != 0:
                x = x + xs[lvl - 1]
        return self.out(x)


class CodebookLevel(nn.Module):
    """One codebook ``k`` (bins, width): nearest-entry quantisation."""

    def __init__(self, bins: int, width: int) -> None:
        super().__init__()
        self.register_buffer("k", torch.zeros(bins, width))

    def encode(self, x: Tensor) -> Tensor:
        """(B, C, T) -> codes (B, T); C = width, or 2 * width (the two halves are summed)."""
        b, c, t = x.shape
        width = self.k.shape[1]
        x = x.permute(0, 2, 1).reshape(-1, c)  # (B * T, C)
        if c == 2 * width:
            x = x[:, :width] + x[:, width:]
        elif c != width:
            raise InputError(f"F0 quantizer: encoder gives {c} channels, codebook width {width}")
        k = self.k.t()  # (width, bins)
        dist = (x ** 2).sum(-1, keepdim=True) - 2 * x @ k + (k ** 2).sum(0, keepdim=True)
        return dist.argmin(dim=-1).view(b, t)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes (B, T) -> codebook vectors (B, width, T)."""
        return self.k[codes].transpose(1, 2)


class Bottleneck(nn.Module):
    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(
            CodebookLevel(int(params["l_bins"]), int(params["emb_width"]))
            for _ in range(int(params["levels"])))


class F0Quantizer(nn.Module):
    """speech-resynthesis ``Quantizer``: ``encode`` F0 (B, 1, T0) -> level-0 codes
    (B, T0 / downsampling); ``decode`` codes -> F0 (B, 1, T0)."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        check_quantizer_params(params)
        self.encoder = Encoder(params["f0_encoder_params"])
        self.vq = Bottleneck(params["f0_vq_params"])
        self.decoder = Decoder(params["f0_decoder_params"])
        self.downsampling = downsampling(params["f0_encoder_params"])

    def encode(self, f0: Tensor) -> Tensor:
        """(B, 1, T0) -> level-0 codes (B, T0 // downsampling) int64."""
        return self.vq.level_blocks[0].encode(self.encoder.level_blocks[0](f0))

    def decode(self, codes: Tensor) -> Tensor:
        """Level-0 codes (B, T) -> reconstructed F0 input (B, 1, T * downsampling)."""
        return self.decoder([self.vq.level_blocks[0].decode(codes)])


def check_quantizer_params(params: Any, source: str = "f0_quantizer") -> None:
    """Raise InputError unless ``params`` is a usable original ``f0_quantizer`` dict."""
    if not isinstance(params, dict):
        raise InputError(f"{source}: expected a dict with f0_encoder_params, f0_vq_params, "
                         f"f0_decoder_params; got {params!r}")
    missing = [k for k in ("f0_encoder_params", "f0_vq_params", "f0_decoder_params")
               if not isinstance(params.get(k), dict)]
    if missing:
        raise InputError(f"{source}: missing {missing}; copy the f0_quantizer block of the "
                         f"config the vocoder was trained with")
    for name in ("f0_encoder_params", "f0_decoder_params"):
        p = params[name]
        unknown = set(p) - _BLOCK_KEYS - _LEVEL_KEYS
        need = (_LEVEL_KEYS | {"width", "depth"}) - set(p)
        if unknown or need:
            raise InputError(f"{source}.{name}: unknown keys {sorted(unknown)}, missing "
                             f"{sorted(need)}")
        if p.get("checkpoint_res"):
            raise InputError(f"{source}.{name}: checkpoint_res is set; the original cannot run "
                             f"that either, set it to 0")
        if not len(p["downs_t"]) == len(p["strides_t"]) == int(p["levels"]) >= 1:
            raise InputError(f"{source}.{name}: levels={p['levels']} but downs_t={p['downs_t']}, "
                             f"strides_t={p['strides_t']}")
    vq, enc = params["f0_vq_params"], params["f0_encoder_params"]
    if int(enc["input_emb_width"]) != 1:
        raise InputError(f"{source}: f0_encoder_params.input_emb_width="
                         f"{enc['input_emb_width']}; the F0 track has 1 channel")
    if int(enc["output_emb_width"]) not in (int(vq["emb_width"]), 2 * int(vq["emb_width"])):
        raise InputError(f"{source}: encoder output width {enc['output_emb_width']} does not fit "
                         f"codebook width {vq['emb_width']}")
