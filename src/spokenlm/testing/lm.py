"""Tiny unit-LM builders for tests: a random LLaMA over a few units and packed unit files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..common.packed import packed_dtype, write_packed


def tiny_unit_lm(n_units: int = 20, *, seed: int = 0, size: str = "tiny", **overrides: Any):
    """A randomly initialised ``UnitLM`` (LLaMA, 2 layers x 64 dims unless overridden)."""
    from ..lm.config import LMConfig
    from ..lm.model import UnitLM

    return UnitLM.build(n_units, LMConfig.named(size, **overrides), seed=seed)


def save_tiny_unit_lm(path: str | os.PathLike, n_units: int = 20, **kwargs: Any) -> Path:
    """Write a tiny unit LM dir (HF files + ``spokenlm_lm.json``) and return its path."""
    return tiny_unit_lm(n_units, **kwargs).save_pretrained(path)


def write_packed_units(prefix: str | os.PathLike, seqs: Sequence[Sequence[int]],
                       n_units: int, ids: Sequence[str] | None = None) -> Path:
    """Write ``<prefix>.bin/.idx.npy/.meta.json`` in the packed-units format of the contract
    (:func:`spokenlm.common.packed.write_packed`); ids default to ``utt0``, ``utt1``, ..."""
    return write_packed(prefix, seqs, packed_dtype(n_units), {
        "n_units": int(n_units),
        "ids": list(ids) if ids is not None else [f"utt{i}" for i in range(len(seqs))]})


def repetitive_corpus(n_utterances: int = 40, n_units: int = 12, length: int = 24,
                      seed: int = 0) -> list[list[int]]:
    """Utterances that are rotations of one short unit pattern: easy to learn in a few steps."""
    rng = np.random.default_rng(seed)
    pattern = [u % n_units for u in range(0, 2 * n_units, 3)]
    out = []
    for _ in range(n_utterances):
        start = int(rng.integers(len(pattern)))
        out.append([pattern[(start + i) % len(pattern)] for i in range(length)])
    return out
