from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.vocoder.train import train_vocoder

OPTS = dict(type="fast", size="tiny", batch_size=2, segment_frames=16, log_every=1,
            save_every=3, seed=1)


def test_resume_matches_an_uninterrupted_run(units_corpus: Path, tmp_path: Path) -> None:
    straight = train_vocoder(units=units_corpus, output=tmp_path / "a", max_steps=6, **OPTS)
    train_vocoder(units=units_corpus, output=tmp_path / "b", max_steps=3, **OPTS)
    resumed = train_vocoder(units=units_corpus, output=tmp_path / "b", max_steps=6, **OPTS)
    assert [r["step"] for r in read_jsonl(tmp_path / "b" / "log.jsonl")] == list(range(1, 7))
    wa, wb = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all((wa[k] - wb[k]).abs().max() < 1e-5 for k in wa)


def test_run_dir_of_another_type_is_refused(units_corpus: Path, tmp_path: Path) -> None:
    train_vocoder(units=units_corpus, output=tmp_path / "a", max_steps=1, **OPTS)
    with pytest.raises(InputError, match="type='fast'"):
        train_vocoder(units=units_corpus, output=tmp_path / "a", max_steps=1,
                      **{**OPTS, "type": "hifigan"})


def test_bad_options_and_inputs(units_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="size"):
        train_vocoder(units=units_corpus, output=tmp_path / "x", **{**OPTS, "size": "huge"})
    with pytest.raises(InputError, match="not found"):
        train_vocoder(units=tmp_path / "none.jsonl", output=tmp_path / "y", **OPTS)
