"""fairseq HuBERT / mHuBERT ``.pt`` checkpoint -> Hugging Face ``HubertModel`` directory.

The written directory (``config.json``, ``model.safetensors``, ``preprocessor_config.json``,
``spokenlm_conversion.json``) loads with ``transformers.HubertModel.from_pretrained`` and is
a spokenlm ``hubert`` encoder as it is::

    spokenlm interop hubert-import hubert_base_ls960.pt --output models/hubert-base
    spokenlm tokenize train train.jsonl --encoder hubert --encoder-path models/hubert-base \
        --layer 6 --n-units 100

mHuBERT (``mhubert_base_vp_en_es_fr_it3.pt``) and fine-tuned HuBERT CTC checkpoints
(``w2v_encoder.w2v_model.*`` keys; the CTC head is dropped) use the same format. fairseq
is not needed: see :mod:`spokenlm.interop.checkpoint`. The features match fairseq's
``HubertModel.extract_features(output_layer=L)``: ``hidden_states[L]`` of the converted
model, i.e. spokenlm's ``--layer L``. Pretraining-only tensors (``label_embs_concat``,
``final_proj``) have no place in ``HubertModel`` and are listed in
``spokenlm_conversion.json`` as dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common.errors import InputError
from ..common.files import atomic_dir, write_json
from ..common.options import arg, command
from ..common.paths import check_replaceable, store_path
from ..common.progress import log
from .checkpoint import load_fairseq_checkpoint, model_config
from .fairseq_config import fairseq_value, hf_hubert_kwargs
from .safe_pickle import ALLOW_GLOBAL_HELP

#: fairseq key (regex) -> transformers HubertModel key; ``{wn}`` is the weight-norm prefix.
KEY_MAP: list[tuple[str, str]] = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)",
     r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(?:1\.)?(weight|bias)",  # group / layer norm
     r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.weight_g", "encoder.pos_conv_embed.conv.{wn}0"),
    (r"encoder\.pos_conv\.0\.weight_v", "encoder.pos_conv_embed.conv.{wn}1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
     r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)",
     r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)",
     r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)",
     r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)",
     r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", "masked_spec_embed"),
]

#: prefix of the pretrained encoder's keys inside a fine-tuned (HubertCtc) checkpoint
FINETUNED_PREFIX = "w2v_encoder.w2v_model."


def map_fairseq_keys(state: dict[str, torch.Tensor], weight_norm_prefix: str
                     ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a fairseq HuBERT state dict to transformers ``HubertModel`` keys.

    Args:
        state: fairseq ``model`` state dict (fine-tuned prefixes already stripped).
        weight_norm_prefix: how the HF model names the positional conv's weight-norm pair:
            ``"parametrizations.weight.original"`` (torch >= 2.1) or ``"weight_"`` (legacy,
            then ``0``/``1`` are mapped to ``g``/``v``).
    Returns:
        (mapped state dict in float32, fairseq keys that have no HubertModel counterpart).
    """
    compiled = [(re.compile(p + r"\Z"), r) for p, r in KEY_MAP]
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                new = pattern.sub(repl, key).replace("{wn}", weight_norm_prefix)
                if weight_norm_prefix == "weight_":
                    new = new.replace("weight_0", "weight_g").replace("weight_1", "weight_v")
                out[new] = value.float() if value.is_floating_point() else value
                break
        else:
            dropped.append(key)
    return out, dropped


def _unwrap_finetuned(ckpt: dict[str, Any], path: Path) -> tuple[dict, dict, dict]:
    """(state, model cfg, task cfg) of the pretrained encoder, also inside a CTC checkpoint."""
    model_cfg, task_cfg = model_config(ckpt, path)
    state = ckpt["model"]
    if any(k.startswith(FINETUNED_PREFIX) for k in state):
        state = {k[len(FINETUNED_PREFIX):]: v for k, v in state.items()
                 if k.startswith(FINETUNED_PREFIX)}
        w2v = model_cfg.get("w2v_args")
        if isinstance(w2v, dict) and isinstance(w2v.get("model"), dict):
            model_cfg, task_cfg = w2v["model"], w2v.get("task") or task_cfg
        elif isinstance(w2v, dict):  # legacy flat namespace
            model_cfg, task_cfg = w2v, w2v
        else:
            raise InputError(f"{path}: a fine-tuned checkpoint without w2v_args; convert the "
                             f"pretrained checkpoint it was fine-tuned from instead")
    return state, model_cfg, task_cfg


def _load_weights(model: Any, fairseq_state: dict[str, torch.Tensor], path: Path) -> list[str]:
    """Load a fairseq state dict into transformers ``model`` (strictly); returns dropped keys."""
    expected = model.state_dict()
    wn = ("parametrizations.weight.original"
          if any("parametrizations" in k for k in expected) else "weight_")
    state, dropped = map_fairseq_keys(fairseq_state, wn)
    missing = [k for k in expected if k not in state]
    if "feature_projection.projection.weight" in missing:
        # fairseq has no post_extract_proj when the conv dim equals the embed dim
        proj = model.feature_projection.projection
        if proj.in_features == proj.out_features:
            state["feature_projection.projection.weight"] = torch.eye(proj.in_features)
            state["feature_projection.projection.bias"] = torch.zeros(proj.out_features)
    if "masked_spec_embed" in missing and "masked_spec_embed" not in state:
        state["masked_spec_embed"] = expected["masked_spec_embed"]  # only used in training
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise InputError(f"{path}: the checkpoint does not match its own config: missing "
                         f"{missing[:6]}, unexpected {unexpected[:6]} (dropped {dropped[:6]}); "
                         f"is it a HuBERT checkpoint (not wav2vec 2.0 / data2vec)?")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: tensor shapes do not match the checkpoint's config ({e}); "
                         f"the cfg and the weights come from different models") from e
    return dropped


def convert_fairseq_hubert(checkpoint: str | os.PathLike, output: str | os.PathLike, *,
                           overwrite: bool = False, allow_globals: Sequence[str] = ()) -> Path:
    """Convert a fairseq HuBERT / mHuBERT checkpoint into a transformers model directory.

    Args:
        checkpoint: the fairseq ``.pt`` file (pretrained or CTC fine-tuned).
        output: directory to write (``config.json``, ``model.safetensors``,
            ``preprocessor_config.json`` with ``do_normalize`` = the task's ``normalize``,
            ``spokenlm_conversion.json``). Written atomically (renamed into place).
        overwrite: replace ``output`` when it exists.
        allow_globals: exact ``module.name`` globals to allow besides the allowlist of
            :mod:`spokenlm.interop.safe_pickle` (the file may call them: trusted files only).
    Returns:
        ``output``.
    """
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    checkpoint, output = Path(checkpoint), Path(output)
    check_replaceable(output, None, overwrite)  # before the (slow) load
    ckpt = load_fairseq_checkpoint(checkpoint, allow_globals=allow_globals)
    state, model_cfg, task_cfg = _unwrap_finetuned(ckpt, checkpoint)
    kwargs = hf_hubert_kwargs(model_cfg, source=str(checkpoint))
    model = HubertModel(HubertConfig(**kwargs)).eval()
    dropped = _load_weights(model, state, checkpoint)
    normalize = bool(fairseq_value(task_cfg, "normalize") or False)

    with atomic_dir(output, None, overwrite=overwrite) as tmp:
        model.save_pretrained(str(tmp))
        Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                 do_normalize=normalize, return_attention_mask=normalize
                                 ).save_pretrained(str(tmp))
        write_json(tmp / "spokenlm_conversion.json", {
            "source": store_path(checkpoint, tmp / "spokenlm_conversion.json"),
            "format": "fairseq-hubert",
            "normalize": normalize, "dropped_keys": dropped,
            "fairseq_model_cfg": {k: v for k, v in model_cfg.items()
                                  if isinstance(v, (str, int, float, bool, type(None)))}})
    log(f"converted {checkpoint} -> {output} ({kwargs['num_hidden_layers']} layers, "
        f"dim {kwargs['hidden_size']}, normalize={normalize}; dropped {len(dropped)} "
        f"pretraining-only tensors)")
    return output


@dataclass
class ConvertHubertOptions:
    checkpoint: Path = arg(positional=True, help="fairseq HuBERT / mHuBERT checkpoint (.pt)")
    output: Path = arg(Path("hubert-hf"), help="Hugging Face model directory to write")
    overwrite: bool = arg(False, help="replace --output if it exists")
    allow_global: list[str] = arg([], help=ALLOW_GLOBAL_HELP)


@command("interop hubert-import", ConvertHubertOptions)
def convert_hubert(opts: ConvertHubertOptions) -> Path:
    """Convert a fairseq HuBERT/mHuBERT .pt into a Hugging Face HubertModel directory."""
    return convert_fairseq_hubert(opts.checkpoint, opts.output, overwrite=opts.overwrite,
                                  allow_globals=opts.allow_global)
