"""Tiny speech-resynthesis unit HiFi-GANs in the original on-disk format, and a reference
forward of the original ``CodeGenerator`` written with functional ops on its state dict.

Key names, shapes and the forward follow facebookresearch/speech-resynthesis
(``models.py``: ``CodeGenerator``, ``Quantizer``; ``modules/jukebox.py``, ``modules/vq.py``,
``modules/resnet.py``), independently of spokenlm's modules, so that tests compare
spokenlm's imported model with what the original computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

#: a tiny units-only config (``hubert100_lut.json``'s fields)
TINY_CONFIG: dict[str, Any] = {
    "resblock": "1", "upsample_rates": [5, 4, 4, 2, 2], "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 32, "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3], [1, 3]], "num_embeddings": 12, "embedding_dim": 16,
    "model_in_dim": 16, "segment_size": 8960, "code_hop_size": 320, "f0": False,
    "multispkr": False, "sampling_rate": 16000, "num_mels": 80, "n_fft": 1024,
    "dur_prediction_weight": 1.0,
    "dur_predictor_params": {"encoder_embed_dim": 16, "var_pred_hidden_dim": 16,
                             "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
}

_LEVEL = {"input_emb_width": 1, "output_emb_width": 8, "levels": 1, "downs_t": [4],
          "strides_t": [2], "width": 4, "depth": 2, "m_conv": 1.0, "dilation_growth_rate": 3}
#: a tiny ``f0_quantizer`` block (the published one with small widths)
TINY_QUANTIZER: dict[str, Any] = {
    "f0_vq_params": {"l_bins": 6, "emb_width": 8, "mu": 0.99, "levels": 1},
    "f0_encoder_params": dict(_LEVEL), "f0_decoder_params": dict(_LEVEL)}


def f0_config(quantizer: bool, speakers: int = 0, **f0_options: Any) -> dict[str, Any]:
    """TINY_CONFIG made F0-conditioned: raw F0 (rates multiply to 80) or through the F0
    quantizer (``f0_quantizer_path`` relative to a speech-resynthesis checkout)."""
    h = {k: v for k, v in TINY_CONFIG.items() if k != "dur_predictor_params"}
    e = h["embedding_dim"]
    h.update(f0=True, f0_normalize=True, f0_median=False, f0_interp=False, f0_feats=False,
             f0_stats="datasets/tiny/f0_stats.pth", multispkr="_" if speakers else False)
    h.update(f0_options)
    extra = 2 if h["f0_feats"] and h["f0_normalize"] else 0
    if quantizer:
        h.update(f0_quantizer_path="checkpoints/tiny_f0_vq/g_00400000",
                 f0_quantizer=json.loads(json.dumps(TINY_QUANTIZER)))
        h["model_in_dim"] = e * (3 if speakers else 2) + extra
    else:
        h.update(upsample_rates=[5, 4, 2, 2], upsample_kernel_sizes=[11, 8, 4, 4])
        h["model_in_dim"] = e * (2 if speakers else 1) + 1 + extra
    return h


def _wn(g: torch.Generator, prefix: str, shape: tuple[int, ...], state: dict,
        gain: float = 0.2) -> None:
    state[f"{prefix}.weight_v"] = torch.randn(*shape, generator=g)
    state[f"{prefix}.weight_g"] = gain + torch.rand(shape[0], 1, 1, generator=g)
    state[f"{prefix}.bias"] = 0.1 * torch.randn(shape[1] if "ups" in prefix else shape[0],
                                                generator=g)


def _conv(g: torch.Generator, prefix: str, shape: tuple[int, ...], state: dict,
          transposed: bool = False) -> None:
    state[f"{prefix}.weight"] = torch.randn(*shape, generator=g) / (shape[1] * shape[2]) ** 0.5
    state[f"{prefix}.bias"] = 0.1 * torch.randn(shape[1] if transposed else shape[0], generator=g)


def quantizer_state(params: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the keys of the original ``Quantizer`` (scalar strides): encoder
    ``level_blocks.L.model.{i: Sequential(conv, Resnet1D), down: conv}``, codebook
    ``vq.level_blocks.L.k``, decoder ``level_blocks.L.model.{0: conv, i: Sequential(Resnet1D,
    conv_transpose)}`` and ``decoder.out``. The codebook is filled by :func:`init_codebook`."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {}
    for part in ("encoder", "decoder"):
        p = params[f"f0_{part}_params"]
        cin, cout, w = p["input_emb_width"], p["output_emb_width"], p["width"]
        for lvl in range(p["levels"]):
            down, stride = p["downs_t"][lvl], p["strides_t"][lvl]
            base = f"{part}.level_blocks.{lvl}.model"
            first = cin if lvl == 0 else cout
            if part == "decoder":
                _conv(g, f"{base}.0", (w, cout, 3), s)
            for i in range(down):
                blk = f"{base}.{i + 1 if part == 'decoder' else i}"
                res = f"{blk}.{0 if part == 'decoder' else 1}"
                if part == "encoder":
                    _conv(g, f"{blk}.0", (w, first if i == 0 else w, 2 * stride), s)
                for d in range(p["depth"]):
                    _conv(g, f"{res}.model.{d}.model.1", (int(p["m_conv"] * w), w, 3), s)
                    _conv(g, f"{res}.model.{d}.model.3", (w, int(p["m_conv"] * w), 1), s)
                if part == "decoder":
                    _conv(g, f"{blk}.1", (w, cout if i == down - 1 else w, 2 * stride), s,
                          transposed=True)
            if part == "encoder":
                _conv(g, f"{base}.{down}", (cout, w, 3), s)
        if part == "decoder":
            _conv(g, "decoder.out", (cin, cout, 3), s)
    vq = params["f0_vq_params"]
    for lvl in range(vq["levels"]):
        s[f"vq.level_blocks.{lvl}.k"] = torch.zeros(vq["l_bins"], vq["emb_width"])
    return s


@torch.no_grad()
def reference_f0_encoder(s: dict[str, torch.Tensor], params: dict[str, Any], f0: torch.Tensor,
                         prefix: str = "") -> torch.Tensor:
    """Level 0 of the jukebox ``Encoder``: F0 (B, 1, T0) -> (B, C, T0 / stride^down)."""
    p = params["f0_encoder_params"]
    base = f"{prefix}encoder.level_blocks.0.model"
    x, stride = f0, p["strides_t"][0]
    for i in range(p["downs_t"][0]):
        x = F.conv1d(x, s[f"{base}.{i}.0.weight"], s[f"{base}.{i}.0.bias"], stride=stride,
                     padding=stride // 2)
        for d in range(p["depth"]):
            dil, q = p.get("dilation_growth_rate", 1) ** d, f"{base}.{i}.1.model.{d}.model"
            h = F.conv1d(F.relu(x), s[f"{q}.1.weight"], s[f"{q}.1.bias"], padding=dil,
                         dilation=dil)
            x = x + F.conv1d(F.relu(h), s[f"{q}.3.weight"], s[f"{q}.3.bias"])
    down = p["downs_t"][0]
    return F.conv1d(x, s[f"{base}.{down}.weight"], s[f"{base}.{down}.bias"], padding=1)


@torch.no_grad()
def reference_f0_codes(s: dict[str, torch.Tensor], params: dict[str, Any], f0: torch.Tensor,
                       prefix: str = "") -> torch.Tensor:
    """``Bottleneck`` level 0: nearest codebook entry of each encoder vector -> (B, T)."""
    x = reference_f0_encoder(s, params, f0, prefix)
    b, c, t = x.shape
    k = s[f"{prefix}vq.level_blocks.0.k"]
    flat = x.transpose(1, 2).reshape(-1, c)
    if c == 2 * k.shape[1]:
        flat = flat[:, :k.shape[1]] + flat[:, k.shape[1]:]
    return ((flat[:, None, :] - k[None]) ** 2).sum(-1).argmin(-1).view(b, t)


def init_codebook(s: dict[str, torch.Tensor], params: dict[str, Any], seed: int = 0,
                  prefix: str = "") -> None:
    """Fill the codebook with encoder outputs of random F0 tracks (so codes vary)."""
    g = torch.Generator().manual_seed(seed)
    bins = s[f"{prefix}vq.level_blocks.0.k"].shape[0]
    f0 = torch.randn(max(4, bins), 1, 64, generator=g).cumsum(-1) * 0.3  # 4 codes a row
    x = reference_f0_encoder(s, params, f0, prefix)
    x = x.transpose(1, 2).reshape(-1, x.shape[1])
    k = s[f"{prefix}vq.level_blocks.0.k"]
    pick = torch.randperm(len(x), generator=g)[:k.shape[0]]
    s[f"{prefix}vq.level_blocks.0.k"] = x[pick].clone()


def original_state(h: dict[str, Any], n_speakers: int = 0, dur: bool = True,
                   seed: int = 0, gain: float = 0.2) -> dict[str, torch.Tensor]:
    """Random ``CodeGenerator`` weights under the original keys (``dict``, ``spkr``, weight-
    normed convs, ``dur_predictor``; ``f0_dict`` + ``quantizer.*`` with an F0 quantizer).
    Conv norms are ``gain + U(0, 1)``: 0.5 gives a lively but unsaturated tiny output."""
    g = torch.Generator().manual_seed(seed)
    e, ch = h["embedding_dim"], h["upsample_initial_channel"]
    s: dict[str, torch.Tensor] = {"dict.weight": torch.randn(h["num_embeddings"], e, generator=g)}
    if n_speakers:
        s["spkr.weight"] = torch.randn(n_speakers, e, generator=g)
    _wn(g, "conv_pre", (ch, h["model_in_dim"], 7), s, gain)
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        c_in, c_out = ch // 2 ** i, ch // 2 ** (i + 1)
        _wn(g, f"ups.{i}", (c_in, c_out, k), s, gain)  # ConvTranspose1d weight: (in, out, k)
        for j, (kr, dil) in enumerate(zip(h["resblock_kernel_sizes"],
                                          h["resblock_dilation_sizes"])):
            n = i * len(h["resblock_kernel_sizes"]) + j
            for m in range(len(dil)):
                _wn(g, f"resblocks.{n}.convs1.{m}", (c_out, c_out, kr), s, gain)
                _wn(g, f"resblocks.{n}.convs2.{m}", (c_out, c_out, kr), s, gain)
    _wn(g, "conv_post", (1, ch // 2 ** len(h["upsample_rates"]), 7), s, gain)
    if dur:
        hid = h["dur_predictor_params"]["var_pred_hidden_dim"]
        for name, shape in (("conv1.0", (hid, e, 3)), ("conv2.0", (hid, hid, 3))):
            s[f"dur_predictor.{name}.weight"] = 0.3 * torch.randn(*shape, generator=g)
            s[f"dur_predictor.{name}.bias"] = 0.1 * torch.randn(hid, generator=g)
        for name in ("ln1", "ln2"):
            s[f"dur_predictor.{name}.weight"] = 1 + 0.1 * torch.randn(hid, generator=g)
            s[f"dur_predictor.{name}.bias"] = 0.1 * torch.randn(hid, generator=g)
        s["dur_predictor.proj.weight"] = 0.3 * torch.randn(1, hid, generator=g)
        s["dur_predictor.proj.bias"] = torch.tensor([1.0])
    if h.get("f0_quantizer_path"):
        q = h["f0_quantizer"]
        s["f0_dict.weight"] = torch.randn(q["f0_vq_params"]["l_bins"], e, generator=g)
        s.update({f"quantizer.{k}": v for k, v in quantizer_state(q, seed + 1).items()})
        init_codebook(s, q, seed + 2, prefix="quantizer.")
    return s


def write_original(folder: Path, h: dict[str, Any], state: dict[str, torch.Tensor],
                   name: str = "g_00400000") -> Path:
    """``torch.save({"generator": state}, folder/name)`` + ``folder/config.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": state}, folder / name)
    (folder / "config.json").write_text(json.dumps(h))
    return folder / name


def _upsample(signal: torch.Tensor, frames: int) -> torch.Tensor:
    """The original ``CodeGenerator._upsample`` (exact multiples)."""
    b, c, t = signal.shape
    return signal.unsqueeze(3).repeat(1, 1, 1, frames // t).view(b, c, frames)


@torch.no_grad()
def reference_generator(s: dict[str, torch.Tensor], h: dict[str, Any], code: torch.Tensor,
                        spkr: torch.Tensor | None = None, f0: torch.Tensor | None = None,
                        f0_stats: torch.Tensor | None = None) -> torch.Tensor:
    """``CodeGenerator.forward(code=, f0=, spkr=, f0_stats=)``: code (B, F), F0 (B, 1, 4F),
    spkr (B, 1), f0_stats (B, 2) -> (B, 1, F * 320)."""
    def w(p: str) -> torch.Tensor:
        v, g = s[f"{p}.weight_v"], s[f"{p}.weight_g"]
        return g * v / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()

    x = s["dict.weight"][code].transpose(1, 2)
    if h.get("f0"):
        if h.get("f0_quantizer_path"):
            codes = reference_f0_codes(s, h["f0_quantizer"], f0, prefix="quantizer.")
            f0 = s["f0_dict.weight"][codes].transpose(1, 2)
        if x.shape[-1] < f0.shape[-1]:
            x = _upsample(x, f0.shape[-1])
        else:
            f0 = _upsample(f0, x.shape[-1])
        x = torch.cat([x, f0], 1)
    if spkr is not None:  # (B, 1) as the dataset gives it, or (B,)
        spkr = spkr.view(-1, 1)
        x = torch.cat([x, _upsample(s["spkr.weight"][spkr].transpose(1, 2), x.shape[-1])], 1)
    if f0_stats is not None:
        x = torch.cat([x, _upsample(f0_stats[:, :, None], x.shape[-1])], 1)
    x = F.conv1d(x, w("conv_pre"), s["conv_pre.bias"], padding=3)
    nk = len(h["resblock_kernel_sizes"])
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), w(f"ups.{i}"), s[f"ups.{i}.bias"], u,
                               padding=(k - u) // 2)
        xs = 0
        for j, (kr, dil) in enumerate(zip(h["resblock_kernel_sizes"],
                                          h["resblock_dilation_sizes"])):
            y, p = x, f"resblocks.{i * nk + j}"
            for m, d in enumerate(dil):
                t = F.conv1d(F.leaky_relu(y, 0.1), w(f"{p}.convs1.{m}"), s[f"{p}.convs1.{m}.bias"],
                             dilation=d, padding=(kr * d - d) // 2)
                t = F.conv1d(F.leaky_relu(t, 0.1), w(f"{p}.convs2.{m}"), s[f"{p}.convs2.{m}.bias"],
                             padding=(kr - 1) // 2)
                y = t + y
            xs = xs + y
        x = xs / nk
    return torch.tanh(F.conv1d(F.leaky_relu(x), w("conv_post"), s["conv_post.bias"], padding=3))


@torch.no_grad()
def reference_durations(s: dict[str, torch.Tensor], code: torch.Tensor) -> torch.Tensor:
    """``VariancePredictor`` on the unit embeddings -> clamp(round(exp(log d) - 1), 1)."""
    x = s["dict.weight"][code]
    for conv, ln in (("conv1.0", "ln1"), ("conv2.0", "ln2")):
        x = F.relu(F.conv1d(x.transpose(1, 2), s[f"dur_predictor.{conv}.weight"],
                            s[f"dur_predictor.{conv}.bias"], padding=1)).transpose(1, 2)
        x = F.layer_norm(x, x.shape[-1:], s[f"dur_predictor.{ln}.weight"],
                         s[f"dur_predictor.{ln}.bias"])
    log_d = F.linear(x, s["dur_predictor.proj.weight"], s["dur_predictor.proj.bias"])[..., 0]
    return torch.clamp(torch.round(torch.exp(log_d) - 1).long(), min=1)
