from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.testing.vocoder import save_tiny_vocoder, tiny_vocoder
from spokenlm.vocoder import VOCODERS, Vocoder, load_vocoder


def test_registry_and_protocol() -> None:
    model = tiny_vocoder("fast")
    assert isinstance(model, Vocoder)
    assert {"fast", "hifigan"} <= set(VOCODERS)


def test_save_load_round_trip_fast(tmp_path: Path) -> None:
    save_tiny_vocoder(tmp_path / "v", "fast", speakers=["a", "b"])
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    assert cfg["type"] == "fast" and cfg["n_units"] == 8 and cfg["sample_rate"] == 16000
    a = load_vocoder(tmp_path / "v").synthesize([1, 2], [2, 2], speaker="a")
    save_tiny_vocoder(tmp_path / "v", "fast", speakers=["a", "b"])  # overwrite in place
    b = load_vocoder(tmp_path / "v").synthesize([1, 2], [2, 2], speaker="a")
    np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob(".v.*"))


def test_missing_and_bad_dirs_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="config.json"):
        load_vocoder(tmp_path / "nothing")
    save_tiny_vocoder(tmp_path / "v", "hifigan")
    (tmp_path / "v" / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="model.safetensors"):
        load_vocoder(tmp_path / "v")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text(json.dumps({"type": "wavenet"}))
    with pytest.raises(ArtifactError, match="unknown vocoder type 'wavenet'"):
        load_vocoder(tmp_path / "w")


def test_bad_units_and_durations() -> None:
    model = tiny_vocoder("fast", n_units=8)
    with pytest.raises(InputError, match=r"\[0, 8\)"):
        model.synthesize([1, 9], [1, 1])
    with pytest.raises(InputError, match="durations"):
        model.synthesize([1, 2], [1])
    assert model.synthesize([]).shape == (0,)
