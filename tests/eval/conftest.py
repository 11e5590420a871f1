from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.lm import save_tiny_unit_lm

N_UNITS = 8


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MFCC + k-means (8 units) tokenizer fitted on a random speech-like wav."""
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(__import__("torch").from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), N_UNITS, seed=0)
    tok = SpeechTokenizer(encoder, kmeans, device="cpu")
    return tok.save_pretrained(tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_unit_lm(tmp_path_factory.mktemp("lm") / "lm", n_units=N_UNITS)
