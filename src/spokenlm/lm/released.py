"""Released speech LMs loaded as they are: TWIST (OPT / LLaMA) and Slam (Qwen2, slamkit).

Neither ships a ``spokenlm_lm.json``; each family has its own unit <-> token convention,
read here from the files the release holds, so ``generate``, the likelihood benchmarks and
``lm train --init-from`` (continued training) use them directly:

- **TWIST** (Hassid et al. 2023; textlesslib ``examples/twist``): a plain Hugging Face
  causal LM directory (``model_type`` opt or llama) whose ``config.json`` has an ``offset``:
  unit ``u`` is token ``offset + u``, and a prompt is fed as those tokens alone, with no BOS
  (textlesslib's ``generate_with_offset``). The unit vocabulary is ``vocab_size - offset``
  (or ``n_units`` when the config records it).
- **Slam** (Maimon et al. 2025; slamkit ``UnitLM`` / ``UnitTokeniser``): ``config.json`` of
  ``model_type`` ``"speech_language_model"`` holding the base LM's config (``base_config``,
  e.g. Qwen2) and ``vocab_size``; weights under the ``lm.`` prefix. Tokens: PAD 0, BOS = EOS
  1, unit ``u`` at ``u + max(PAD, BOS, EOS) + 1`` (= ``u + 2``); a sequence is
  ``<S> units <S>``.

:func:`load_released` returns a :class:`~spokenlm.lm.model.UnitLM` with those conventions
(``add_bos`` False for TWIST), or None when the directory is neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..common.errors import ArtifactError
from .model import UnitLM

#: ``model_type`` slamkit writes for its unit LMs.
SLAM_MODEL_TYPE = "speech_language_model"
#: base model families TWIST was released on.
TWIST_MODEL_TYPES = ("opt", "llama")


def released_family(path: Path) -> str | None:
    """``"twist"``, ``"slam"`` or None for the model directory ``path``."""
    cfg = path / "config.json"
    if not cfg.is_file():
        return None
    try:
        config = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if config.get("model_type") == SLAM_MODEL_TYPE:
        return "slam"
    if config.get("model_type") in TWIST_MODEL_TYPES and "offset" in config:
        return "twist"
    return None


def load_released(path: Path, *, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None) -> UnitLM | None:
    """The TWIST or Slam LM at ``path`` as a :class:`UnitLM`; None when it is neither."""
    family = released_family(path)
    if family == "twist":
        return _load_twist(path, device, dtype)
    if family == "slam":
        return _load_slam(path, device, dtype)
    return None


def _load_twist(path: Path, device: str | torch.device, dtype: torch.dtype | None) -> UnitLM:
    from transformers import AutoModelForCausalLM

    config = json.loads((path / "config.json").read_text())
    offset = int(config["offset"])
    vocab = int(config["vocab_size"])
    n_units = int(config.get("n_units", vocab - offset))
    if n_units <= 0:
        raise ArtifactError(f"{path / 'config.json'}: offset={offset} leaves no unit tokens "
                            f"in vocab_size={vocab}; not a TWIST checkpoint")
    model = _hf_load(AutoModelForCausalLM.from_pretrained, path, dtype)
    eos = config.get("eos_token_id")
    bos = config.get("bos_token_id")
    pad = config.get("pad_token_id")
    lm = UnitLM(model.to(device).eval(), n_units, unit_offset=offset,
                bos_id=int(bos if bos is not None else 0),
                eos_id=int(eos if eos is not None else 0),
                pad_id=int(pad if pad is not None else (eos if eos is not None else 0)),
                add_bos=False)
    lm.release = "twist"
    return lm


def _load_slam(path: Path, device: str | torch.device, dtype: torch.dtype | None) -> UnitLM:
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg_path = path / "config.json"
    config = json.loads(cfg_path.read_text())
    base = dict(config.get("base_config") or {})
    if "model_type" not in base:
        raise ArtifactError(f"{cfg_path}: a slamkit speech_language_model config without "
                            f"base_config.model_type; re-save it with slamkit")
    pad = int(config.get("pad_token_id", base.get("pad_token_id", 0)))
    bos = int(config.get("bos_token_id", base.get("bos_token_id", 1)))
    eos = int(config.get("eos_token_id", base.get("eos_token_id", 1)))
    vocab = int(config["vocab_size"])
    offset = max(pad, bos, eos) + 1
    base_config = AutoConfig.for_model(**{**base, "vocab_size": vocab, "pad_token_id": pad,
                                          "bos_token_id": bos, "eos_token_id": eos})
    model = AutoModelForCausalLM.from_config(base_config)
    state = {_strip(k): v for k, v in _read_weights(path).items()}
    missing, unexpected = _check_keys(model, state)
    if unexpected or missing:
        raise ArtifactError(f"{path}: weights do not fit the base config "
                            f"(missing {missing[:4]}, unexpected {unexpected[:4]}); the "
                            f"checkpoint and config.json come from different models")
    model.load_state_dict(state, strict=False)
    if getattr(base_config, "tie_word_embeddings", False):
        model.tie_weights()
    if dtype is not None:
        model = model.to(dtype)
    else:
        model = model.float()
    lm = UnitLM(model.to(device).eval(), vocab - offset, unit_offset=offset, bos_id=bos,
                eos_id=eos, pad_id=pad)
    lm.release = "slam"
    return lm


def _hf_load(loader: Any, path: Path, dtype: torch.dtype | None) -> Any:
    try:
        return loader(path, local_files_only=True, dtype=dtype or torch.float32)
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}: cannot load the HF model ({e}); the dir is corrupt or "
                            f"incomplete") from e


def _strip(key: str) -> str:
    return key[len("lm."):] if key.startswith("lm.") else key


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``model.safetensors`` or its sharded index (``pytorch_model.bin`` is
    not read: it would need unpickling)."""
    from safetensors.torch import load_file

    single = path / "model.safetensors"
    if single.is_file():
        return load_file(str(single))
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(path / shard)))
        return out
    raise ArtifactError(f"{path}: no model.safetensors (or sharded index); convert the "
                        f"checkpoint to safetensors (spokenlm never unpickles .bin weights)")


def _check_keys(model: torch.nn.Module, state: dict[str, torch.Tensor]
                ) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    missing = sorted(expected - set(state) - tied)
    unexpected = sorted(set(state) - expected)
    return missing, unexpected
