from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from spokenlm.testing.vocoder import write_units_corpus


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOKENLM_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run ~20x faster single-threaded on a busy shared CPU (no spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def units_corpus(tmp_path: Path) -> Path:
    """Two 1-second utterances (50 frames) over 8 units, two speakers."""
    return write_units_corpus(tmp_path / "corpus", n_utts=2, n_units=8, n_frames=50)
