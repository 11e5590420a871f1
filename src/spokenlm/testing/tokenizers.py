"""Tiny MFCC tokenizers trained on synthetic audio, and the streamed-vs-whole check (tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .audio import random_speech_like_wav, write_test_manifest, write_wav_folder


def tiny_mfcc_tokenizer(root: Path, *, n_units: int = 16, **options: Any) -> Path:
    """Train an MFCC tokenizer (``n_units`` clusters, 10 k-means iterations, CPU) on four
    synthetic wavs written under ``root``; ``options`` go to ``tokenize train``. Returns
    ``root / "tokenizer"``."""
    from ..tokenize import train_tokenizer

    manifest = write_test_manifest(root / "m.jsonl", write_wav_folder(root / "wavs", n=4))
    return train_tokenizer(manifest=manifest, output=root / "tokenizer", encoder="mfcc",
                           n_units=n_units, niter=10, device="cpu", **options)


def streamed_and_whole(tokenizer_dir: Path, seconds: float = 6.0,
                       seed: int = 4) -> tuple[list[int], list[int]]:
    """Frame units (no dedup) of one synthetic waveform, streamed in odd-sized blocks with
    0.7 s chunks, and encoded whole."""
    from ..tokenize import SpeechTokenizer

    tok = SpeechTokenizer.from_pretrained(tokenizer_dir, device="cpu")
    wav: np.ndarray = random_speech_like_wav(seconds, seed=seed)

    def blocks():  # noqa: ANN202 - a generator of (B,) float32 blocks
        return (wav[i:i + 7001] for i in range(0, len(wav), 7001))

    streamed = tok.encode_stream(blocks, dedup=False, chunk_seconds=0.7)
    return streamed.units.tolist(), tok.encode(wav, dedup=False).units.tolist()
