"""Model sizes for HuBERT-style pretraining, as ``transformers.HubertConfig`` presets.

The conv front-end always has HuBERT's kernels (10,3,3,3,3,2,2) and strides
(5,2,2,2,2,2,2): receptive field 400 samples, stride 320, so ``T`` samples give
``floor((T - 400) / 320) + 1`` frames at 50 Hz like every spokenlm encoder. ``base`` is
HuBERT Base (95M parameters); ``tiny`` and ``small`` shrink the widths and depth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)

SSLSize = Literal["tiny", "small", "base"]

#: preset -> (conv channels, hidden, layers, heads, MLP width, pos-conv kernel, pos groups,
#: final_dim of the prediction head)
PRESETS: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "tiny": (64, 96, 3, 4, 384, 32, 4, 32),
    "small": (256, 256, 6, 4, 1024, 64, 8, 128),
    "base": (512, 768, 12, 12, 3072, 128, 16, 256),
}


@dataclass
class HeadConfig:
    """The pretraining head (not part of the HF encoder): ``final_proj`` + label embeddings."""

    n_clusters: int = 100
    final_dim: int = 256
    temperature: float = 0.1
    #: loss weight of unmasked frames (HuBERT Base: 0, masked frames only)
    unmasked_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hubert_config(size: SSLSize = "tiny", *, dropout: float | None = None,
                  mask_prob: float = 0.65, mask_length: int = 10, **overrides: Any) -> Any:
    """A ``transformers.HubertConfig`` for preset ``size`` (overrides win).

    HuBERT Base layout: group-norm first conv, LayerNorm before the transformer stack,
    feature projection with LayerNorm. ``mask_prob`` / ``mask_length`` are stored as
    ``mask_time_prob`` / ``mask_time_length`` (so ``masked_spec_embed`` exists and later
    fine-tuning can reuse them).
    """
    from transformers import HubertConfig

    if size not in PRESETS:
        raise ValueError(f"size={size!r}: choose one of {sorted(PRESETS)}")
    conv, hidden, layers, heads, ffn, pos_k, pos_g, _ = PRESETS[size]
    drop = (0.0 if size == "tiny" else 0.1) if dropout is None else dropout
    kwargs: dict[str, Any] = dict(
        conv_dim=(conv,) * 7, conv_kernel=CONV_KERNEL, conv_stride=CONV_STRIDE, conv_bias=False,
        feat_extract_norm="group", hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, num_conv_pos_embeddings=pos_k,
        num_conv_pos_embedding_groups=pos_g, do_stable_layer_norm=False,
        feat_proj_layer_norm=True, hidden_dropout=drop, attention_dropout=drop,
        activation_dropout=0.0, feat_proj_dropout=drop, layerdrop=0.0, final_dropout=drop,
        mask_time_prob=mask_prob, mask_time_length=mask_length, mask_time_min_masks=2,
        mask_feature_prob=0.0)
    kwargs.update(overrides)
    return HubertConfig(**kwargs)


def default_final_dim(size: SSLSize) -> int:
    return PRESETS[size][7]
