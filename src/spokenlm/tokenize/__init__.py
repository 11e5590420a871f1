"""Tokenize stage: audio -> encoder features (50 Hz) -> k-means units -> dedup.

Library API (each command is also a CLI: ``spokenlm tokenize train``, ``spokenlm tokenize run``)::

    from spokenlm.tokenize import SpeechTokenizer, train_tokenizer, tokenize_manifest
    train_tokenizer(manifest="train.jsonl", output="tok", encoder="mfcc", n_units=100)
    tok = SpeechTokenizer.from_pretrained("tok")
    units = tok.encode(wav)                  # Units(units (N,), durations (N,), n_frames)
    tokenize_manifest(manifest="train.jsonl", tokenizer="tok", output="units/train.jsonl")
"""

from __future__ import annotations

from .dedup import dedup, expand
from .encoders import Encoder, build_encoder, register_encoder
from .features import FeatureExtractor
from .kmeans import KMeans
from .pack import load_packed, pack_units
from .run import TokenizeOptions, tokenize_manifest
from .tokenizer import SpeechTokenizer, Units
from .train import TokenizerTrainOptions, train_tokenizer

__all__ = ["Encoder", "FeatureExtractor", "KMeans", "SpeechTokenizer", "TokenizeOptions",
           "TokenizerTrainOptions", "Units", "build_encoder", "dedup", "expand", "load_packed",
           "pack_units", "register_encoder", "tokenize_manifest", "train_tokenizer"]
