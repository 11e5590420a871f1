from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.common.files import read_jsonl
from spokenlm.testing.checkpoints import checkpoint_steps, truncate_checkpoint
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


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_resume_falls_back_past_a_damaged_checkpoint(units_corpus: Path, tmp_path: Path, file: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "a"
    final = train_vocoder(units=units_corpus, output=run, max_steps=6, **OPTS)
    straight = load_file(str(final / "model.safetensors"))
    truncate_checkpoint(run, 6, file)
    capsys.readouterr()
    resumed = train_vocoder(units=units_corpus, output=run, max_steps=6, **OPTS)
    said = "".join(capsys.readouterr())
    assert f"skipping checkpoint {run / 'checkpoints' / 'step_00000006'}: cannot read" in said
    assert file in said and "from step 3" in said
    assert [r["step"] for r in read_jsonl(run / "log.jsonl")] == list(range(1, 7))
    assert checkpoint_steps(run) == [3, 6]
    again = load_file(str(resumed / "model.safetensors"))
    assert all((straight[k] - again[k]).abs().max() < 1e-5 for k in straight)


def test_no_intact_checkpoint_is_one_clear_error(units_corpus: Path, tmp_path: Path) -> None:
    train_vocoder(units=units_corpus, output=tmp_path / "a", max_steps=6, **OPTS)
    truncate_checkpoint(tmp_path / "a", 6)
    truncate_checkpoint(tmp_path / "a", 3, "trainer_state.pt")
    with pytest.raises(ArtifactError, match="no intact checkpoint") as e:
        train_vocoder(units=units_corpus, output=tmp_path / "a", max_steps=6, **OPTS)
    assert f"delete {tmp_path / 'a' / 'checkpoints'}" in str(e.value)


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
