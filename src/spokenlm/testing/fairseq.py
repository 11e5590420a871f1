"""Tiny checkpoints in fairseq's original on-disk format, and a reference HuBERT forward.

:func:`tiny_fairseq_hubert` writes what fairseq's trainer writes for a HuBERT model
(``torch.save`` of ``{"cfg", "args", "model", "optimizer_history", "extra_state", ...}``,
state-dict keys as ``fairseq.models.hubert.HubertModel`` names them) with random weights.

:func:`reference_hubert_features` is fairseq's ``HubertModel.extract_features`` written from
the published architecture directly on that state dict with functional torch ops, so the
converter can be checked without fairseq installed:

1. conv feature extractor: per layer conv (no bias unless ``conv_bias``) -> norm -> GELU;
   norm = GroupNorm(C groups) in layer 0 only (``extractor_mode="default"``) or LayerNorm
   over channels in every layer (``"layer_norm"``);
2. LayerNorm over the features (``layer_norm``), ``post_extract_proj``;
3. ``x + GELU(pos_conv(x))``: weight-normed (dim 2) grouped conv, padding ``conv_pos // 2``,
   last frame dropped when ``conv_pos`` is even;
4. ``encoder.layer_norm`` when not ``layer_norm_first``;
5. transformer layers, post-LN (base) or pre-LN (``layer_norm_first``, large); the output
   of layer ``L`` (no final LayerNorm), as ``extract_features(output_layer=L)``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..interop.fairseq_config import parse_conv_layers

CONV_LAYERS = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2"
#: mHuBERT-25Hz (TWIST, Slam): one more stride-2 conv, a 640-sample hop (25 Hz frames)
CONV_LAYERS_25HZ = "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 3"


def tiny_hubert_cfg(*, layers: int = 2, embed_dim: int = 32, heads: int = 2,
                    layer_norm_first: bool = False, extractor_mode: str = "default",
                    conv_layers: str = CONV_LAYERS, conv_pos: int = 16, conv_pos_groups: int = 4,
                    conv_bias: bool = False, final_dim: int = 8, label_rate: float = 50.0
                    ) -> dict[str, Any]:
    """A fairseq ``HubertConfig`` (model section of ``cfg``) for a tiny model."""
    return {
        "_name": "hubert", "label_rate": label_rate, "extractor_mode": extractor_mode,
        "encoder_layers": layers, "encoder_embed_dim": embed_dim,
        "encoder_ffn_embed_dim": 2 * embed_dim, "encoder_attention_heads": heads,
        "activation_fn": "gelu", "layer_type": "transformer", "dropout": 0.1,
        "attention_dropout": 0.1, "activation_dropout": 0.0, "encoder_layerdrop": 0.05,
        "dropout_input": 0.1, "dropout_features": 0.1, "final_dim": final_dim,
        "untie_final_proj": False, "layer_norm_first": layer_norm_first,
        "conv_feature_layers": conv_layers, "conv_bias": conv_bias, "logit_temp": 0.1,
        "target_glu": False, "feature_grad_mult": 0.1, "mask_length": 10, "mask_prob": 0.8,
        "mask_selection": "static", "mask_other": 0.0, "no_mask_overlap": False,
        "mask_min_space": 1, "mask_channel_length": 10, "mask_channel_prob": 0.0,
        "mask_channel_selection": "static", "mask_channel_other": 0.0,
        "no_mask_channel_overlap": False, "mask_channel_min_space": 1, "conv_pos": conv_pos,
        "conv_pos_groups": conv_pos_groups, "latent_temp": [2.0, 0.5, 0.999995],
        "skip_masked": False, "skip_nomask": False, "checkpoint_activations": False,
    }


def tiny_hubert_state(cfg: dict[str, Any], n_classes: int = 20, seed: int = 0
                      ) -> dict[str, torch.Tensor]:
    """Random weights under fairseq HuBERT's state-dict keys for model ``cfg``."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def norm(prefix: str, dim: int) -> None:
        state[f"{prefix}.weight"] = 1.0 + rnd(dim, scale=0.1)
        state[f"{prefix}.bias"] = rnd(dim, scale=0.1)

    def linear(prefix: str, d_out: int, d_in: int) -> None:
        state[f"{prefix}.weight"] = rnd(d_out, d_in, scale=d_in ** -0.5)
        state[f"{prefix}.bias"] = rnd(d_out, scale=0.1)

    state: dict[str, torch.Tensor] = {}
    embed, ffn = cfg["encoder_embed_dim"], cfg["encoder_ffn_embed_dim"]
    conv = parse_conv_layers(cfg["conv_feature_layers"])
    state["mask_emb"] = torch.rand(embed, generator=g)
    c_in = 1
    for i, (dim, k, _) in enumerate(conv):
        state[f"feature_extractor.conv_layers.{i}.0.weight"] = rnd(dim, c_in, k,
                                                                   scale=(c_in * k) ** -0.5)
        if cfg["conv_bias"]:
            state[f"feature_extractor.conv_layers.{i}.0.bias"] = rnd(dim, scale=0.1)
        if cfg["extractor_mode"] == "layer_norm":
            norm(f"feature_extractor.conv_layers.{i}.2.1", dim)
        elif i == 0:
            norm(f"feature_extractor.conv_layers.{i}.2", dim)
        c_in = dim
    norm("layer_norm", c_in)
    if c_in != embed:
        linear("post_extract_proj", embed, c_in)
    k, groups = cfg["conv_pos"], cfg["conv_pos_groups"]
    state["encoder.pos_conv.0.bias"] = rnd(embed, scale=0.1)
    state["encoder.pos_conv.0.weight_g"] = 0.5 + rnd(1, 1, k).abs()
    state["encoder.pos_conv.0.weight_v"] = rnd(embed, embed // groups, k)
    norm("encoder.layer_norm", embed)
    for n in range(cfg["encoder_layers"]):
        p = f"encoder.layers.{n}"
        for proj in ("k", "v", "q", "out"):
            linear(f"{p}.self_attn.{proj}_proj", embed, embed)
        norm(f"{p}.self_attn_layer_norm", embed)
        linear(f"{p}.fc1", ffn, embed)
        linear(f"{p}.fc2", embed, ffn)
        norm(f"{p}.final_layer_norm", embed)
    final_dim = cfg["final_dim"] or embed
    state["label_embs_concat"] = rnd(n_classes, final_dim)
    linear("final_proj", final_dim, embed)
    return state


def tiny_fairseq_hubert(path: str | os.PathLike, *, normalize: bool = False,
                        cfg_style: str = "dict", seed: int = 0, **cfg_kwargs: Any) -> Path:
    """Write a tiny random fairseq HuBERT checkpoint to ``path`` (a ``.pt`` file).

    ``cfg_style="dict"`` stores ``cfg`` as plain dicts (fairseq >= 0.10.2 trainer);
    ``"args"`` stores a legacy ``argparse.Namespace`` under ``args`` with ``cfg`` None.
    ``cfg_kwargs`` go to :func:`tiny_hubert_cfg`.
    """
    model_cfg = tiny_hubert_cfg(**cfg_kwargs)
    task_cfg = {"_name": "hubert_pretraining", "data": "/data/librispeech", "labels": ["km"],
                "label_dir": "/data/labels", "label_rate": model_cfg["label_rate"],
                "sample_rate": 16000,
                "normalize": normalize, "enable_padding": False, "max_sample_size": 250000,
                "min_sample_size": 32000, "single_target": False, "random_crop": True,
                "pad_audio": False}
    ckpt: dict[str, Any] = {
        "args": None,
        "cfg": {"_name": None, "common": {"fp16": True, "log_interval": 200, "seed": 1337},
                "model": model_cfg, "task": task_cfg,
                "criterion": {"_name": "hubert", "pred_masked_weight": 1.0},
                "optimization": {"max_update": 400000, "lr": [0.0005]}},
        "model": tiny_hubert_state(model_cfg, seed=seed),
        "optimizer_history": [{"criterion_name": "HubertCriterion",
                               "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 2.5}, "num_updates": 400000}],
        "extra_state": {"epoch": 1, "previous_training_time": 12345.6},
        "last_optimizer_state": None,
    }
    if cfg_style == "args":
        flat = {**task_cfg, **model_cfg}  # one flat namespace, as fairseq < 0.10 wrote
        flat.pop("_name")
        ckpt["args"] = argparse.Namespace(arch="hubert", task="hubert_pretraining", **flat)
        ckpt["cfg"] = None
    elif cfg_style != "dict":
        raise ValueError(f"cfg_style={cfg_style!r}: use 'dict' or 'args'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def _layer(x: torch.Tensor, s: dict[str, torch.Tensor], p: str, heads: int,
           pre_ln: bool) -> torch.Tensor:
    """One fairseq ``TransformerSentenceEncoderLayer`` (eval mode), (B, T, E) -> (B, T, E)."""
    def ln(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(h, h.shape[-1:], s[f"{p}.{name}.weight"], s[f"{p}.{name}.bias"], 1e-5)

    def lin(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(h, s[f"{p}.{name}.weight"], s[f"{p}.{name}.bias"])

    def attn(h: torch.Tensor) -> torch.Tensor:
        b, t, e = h.shape
        d = e // heads
        q = lin(h, "self_attn.q_proj") * d ** -0.5
        k, v = lin(h, "self_attn.k_proj"), lin(h, "self_attn.v_proj")
        q, k, v = (z.view(b, t, heads, d).transpose(1, 2) for z in (q, k, v))
        w = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return lin((w @ v).transpose(1, 2).reshape(b, t, e), "self_attn.out_proj")

    def ffn(h: torch.Tensor) -> torch.Tensor:
        return lin(F.gelu(lin(h, "fc1")), "fc2")

    if pre_ln:
        x = x + attn(ln(x, "self_attn_layer_norm"))
        return x + ffn(ln(x, "final_layer_norm"))
    x = ln(x + attn(x), "self_attn_layer_norm")
    return ln(x + ffn(x), "final_layer_norm")


@torch.no_grad()
def reference_hubert_features(state: dict[str, torch.Tensor], cfg: dict[str, Any],
                              wav: torch.Tensor, layer: int) -> torch.Tensor:
    """fairseq ``HubertModel.extract_features(wav, output_layer=layer)`` in eval mode.

    Args:
        state: fairseq HuBERT state dict; cfg: its model config (all fields present).
        wav: (B, T) float audio (already normalised if the task normalises).
        layer: 0 = input of the first transformer layer, L = output of layer L.
    Returns:
        (B, F, encoder_embed_dim) float32.
    """
    s = {k: v.float() for k, v in state.items()}
    x = wav.float()[:, None]  # (B, 1, T)
    for i, (dim, _, stride) in enumerate(parse_conv_layers(cfg["conv_feature_layers"])):
        pre = f"feature_extractor.conv_layers.{i}"
        x = F.conv1d(x, s[f"{pre}.0.weight"], s.get(f"{pre}.0.bias"), stride=stride)
        if cfg["extractor_mode"] == "layer_norm":
            x = F.layer_norm(x.transpose(1, 2), (dim,), s[f"{pre}.2.1.weight"],
                             s[f"{pre}.2.1.bias"], 1e-5).transpose(1, 2)
        elif i == 0:
            x = F.group_norm(x, dim, s[f"{pre}.2.weight"], s[f"{pre}.2.bias"], 1e-5)
        x = F.gelu(x)
    x = x.transpose(1, 2)  # (B, F, C)
    x = F.layer_norm(x, x.shape[-1:], s["layer_norm.weight"], s["layer_norm.bias"], 1e-5)
    if "post_extract_proj.weight" in s:
        x = F.linear(x, s["post_extract_proj.weight"], s["post_extract_proj.bias"])
    k = cfg["conv_pos"]
    v, g = s["encoder.pos_conv.0.weight_v"], s["encoder.pos_conv.0.weight_g"]
    weight = g * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()  # weight norm over dim 2
    pos = F.conv1d(x.transpose(1, 2), weight, s["encoder.pos_conv.0.bias"], padding=k // 2,
                   groups=cfg["conv_pos_groups"])
    if k % 2 == 0:
        pos = pos[..., :-1]
    x = x + F.gelu(pos).transpose(1, 2)
    if not cfg["layer_norm_first"]:
        x = F.layer_norm(x, x.shape[-1:], s["encoder.layer_norm.weight"],
                         s["encoder.layer_norm.bias"], 1e-5)
    for n in range(layer):
        x = _layer(x, s, f"encoder.layers.{n}", cfg["encoder_attention_heads"],
                   cfg["layer_norm_first"])
    return x


def fairseq_normalize(wav: torch.Tensor) -> torch.Tensor:
    """fairseq's task-level ``normalize``: ``F.layer_norm(wav, wav.shape)`` per utterance."""
    return torch.stack([F.layer_norm(w, w.shape) for w in wav])


__all__ = ["CONV_LAYERS", "fairseq_normalize", "reference_hubert_features", "tiny_fairseq_hubert",
           "tiny_hubert_cfg", "tiny_hubert_state"]
