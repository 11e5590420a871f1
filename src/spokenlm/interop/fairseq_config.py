"""fairseq HuBERT model config -> ``transformers.HubertConfig`` keyword arguments.

Field names and defaults follow fairseq's ``HubertConfig`` dataclass
(``fairseq/models/hubert/hubert.py``); a checkpoint stores only the fields it was trained
with, so missing ones take these defaults.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from ..common.errors import InputError

#: fairseq ``HubertConfig`` defaults for the fields the conversion reads.
FAIRSEQ_HUBERT_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_type": "transformer",
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "layer_norm_first": False,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "pos_conv_depth": 1,
    "mask_prob": 0.65,
    "mask_length": 10,
    "mask_channel_prob": 0.0,
    "mask_channel_length": 10,
}

#: fairseq activation_fn -> transformers hidden_act (gelu_accurate is the tanh approximation)
_ACTIVATIONS = {"gelu_accurate": "gelu_new", "gelu_fast": "gelu_new"}

_BINOPS = {ast.Add: operator.add, ast.Mult: operator.mul}


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Parse fairseq's ``conv_feature_layers`` string without ``eval``.

    ``"[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"`` -> seven ``(dim, kernel, stride)``
    tuples. Only list/tuple literals of ints, ``+`` and ``*`` are accepted.
    """

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"unsupported expression {ast.dump(node)}")

    try:
        layers = ev(ast.parse(str(spec), mode="eval"))
        out = [(int(d), int(k), int(s)) for d, k, s in layers]
    except (SyntaxError, ValueError, TypeError) as e:
        raise InputError(f"conv_feature_layers={spec!r} is not a list of (dim, kernel, stride) "
                         f"tuples ({e}); fix the checkpoint's cfg") from e
    if not out:
        raise InputError(f"conv_feature_layers={spec!r} has no layers")
    return out


def fairseq_value(cfg: dict[str, Any], key: str) -> Any:
    """``cfg[key]``, or fairseq's default when the checkpoint does not store it."""
    value = cfg.get(key)
    return FAIRSEQ_HUBERT_DEFAULTS.get(key) if value is None else value


def hf_hubert_kwargs(cfg: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """Keyword arguments of ``transformers.HubertConfig`` equivalent to fairseq ``cfg``.

    Raises :class:`InputError` (naming ``source``) for architectures HubertModel cannot
    express: conformer layers or a multi-layer positional conv.
    """
    v = lambda key: fairseq_value(cfg, key)  # noqa: E731
    if v("layer_type") != "transformer":
        raise InputError(f"{source}: layer_type={v('layer_type')!r}; only 'transformer' "
                         f"HuBERT models convert to transformers' HubertModel")
    if int(v("pos_conv_depth")) != 1:
        raise InputError(f"{source}: pos_conv_depth={v('pos_conv_depth')} (data2vec-style "
                         f"positional conv); HubertModel supports depth 1 only")
    mode = v("extractor_mode")
    if mode not in ("default", "layer_norm"):
        raise InputError(f"{source}: extractor_mode={mode!r}; expected 'default' or 'layer_norm'")
    conv = parse_conv_layers(v("conv_feature_layers"))
    act = v("activation_fn")
    return {
        "hidden_size": int(v("encoder_embed_dim")),
        "num_hidden_layers": int(v("encoder_layers")),
        "num_attention_heads": int(v("encoder_attention_heads")),
        "intermediate_size": int(v("encoder_ffn_embed_dim")),
        "hidden_act": _ACTIVATIONS.get(act, act),
        "hidden_dropout": float(v("dropout")),
        "attention_dropout": float(v("attention_dropout")),
        "activation_dropout": float(v("activation_dropout")),
        "feat_proj_dropout": float(v("dropout_input")),
        "layerdrop": float(v("encoder_layerdrop")),
        "layer_norm_eps": 1e-5,
        "feat_extract_norm": "group" if mode == "default" else "layer",
        "feat_extract_activation": "gelu",
        "conv_dim": [d for d, _, _ in conv],
        "conv_kernel": [k for _, k, _ in conv],
        "conv_stride": [s for _, _, s in conv],
        "conv_bias": bool(v("conv_bias")),
        "num_conv_pos_embeddings": int(v("conv_pos")),
        "num_conv_pos_embedding_groups": int(v("conv_pos_groups")),
        "do_stable_layer_norm": bool(v("layer_norm_first")),
        "feat_proj_layer_norm": True,
        "mask_time_prob": float(v("mask_prob")),
        "mask_time_length": int(v("mask_length")),
        "mask_feature_prob": float(v("mask_channel_prob")),
        "mask_feature_length": int(v("mask_channel_length")),
        "architectures": ["HubertModel"],
    }
