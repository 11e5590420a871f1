"""Unit language models: a Hugging Face causal LM over discrete speech units.

``UnitLM`` (load, save, score, sample), ``SamplingOptions`` (every setting of a draw),
``LMConfig`` (named LLaMA sizes), packed training data (``BlockStream``, ``DataState``) and
``train_lm`` (the ``spokenlm lm train`` command).
"""

from __future__ import annotations

from typing import Any

from .config import SIZES, LMConfig, build_llama_config
from .data import BlockStream, DataState, load_packed, packed_prefix
from .model import UnitLM
from .sampling import SamplingOptions
from .score import LogLik

__all__ = ["SIZES", "BlockStream", "DataState", "LMConfig", "LMTrainOptions", "LogLik",
           "SamplingOptions", "UnitLM", "build_llama_config", "load_packed", "packed_prefix",
           "train_lm"]


def __getattr__(name: str) -> Any:  # the trainer pulls in more; import it on first use
    if name in ("train_lm", "LMTrainOptions"):
        from . import train

        return getattr(train, name)
    raise AttributeError(name)
