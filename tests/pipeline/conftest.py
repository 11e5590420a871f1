"""Tiny artifacts for resynth / generate: an MFCC + 8-unit k-means tokenizer, a tiny fast
vocoder, a tiny unit LM, and a few short speech-like wavs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.testing.audio import random_speech_like_wav, write_wav_folder
from spokenlm.testing.lm import save_tiny_unit_lm
from spokenlm.testing.vocoder import save_tiny_vocoder

N_UNITS = 8


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), N_UNITS, seed=0)
    return SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(
        tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture(scope="session")
def vocoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_vocoder(tmp_path_factory.mktemp("voc") / "vocoder", n_units=N_UNITS)


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_unit_lm(tmp_path_factory.mktemp("lm") / "lm", n_units=N_UNITS)


@pytest.fixture
def wavs(tmp_path: Path) -> list[Path]:
    """Five 0.2-0.4 s wavs in ``tmp_path / "wavs"``."""
    return write_wav_folder(tmp_path / "wavs", n=5, seconds=(0.2, 0.4))
