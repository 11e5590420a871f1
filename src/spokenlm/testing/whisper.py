"""Tiny random Whisper models saved like real ones, for encoder tests (no network).

:func:`tiny_whisper_dirs` writes a random ``WhisperForConditionalGeneration`` with its
processor files (a transformers dir) and its CTranslate2 conversion, the two kinds of
directory the ``whisper`` encoder reads. The encoder keeps Whisper's real front-end (80
mel bins, two 3-wide convs, the second of stride 2, 1500 positions = 30 s), so frame counts
match real Whisper exactly; the widths are tiny.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: Whisper's special tokens (the CTranslate2 converter and tokenizer expect them)
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
            "<|notimestamps|>"]


def tiny_whisper_dir(path: str | os.PathLike, d_model: int = 16, encoder_layers: int = 2,
                     seed: int = 0) -> Path:
    """Save a random English-only ``WhisperForConditionalGeneration`` (``d_model`` wide,
    ``encoder_layers`` encoder layers, one decoder layer) and its ``WhisperProcessor``
    (byte-level BPE over the 256 byte symbols + specials) to ``path``; returns ``path``."""
    from tokenizers import pre_tokenizers
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor,
                              WhisperTokenizer)

    path = Path(path)
    path.mkdir(parents=True)
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = WhisperTokenizer(vocab=dict(vocab), merges=[])
    tok.add_tokens(SPECIALS, special_tokens=True)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80),
                     tokenizer=tok).save_pretrained(path)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    special = dict(pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
                   eos_token_id=ids["<|endoftext|>"],
                   decoder_start_token_id=ids["<|startoftranscript|>"])
    cfg = WhisperConfig(vocab_size=len(tok), num_mel_bins=80, d_model=d_model,
                        encoder_layers=encoder_layers, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
                        max_source_positions=1500, max_target_positions=448, **special)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.generation_config = GenerationConfig(
        **special, no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False,
        max_length=448)
    model.save_pretrained(path)
    return path


def tiny_whisper_dirs(root: str | os.PathLike, **kwargs: int) -> tuple[Path, Path]:
    """``(hf_dir, ct2_dir)`` under ``root``: :func:`tiny_whisper_dir` and its CTranslate2
    conversion (float32 weights, ``tokenizer.json`` copied)."""
    from ctranslate2.converters import TransformersConverter

    root = Path(root)
    hf = tiny_whisper_dir(root / "hf", **kwargs)
    ct2 = root / "ct2"
    TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(ct2))
    return hf, ct2
