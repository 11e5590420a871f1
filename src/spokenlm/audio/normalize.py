"""Per-utterance waveform normalisation of Hugging Face speech models.

A model directory whose ``preprocessor_config.json`` says ``do_normalize`` expects each
utterance at zero mean and unit variance (wav2vec 2.0 Large, WavLM, x-vector models); the
HuBERT Base family does not. One definition for every loader (tokenizer encoders, SSL
models, speaker encoders).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..common.errors import InputError
from .constants import SAMPLE_RATE


def normalize_wav(wav: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per utterance: (B, T) -> (B, T)."""
    return (wav - wav.mean(dim=1, keepdim=True)) / torch.sqrt(
        wav.var(dim=1, keepdim=True, unbiased=False) + 1e-7)


def do_normalize(path: Path) -> bool:
    """``do_normalize`` of the model dir's ``preprocessor_config.json`` (False without one);
    a feature extractor for another sampling rate is an error."""
    pre = Path(path) / "preprocessor_config.json"
    if not pre.exists():
        return False
    try:
        fe = json.loads(pre.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{pre}: not valid JSON ({e}); fix or delete it") from e
    rate = fe.get("sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise InputError(f"{pre}: sampling_rate={rate}, but spokenlm audio is {SAMPLE_RATE} Hz; "
                         f"use a {SAMPLE_RATE} Hz model")
    return bool(fe.get("do_normalize", False))
