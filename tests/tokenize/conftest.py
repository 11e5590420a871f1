from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.testing.encoders import tiny_hubert_dir, tiny_wav2vec2_dir


@pytest.fixture(scope="session")
def hubert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert_dir(tmp_path_factory.mktemp("models") / "hubert")


@pytest.fixture(scope="session")
def wav2vec2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wav2vec2_dir(tmp_path_factory.mktemp("models") / "wav2vec2")
