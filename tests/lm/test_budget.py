"""Budgets (steps, tokens, wall-clock hours) with the schedule fitted to them, and data
mixtures sampled by weight, in `lm train`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import InputError
from spokenlm.lm.budget import Budget, budget_schedule
from spokenlm.lm.data import BlockStream
from spokenlm.lm.mixture import MixtureStream, parse_mix
from spokenlm.lm.optim import warmup_cosine
from spokenlm.lm.train import train_lm
from spokenlm.testing.lm import repetitive_corpus, write_packed_units

TINY = dict(size="tiny", seq_len=16, batch_size=4, lr=3e-3, warmup_steps=2, log_every=1,
            eval_every=0, eval_batches=1, device="cpu", precision="fp32")


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_token_budget_sets_the_step_count_and_names_itself() -> None:
    b = Budget(max_steps=1000, step_tokens=64, max_tokens=1000)
    assert b.steps == 16  # ceil(1000 / 64)
    assert b.exhausted(15, 0.0) is None and b.exhausted(16, 0.0) == "max_tokens"
    assert Budget(10, 64, max_tokens=10_000).exhausted(10, 0.0) == "max_steps"
    assert Budget(10, 64, max_hours=1.0).exhausted(3, 3600.0) == "max_hours"
    with pytest.raises(InputError):
        Budget(10, 64, max_hours=0)


def test_step_schedule_is_the_plain_warmup_cosine() -> None:
    b = Budget(max_steps=50, step_tokens=8)
    ours = budget_schedule(b, 5, 0.1, lambda: 0.0)
    ref = warmup_cosine(5, 50, 0.1)
    assert [ours(s) for s in range(60)] == [ref(s) for s in range(60)]


def test_time_budget_anneals_on_the_clock() -> None:
    b = Budget(max_steps=10_000, step_tokens=8, max_hours=1.0)
    now = {"t": 0.0}
    f = budget_schedule(b, 4, 0.1, lambda: now["t"])
    assert f(0) == pytest.approx(0.25)  # warmup is in steps
    now["t"] = 1800.0  # half the hours used, few steps: the cosine is half way
    assert f(10) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    now["t"] = 3600.0
    assert f(11) == pytest.approx(0.1)
    assert b.progress(10, 1800.0) == pytest.approx(0.5)


def test_lm_train_stops_on_the_token_budget_with_a_final_checkpoint(tmp_path: Path) -> None:
    units = write_packed_units(tmp_path / "u", repetitive_corpus(30, n_units=12), 12)
    run = tmp_path / "run"
    train_lm(units=units, output=run, max_steps=100, max_tokens=5 * 4 * 16 + 1,
             save_every=4, **TINY)  # 6 steps of 64 tokens cover it
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["steps"], metrics["stopped_by"]) == (6, "max_tokens")
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000006"
    lrs = [r["lr"] for r in _log(run)]
    assert lrs[-1] < lrs[2] and len(lrs) == 6  # the cosine ran over 6 steps, not 100


def test_lm_train_wall_clock_budget_stops_and_resumes(tmp_path: Path) -> None:
    units = write_packed_units(tmp_path / "u", repetitive_corpus(30, n_units=12), 12)
    run = tmp_path / "run"
    train_lm(units=units, output=run, max_steps=100_000, max_hours=1.5 / 3600,
             save_every=10_000, **TINY)
    first = json.loads((run / "metrics.json").read_text())
    assert first["stopped_by"] == "max_hours" and 0 < first["steps"] < 100_000
    assert first["wall_s"] >= 1.5
    assert (run / "checkpoints" / "latest").read_text().strip() == \
        f"step_{first['steps']:08d}"  # saved although save_every was never reached
    train_lm(units=units, output=run, max_steps=100_000, max_hours=3.0 / 3600,
             save_every=10_000, **TINY)  # more hours: continues from the checkpoint
    second = json.loads((run / "metrics.json").read_text())
    assert second["steps"] > first["steps"] and second["wall_s"] >= 3.0
    assert _log(run)[first["steps"]]["step"] == first["steps"] + 1  # no step redone


def test_mixture_draws_rows_in_proportion_and_resumes_exactly() -> None:
    a = BlockStream(np.arange(400) % 10, np.arange(0, 401, 20), np.arange(20), 9,
                    bos_id=10, eos_id=11)
    b = BlockStream(np.full(400, 3), np.arange(0, 401, 20), np.arange(20), 9,
                    bos_id=10, eos_id=11, seed=1)
    mix = MixtureStream([a, b], [0.7, 0.3], ["real", "synth"], seed=0)
    state = mix.initial_state()
    for _ in range(200):
        _, state = mix.next_batch(state, 10)
    assert mix.shares(state)["real"] == pytest.approx(0.7, abs=0.03)
    again = type(state).from_dict(json.loads(json.dumps(state.to_dict())))
    x1, _ = mix.next_batch(state, 10)
    x2, _ = mix.next_batch(again, 10)
    assert np.array_equal(x1, x2)
    # two processes each take their share of every source: together the global batch
    r0, _ = mix.next_batch(state, 10, rank=0, world_size=2)
    r1, _ = mix.next_batch(state, 10, rank=1, world_size=2)
    assert sorted(map(tuple, np.concatenate([r0, r1]))) == sorted(map(tuple, x1))
    assert parse_mix("d/u.jsonl:0.3") == ("d/u.jsonl", 0.3)
    with pytest.raises(InputError, match="PATH:WEIGHT"):
        parse_mix("d/u.jsonl")


def test_lm_train_with_a_mixture_reports_each_source(tmp_path: Path) -> None:
    real = write_packed_units(tmp_path / "real", repetitive_corpus(30, n_units=12), 12)
    synth = write_packed_units(tmp_path / "synth", repetitive_corpus(30, 12, seed=3), 12)
    run = tmp_path / "run"
    train_lm(units=real, output=run, max_steps=8, mix=[f"{synth}:1"], units_weight=3.0,
             **TINY)
    rows = _log(run)
    assert set(rows[-1]["mix"]) == {"real", "synth"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert sum(metrics["mix"].values()) == pytest.approx(1.0)
    other = write_packed_units(tmp_path / "other", repetitive_corpus(5, 8), 8)
    with pytest.raises(InputError, match="one tokenizer"):
        train_lm(units=real, output=tmp_path / "bad", max_steps=2, mix=[f"{other}:1"], **TINY)
