"""Unit LM architecture: named LLaMA sizes and their translation to ``transformers.LlamaConfig``.

The unit vocabulary is ``n_units`` units at ids ``unit_offset + u`` (offset 0 for a model
trained from scratch) followed by three specials: BOS = K, EOS = K + 1, PAD = K + 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..common.packed import N_SPECIALS  # BOS, EOS, PAD; defined once, with the packed format

__all__ = ["N_SPECIALS", "SIZES", "LMConfig", "build_llama_config", "special_ids"]


@dataclass(frozen=True)
class LMConfig:
    """A LLaMA-architecture decoder; build with :meth:`named` and override any field."""

    n_layers: int = 4
    hidden: int = 256
    heads: int = 4
    kv_heads: int | None = None  # None: same as heads (no grouped-query attention)
    intermediate: int = 768
    max_positions: int = 2048
    rope_theta: float = 10000.0
    dropout: float = 0.0  # attention dropout (LLaMA has no residual dropout)
    tie_word_embeddings: bool = True
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads={self.heads} is not divisible by kv_heads={self.kv_heads}")

    @classmethod
    def named(cls, size: str, **overrides: Any) -> LMConfig:
        """The preset ``size`` (see :data:`SIZES`) with non-None ``overrides`` applied."""
        if size not in SIZES:
            raise ValueError(f"size={size!r}: choose one of {', '.join(SIZES)}")
        return dataclasses.replace(SIZES[size], **{k: v for k, v in overrides.items()
                                                   if v is not None})

    def n_params(self, vocab_size: int) -> int:
        """Parameter count of the model this config builds (for logs and reports)."""
        head_dim = self.hidden // self.heads
        kv = (self.kv_heads or self.heads) * head_dim
        attn = 2 * self.hidden * self.hidden + 2 * self.hidden * kv
        mlp = 3 * self.hidden * self.intermediate
        emb = vocab_size * self.hidden * (1 if self.tie_word_embeddings else 2)
        return self.n_layers * (attn + mlp + 2 * self.hidden) + emb + self.hidden


#: Named sizes. "tiny" is for tests, "small" for CPU demos (minutes), the rest for GPUs.
SIZES: dict[str, LMConfig] = {
    "tiny": LMConfig(n_layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128,
                     max_positions=1024),
    "small": LMConfig(n_layers=4, hidden=256, heads=4, intermediate=768, max_positions=2048),
    "base": LMConfig(n_layers=12, hidden=768, heads=12, intermediate=2048,
                     max_positions=4096),
    "350m": LMConfig(n_layers=24, hidden=1024, heads=16, intermediate=2816,
                     max_positions=4096),
    "1b": LMConfig(n_layers=22, hidden=2048, heads=16, kv_heads=8, intermediate=5504,
                   max_positions=4096, tie_word_embeddings=False),
}


def special_ids(n_units: int, unit_offset: int = 0) -> dict[str, int]:
    """BOS/EOS/PAD ids of a model trained from scratch: the three ids after the units."""
    k = unit_offset + n_units
    return {"bos_id": k, "eos_id": k + 1, "pad_id": k + 2}


def build_llama_config(n_units: int, cfg: LMConfig) -> Any:
    """``transformers.LlamaConfig`` over ``n_units`` units + BOS/EOS/PAD (vocab K + 3)."""
    from transformers import LlamaConfig

    ids = special_ids(n_units)
    return LlamaConfig(
        vocab_size=n_units + N_SPECIALS,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads or cfg.heads,
        max_position_embeddings=cfg.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        attention_dropout=cfg.dropout,
        rms_norm_eps=cfg.rms_norm_eps,
        initializer_range=cfg.initializer_range,
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=ids["bos_id"],
        eos_token_id=ids["eos_id"],
        pad_token_id=ids["pad_id"],
    )
