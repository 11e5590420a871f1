"""TWIST warm start: a unit LM built from a pretrained text LM (Hassid et al., 2023).

The text LM's transformer blocks (attention, MLP, norms, position embeddings, OPT's
``project_in``/``project_out``) are kept as they are; only the token embedding and the output
head change, to cover the unit vocabulary:

- default (``keep_text_vocab=False``): a fresh vocabulary of ``K + 3`` tokens, units at
  ``0..K-1`` and BOS/EOS/PAD at ``K, K+1, K+2``, exactly the layout of a cold-start unit LM;
- ``keep_text_vocab=True``: the ``V`` text tokens stay where they are and the units are
  appended after them (``unit_offset = V``, BOS/EOS/PAD at ``V+K .. V+K+2``), as the released
  TWIST checkpoints and SpiritLM do, so the model can still read (and be prompted with) text.

New rows are initialised by ``init``:

- ``"mean"`` (the default): every new row is the mean text embedding plus small Gaussian
  noise (std = 0.1 x the text embedding's std). The blocks were trained on inputs drawn from
  the text embedding distribution; starting every unit at its centre keeps the first layer's
  input statistics where the blocks expect them, and the noise breaks the symmetry between
  units. With a tied head every unit starts at the same logit, so the first loss is
  ``log(vocab)`` and nothing is predicted with false confidence.
- ``"random"``: ``N(0, sigma^2)`` with sigma the std of the text embedding (and of the text
  head, for an untied head), which is what TWIST itself does (it re-initialises the unit
  embeddings and head).

Tied heads stay tied (GPT-2, OPT, and LLaMA/Qwen2 configs with ``tie_word_embeddings``);
untied heads get their own new rows. The model keeps its architecture class, so the saved
unit LM dir is e.g. an ``OPTForCausalLM`` directory that ``AutoModelForCausalLM`` loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch

from ..common.errors import InputError
from ..common.files import read_json
from ..common.hub import local_or_hub
from ..common.packed import N_SPECIALS
from .config import special_ids
from .model import META_FILE, UnitLM

Init = Literal["mean", "random"]
#: noise std of mean init, as a fraction of the text embedding's std
MEAN_INIT_NOISE = 0.1


def is_unit_lm_dir(path: str | os.PathLike) -> bool:
    """True for a spokenlm unit LM dir (it has ``spokenlm_lm.json``)."""
    return (Path(path) / META_FILE).is_file()


def is_text_lm_dir(path: str | os.PathLike) -> bool:
    """True for a Hugging Face causal LM dir that is not a unit LM: a ``config.json`` with a
    ``model_type`` that ``AutoModelForCausalLM`` knows, and no ``spokenlm_lm.json``."""
    path = Path(path)
    if is_unit_lm_dir(path) or not (path / "config.json").is_file():
        return False
    try:
        config = read_json(path / "config.json")
    except InputError:
        return False
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def load_text_lm(path: str | os.PathLike) -> Any:
    """The HF causal LM at ``path`` (a directory or a hub id) in float32 (real checkpoints
    are often saved in fp16)."""
    from transformers import AutoModelForCausalLM

    path = local_or_hub(path, "text LM")
    if not path.is_dir():
        raise InputError(
            f"{path}: text LM directory not found. --init-from takes a local directory or a "
            "hub id (org/name); to use a hub model offline download it first, e.g. "
            f"`huggingface-cli download facebook/opt-125m --local-dir {path}`")
    if not is_text_lm_dir(path):
        raise InputError(
            f"{path}: neither a spokenlm unit LM dir (no {META_FILE}) nor a Hugging Face causal "
            "LM dir (no config.json with a causal-LM model_type); pass the final/ dir of "
            "`spokenlm lm train` or `spokenlm lm pretrain-text`, or a HF model dir "
            "(OPT, LLaMA, Qwen2, GPT-2, ...)")
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a one-file "Loading weights" bar is noise
    try:
        return AutoModelForCausalLM.from_pretrained(path, local_files_only=True,
                                                    dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot load the text LM ({e}); check that the model "
                         "weights (*.safetensors or *.bin) are complete") from e
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _is_tied(model: Any) -> bool:
    head = model.get_output_embeddings()
    return head is not None and head.weight is model.get_input_embeddings().weight


@torch.no_grad()
def _init_rows(weight: torch.Tensor, start: int, text: torch.Tensor, init: Init,
               generator: torch.Generator) -> None:
    """Overwrite rows ``weight[start:]`` (n, E) from the text rows ``text`` (V, E)."""
    n, dim = weight.shape[0] - start, weight.shape[1]
    std = float(text.float().std())
    noise = torch.randn((n, dim), generator=generator, dtype=torch.float32)
    if init == "random":
        rows = noise * std
    elif init == "mean":
        rows = text.float().mean(dim=0, keepdim=True) + noise * (MEAN_INIT_NOISE * std)
    else:
        raise InputError(f"init_embeddings={init!r}: choose 'mean' or 'random'")
    weight[start:] = rows.to(weight.dtype)


def warm_start(text_lm: str | os.PathLike | Any, n_units: int, *, init: Init = "mean",
               keep_text_vocab: bool = False, seed: int = 0,
               tokenizer: str | None = None) -> UnitLM:
    """A :class:`UnitLM` over ``n_units`` units with the blocks of the text LM ``text_lm``.

    Args:
        text_lm: a local HF causal LM dir, or an already loaded ``PreTrainedModel`` (it is
            modified in place).
        n_units: K, the unit vocabulary of the speech tokenizer.
        init: ``"mean"`` (default) or ``"random"`` for the new embedding / head rows.
        keep_text_vocab: keep the V text tokens and put units at ``V + u`` (vocab V + K + 3);
            otherwise the vocabulary is exactly K + 3 (units at ``u``).
        seed: seed of the new rows.
        tokenizer: speech tokenizer dir recorded in the unit LM's metadata.
    Returns:
        the unit LM; embedding (K+3, E) or (V+K+3, E), head (same rows, E_out), same class.
    """
    if n_units < 1:
        raise InputError(f"n_units={n_units}: a unit LM needs at least one unit")
    model = load_text_lm(text_lm) if isinstance(text_lm, (str, os.PathLike)) else text_lm
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    if emb is None or head is None:
        raise InputError(f"{type(model).__name__}: no input embedding or output head to "
                         "replace; pass a causal LM (…ForCausalLM / …LMHeadModel)")
    tied = _is_tied(model)
    text_emb = emb.weight.detach().clone()  # (V, E)
    text_head = None if tied else head.weight.detach().clone()  # (V, E_out)
    n_text = int(text_emb.shape[0])
    offset = n_text if keep_text_vocab else 0
    vocab = offset + n_units + N_SPECIALS
    ids = special_ids(n_units, offset)
    model.resize_token_embeddings(vocab, mean_resizing=False)  # keeps tying, sets vocab_size
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    generator = torch.Generator().manual_seed(seed)
    _init_rows(emb.weight, offset, text_emb, init, generator)
    if not tied:
        _init_rows(head.weight, offset, text_head, init, generator)
        if getattr(head, "bias", None) is not None:
            with torch.no_grad():
                head.bias[offset:] = 0.0
    if getattr(emb, "padding_idx", None) is not None:  # OPT: padding row = text pad id
        emb.padding_idx = ids["pad_id"]  # (its gradient is zeroed; it must not be a unit)
    for cfg in (model.config, model.generation_config):
        cfg.bos_token_id, cfg.eos_token_id = ids["bos_id"], ids["eos_id"]
        cfg.pad_token_id = ids["pad_id"]
    if hasattr(model.config, "decoder_start_token_id"):
        model.config.decoder_start_token_id = None
    return UnitLM(model, n_units, unit_offset=offset, tokenizer=tokenizer, **ids)


def blocks_state(model: Any) -> dict[str, torch.Tensor]:
    """The parameters a warm start keeps: everything but the token embedding and head."""
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return {k: v for k, v in model.named_parameters() if id(v) not in skip}
