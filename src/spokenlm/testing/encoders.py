"""Tiny random Hugging Face SSL encoders saved like real ones (for tests; no network).

The conv front-end keeps the real models' kernels and strides, (10,3,3,3,3,2,2) and
(5,2,2,2,2,2,2): receptive field 400 samples, total stride 320 (50 Hz), but with a few
channels, so frame counts match real HuBERT / wav2vec 2.0 exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)


def _tiny_kwargs(num_hidden_layers: int, hidden_size: int, conv_dim: int,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=2,
        intermediate_size=2 * hidden_size, conv_dim=(conv_dim,) * 7, conv_kernel=CONV_KERNEL,
        conv_stride=CONV_STRIDE, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, layerdrop=0.0)
    kwargs.update(overrides)
    return kwargs


def tiny_hubert_dir(path: str | os.PathLike, num_hidden_layers: int = 4, hidden_size: int = 32,
                    conv_dim: int = 16, seed: int = 0, **overrides: Any) -> Path:
    """Save a random ``HubertModel`` (HuBERT Base layout: group-norm conv, pre-stack
    LayerNorm) with ``save_pretrained`` to ``path``; returns ``path``."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    config = HubertConfig(**_tiny_kwargs(num_hidden_layers, hidden_size, conv_dim, overrides))
    HubertModel(config).eval().save_pretrained(str(path))
    return Path(path)


def tiny_wav2vec2_dir(path: str | os.PathLike, num_hidden_layers: int = 4, hidden_size: int = 32,
                      conv_dim: int = 16, seed: int = 0, stable_layer_norm: bool = True,
                      **overrides: Any) -> Path:
    """Save a random ``Wav2Vec2Model`` to ``path``; ``stable_layer_norm`` gives the
    wav2vec 2.0 Large layout (layer-norm convs, LayerNorm after the stack)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(seed)
    if stable_layer_norm:
        overrides = {"do_stable_layer_norm": True, "feat_extract_norm": "layer", **overrides}
    config = Wav2Vec2Config(**_tiny_kwargs(num_hidden_layers, hidden_size, conv_dim, overrides))
    Wav2Vec2Model(config).eval().save_pretrained(str(path))
    return Path(path)
