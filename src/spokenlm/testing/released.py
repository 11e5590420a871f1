"""Tiny replicas of released speech LMs in their exact on-disk layout: TWIST (an OPT or LLaMA
HF directory whose config has ``offset``) and Slam (slamkit's ``speech_language_model``
config around a Qwen2 base, weights under ``lm.``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


def _tiny_base(family: str, vocab: int, seed: int, **ids: int) -> Any:
    import transformers

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, max_position_embeddings=128, **ids)
    if family == "opt":
        cfg = transformers.OPTConfig(ffn_dim=64, word_embed_proj_dim=32, **common)
        return transformers.OPTForCausalLM(cfg)
    if family == "llama":
        cfg = transformers.LlamaConfig(intermediate_size=64, num_key_value_heads=2, **common)
        return transformers.LlamaForCausalLM(cfg)
    if family == "qwen2":
        cfg = transformers.Qwen2Config(intermediate_size=64, num_key_value_heads=1,
                                       tie_word_embeddings=True, **common)
        return transformers.Qwen2ForCausalLM(cfg)
    raise ValueError(family)


def save_tiny_twist(path: str | os.PathLike, family: str = "opt", n_units: int = 20,
                    offset: int = 4, seed: int = 0) -> tuple[Path, Any]:
    """A TWIST checkpoint: HF ``family`` (opt | llama) dir, ``config.offset``, vocab
    ``offset + n_units``. Returns (dir, the model as written, for reference forwards)."""
    ids = {"opt": dict(bos_token_id=2, eos_token_id=2, pad_token_id=1),
           "llama": dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)}[family]
    model = _tiny_base(family, offset + n_units, seed, **ids).eval()
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    cfg = json.loads((path / "config.json").read_text())
    cfg["offset"] = offset
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    return path, model


def save_tiny_slam(path: str | os.PathLike, n_units: int = 20, seed: int = 0
                   ) -> tuple[Path, Any]:
    """A slamkit ``UnitLM`` checkpoint over a tiny Qwen2: config.json with ``model_type``
    "speech_language_model", ``base_config`` and ``vocab_size = n_units + 2``; weights
    ``lm.*`` in model.safetensors (tied head not stored). Returns (dir, the base model)."""
    from safetensors.torch import save_file

    vocab = n_units + 2
    model = _tiny_base("qwen2", vocab, seed, bos_token_id=1, eos_token_id=1,
                       pad_token_id=0).eval()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    base = model.config.to_dict()
    base.pop("architectures", None)
    config = {"model_type": "speech_language_model", "architectures": ["UnitLM"],
              "base_model_name": "Qwen/Qwen2.5-0.5B", "base_config": base,
              "vocab_size": vocab, "twist_init": True, "use_cache": True,
              "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1,
              "tie_word_embeddings": True, "max_position_embeddings": 128}
    (path / "config.json").write_text(json.dumps(config, indent=2))
    state = {f"lm.{k}": v.contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    (path / "tokeniser_config.json").write_text(json.dumps(
        {"dedup": True, "bos_eos_token_id": 1, "pad_token_id": 0, "num_units": n_units,
         "load_fe": False}))
    return path, model
