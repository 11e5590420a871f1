from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.lm import UnitLM
from spokenlm.lm.train import LMTrainOptions, train_lm
from spokenlm.testing.checkpoints import checkpoint_steps, truncate_checkpoint
from spokenlm.testing.lm import repetitive_corpus, write_packed_units

TINY = dict(size="tiny", seq_len=32, batch_size=4, lr=3e-3, warmup_steps=2, log_every=2,
            eval_every=4, eval_batches=2)


@pytest.fixture()
def units(tmp_path) -> Path:
    return write_packed_units(tmp_path / "train", repetitive_corpus(40, n_units=12), 12)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_training_learns_and_writes_the_run_dir(tmp_path, units) -> None:
    run = tmp_path / "run"
    final = train_lm(units=str(units) + ".jsonl", output=run, max_steps=24, save_every=8,
                     keep_checkpoints=2, **TINY)
    rows = _log(run)
    assert rows[-1]["step"] == 24 and rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    assert all({"step", "loss", "lr", "tokens_per_s"} <= set(r) for r in rows)
    assert any("valid_loss" in r for r in rows)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 24 and metrics["tokens"] == 24 * 4 * 32
    assert metrics["valid_perplexity"] == pytest.approx(2.718281828 ** metrics["valid_loss"])
    assert (run / "loss.png").stat().st_size > 1000
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["latest", "step_00000016", "step_00000024"]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000024"
    lm = UnitLM.from_pretrained(final)
    assert lm.n_units == 12 and lm.bos_id == 12
    assert all(0 <= u < 12 for u in lm.generate([[0, 3]], max_new_tokens=8)[0])
    train_lm(units=units, output=run, max_steps=24, **TINY)  # a finished run: no-op resume
    assert json.loads((run / "metrics.json").read_text())["train_loss"] == metrics["train_loss"]
    assert len(_log(run)) == len(rows)
    with pytest.raises(InputError, match="--resume"):  # never silently overwrite a run
        train_lm(units=units, output=run, max_steps=24, resume=False, **TINY)


def test_separate_valid_file_and_bad_inputs(tmp_path, units) -> None:
    valid = write_packed_units(tmp_path / "valid", repetitive_corpus(4, 12, seed=1), 12)
    run = tmp_path / "run"
    train_lm(units=units, output=run, valid_units=valid, max_steps=2, **TINY)
    assert json.loads((run / "metrics.json").read_text())["valid_loss"] is not None
    other = write_packed_units(tmp_path / "other", [[1, 2, 3]], 50)
    with pytest.raises(InputError, match="same tokenizer"):
        train_lm(units=units, output=tmp_path / "r2", valid_units=other, max_steps=2, **TINY)
    with pytest.raises(InputError, match="packed units not found"):
        train_lm(units=tmp_path / "missing.jsonl", output=tmp_path / "r3", **TINY)


def test_ema_final_is_the_weight_average_and_the_checkpoint_keeps_both(tmp_path, units) -> None:
    run = tmp_path / "run"
    final = train_lm(units=units, output=run, max_steps=8, save_every=8, ema=0.9, **TINY)
    averaged = load_file(final / "model.safetensors")
    ckpt = run / "checkpoints" / "step_00000008"
    trained = load_file(ckpt / "model.safetensors")
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)["state"]["ema"]
    assert set(state) <= set(trained) and averaged.keys() <= trained.keys()
    for k, w in averaged.items():  # final/ holds the average, the checkpoint the weights
        torch.testing.assert_close(w, state[k].to(w.dtype))
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)
    plain = load_file(train_lm(units=units, output=tmp_path / "plain", max_steps=8,
                               save_every=8, **TINY) / "model.safetensors")
    assert all(torch.equal(plain[k], trained[k]) for k in plain)  # the same training
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["valid_loss"] is not None


KILLED_RUN = """
import os, signal, sys, torch
torch.set_num_threads({threads})
import spokenlm.lm.train as L
import spokenlm.training.checkpoints as T  # where the training loop saves
original = T.save_checkpoint
def save_or_die(ckpt_dir, step, *args, **kwargs):
    if step > {kill_after}:  # steps after the checkpoint are done and logged, then lost
        os.kill(os.getpid(), signal.SIGKILL)
    return original(ckpt_dir, step, *args, **kwargs)
T.save_checkpoint = save_or_die
L.train_lm(units={units!r}, output={output!r}, max_steps={steps}, save_every=3, **{tiny!r})
"""


def test_killed_run_resumes_exactly(tmp_path, units) -> None:
    steps = 12
    opts = dict(max_steps=steps, save_every=3, **TINY)
    full = train_lm(units=units, output=tmp_path / "a", **opts)
    run = tmp_path / "b"
    script = KILLED_RUN.format(threads=torch.get_num_threads(), kill_after=3,
                               units=str(units), output=str(run), steps=steps, tiny=TINY)
    env = {**os.environ, "SPOKENLM_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000003"
    assert _log(run)[-1]["step"] == 6  # logged past the checkpoint before the kill
    resumed = train_lm(units=units, output=run, **opts)
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert b["train_loss"] == a["train_loss"] and b["valid_loss"] == a["valid_loss"]
    assert b["steps"] == a["steps"] and b["tokens"] == a["tokens"]
    assert [r["step"] for r in _log(run)] == [r["step"] for r in _log(tmp_path / "a")]
    assert [r["loss"] for r in _log(run)] == [r["loss"] for r in _log(tmp_path / "a")]
    wa, wb = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_resume_falls_back_past_a_damaged_checkpoint(tmp_path, units, file, capsys) -> None:
    run, opts = tmp_path / "run", dict(max_steps=12, save_every=4, **TINY)
    final = train_lm(units=units, output=run, **opts)
    straight, rows = load_file(final / "model.safetensors"), _log(run)
    truncate_checkpoint(run, 12, file)
    capsys.readouterr()
    train_lm(units=units, output=run, **opts)
    said = "".join(capsys.readouterr())
    assert f"skipping checkpoint {run / 'checkpoints' / 'step_00000012'}: cannot read" in said
    assert file in said and "resuming from step_00000008" in said
    resumed = load_file(final / "model.safetensors")  # as if resumed from step 8 directly
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert [(r["step"], r["loss"]) for r in _log(run)] == [(r["step"], r["loss"]) for r in rows]
    assert checkpoint_steps(run) == [8, 12]  # step 12 saved anew, and resumable again
    train_lm(units=units, output=run, **opts)
    assert "skipping" not in "".join(capsys.readouterr())


def test_no_intact_checkpoint_is_one_clear_error(tmp_path, units) -> None:
    run = tmp_path / "run"
    train_lm(units=units, output=run, max_steps=4, save_every=2, **TINY)
    truncate_checkpoint(run, 4)
    truncate_checkpoint(run, 2, "trainer_state.pt")
    with pytest.raises(ArtifactError, match="no intact checkpoint") as e:
        train_lm(units=units, output=run, max_steps=4, save_every=2, **TINY)
    assert f"delete {run / 'checkpoints'}" in str(e.value) and "--output" in str(e.value)


def test_options_defaults_are_sensible() -> None:
    opts = LMTrainOptions(units=Path("u"), output=Path("o"))
    assert (opts.size, opts.seq_len, opts.trainer.precision, opts.trainer.resume) == \
        ("small", 512, "auto", True)
    assert opts.init_from is None and train_lm.command == "lm train"
