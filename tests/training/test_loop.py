"""The one training loop on a toy recipe, the data split by shard, and the options nesting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.common.options import add_options, build_options, options_from_namespace
from spokenlm.training import Env, Recipe, TrainerOptions, fit, shard_slice, take
from spokenlm.training import checkpoints as saving
from spokenlm.training.schedule import Budget, lr_factor

CPU = Env(rank=0, world=1, local_rank=0, device=torch.device("cpu"), amp=None)
X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=torch.Generator().manual_seed(1))


class Line(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Linear(3, 1)
        self.drop = nn.Dropout(dropout)

    def write_files(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(dict(self.state_dict()), str(path / "model.safetensors"))


class Toy(Recipe):
    """Least squares on rows drawn in epochs of a seeded order; an extra module optional."""

    name = "toy"

    def __init__(self, critic: bool = False, dropout: float = 0.2) -> None:
        self.model, self.batch, self.critic, self.pos = Line(dropout), 8, critic, 0

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        order = np.random.default_rng([0, self.pos // 64]).permutation(64)
        rows = order[np.arange(self.pos, self.pos + self.batch) % 64]
        self.pos += self.batch
        return [take(rows, s, n_shards) for s in shards]

    def loss(self, model: nn.Module, batch: Any, step: int) -> dict[str, Any]:
        pred = model.drop(model.w(X[batch]))[:, 0]
        out = {"loss": ((pred - Y[batch]) ** 2).mean(), "nothing": float("nan")}
        if self.critic:
            c = self.extras["critic"]
            c.update((c.module(X[batch])[:, 0] - pred.detach()).pow(2).mean())
        return out

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"critic": nn.Linear(3, 1)} if self.critic else {}

    def state_dict(self) -> dict[str, Any]:
        return {"pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos = state["pos"]

    def epoch(self) -> int:
        return self.pos // 64


OPTS = TrainerOptions(lr=0.05, warmup_steps=2, max_steps=12, save_every=4, log_every=2,
                      eval_every=0, device="cpu")


def _weights(recipe: Toy) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in recipe.model.parameters()])


class Killed(BaseException):
    pass


def _killed_and_resumed(make: Any, opts: TrainerOptions, run: Path,
                        monkeypatch: pytest.MonkeyPatch) -> Toy:
    """A run of ``make()`` killed after its step-4 checkpoint, then a fresh ``make()``
    resumed to the end; returns the resumed recipe."""
    real = saving.save_checkpoint

    def save_or_die(ckpt_dir, step, *args, **kwargs):
        if step > 4:
            raise Killed
        return real(ckpt_dir, step, *args, **kwargs)

    monkeypatch.setattr(saving, "save_checkpoint", save_or_die)
    with pytest.raises(Killed):
        fit(make(), opts, CPU, run)
    monkeypatch.setattr(saving, "save_checkpoint", real)
    resumed = make()
    fit(resumed, opts, CPU, run)
    return resumed


def test_micro_batches_equal_one_batch_of_their_shards(tmp_path: Path) -> None:
    """A step of 2 micro-batches of 4 rows is a step on the 8 rows' mean."""
    one, two = Toy(dropout=0.0), Toy(dropout=0.0)
    r1 = fit(one, OPTS, CPU, tmp_path / "a")
    r2 = fit(two, OPTS.replace(grad_accum=2), CPU, tmp_path / "b")
    torch.testing.assert_close(_weights(one), _weights(two), rtol=1e-6, atol=1e-6)
    assert r1.steps == r2.steps == 12 and r1.last["loss"] < 0.5 * read_jsonl(
        tmp_path / "a" / "log.jsonl")[0]["loss"]
    assert all(r["nothing"] is None for r in read_jsonl(tmp_path / "a" / "log.jsonl"))  # NaN
    assert [r["step"] for r in read_jsonl(tmp_path / "b" / "log.jsonl")] == [2, 4, 6, 8, 10, 12]


def test_killed_run_resumes_exactly_with_extra_optimizer(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    opts = OPTS.replace(lr_schedule="exponential", lr_decay=0.5)
    straight = Toy(critic=True)
    fit(straight, opts, CPU, tmp_path / "a")
    lrs = [r["lr"] for r in read_jsonl(tmp_path / "a" / "log.jsonl")]
    assert lrs[3:5] == pytest.approx([0.05, 0.025])  # steps 8, 10: an epoch is 64 rows

    resumed = _killed_and_resumed(lambda: Toy(critic=True), opts, tmp_path / "b", monkeypatch)
    assert torch.equal(_weights(straight), _weights(resumed))
    assert torch.equal(straight.extras["critic"].raw.weight, resumed.extras["critic"].raw.weight)
    assert read_jsonl(tmp_path / "a" / "log.jsonl") == read_jsonl(tmp_path / "b" / "log.jsonl")
    state = torch.load(tmp_path / "b" / "checkpoints" / "step_00000012" / "trainer_state.pt",
                       weights_only=True)
    assert state["layout"] == "replicated" and set(state["extras"]) == {"critic"}
    with pytest.raises(InputError, match="--resume"):
        fit(Toy(critic=True), opts.replace(resume=False), CPU, tmp_path / "b")


def test_refusals_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--max-tokens: toy does not count tokens"):
        fit(Toy(), OPTS.replace(max_tokens=100), CPU, tmp_path / "a")
    with pytest.raises(InputError, match="--grad-accum 2: toy updates its extra"):
        fit(Toy(critic=True), OPTS.replace(grad_accum=2), CPU, tmp_path / "b")
    two = Env(rank=0, world=2, local_rank=0, device=torch.device("cpu"), amp=None)
    with pytest.raises(InputError, match="--distributed fsdp: toy does not shard"):
        fit(Toy(), OPTS.replace(distributed="fsdp"), two, tmp_path / "c")
    with pytest.raises(InputError, match="--batch-size 6 does not split into 4"):
        shard_slice(6, 0, 4)
    with pytest.raises(InputError, match="--save-every"):
        OPTS.replace(save_every=0).check()


def test_shards_cover_the_global_batch_once() -> None:
    from spokenlm.lm.data import BlockStream, DataState

    s = BlockStream(np.arange(400) % 10, np.arange(0, 401, 20), np.arange(20), 9,
                    bos_id=10, eos_id=11)
    whole, after = s.next_batch(DataState(), 8)
    parts = [s.next_batch(DataState(), 8, r, 4) for r in range(4)]
    assert np.array_equal(np.concatenate([p for p, _ in parts]), whole)
    assert all(p[1] == after for p in parts)
    assert [take(list(range(8)), r, 2) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_ssl_crops_of_a_shard_equal_the_whole_batch_sliced(tmp_path: Path) -> None:
    from spokenlm.ssl.data import CropBatches
    from spokenlm.testing.audio import write_test_manifest, write_wav_folder
    from spokenlm.audio.manifest import read_manifest
    from spokenlm.tokenize.encoders.base import num_frames
    from spokenlm.audio.load import load_row

    rows = read_manifest(write_test_manifest(tmp_path / "m.jsonl", write_wav_folder(
        tmp_path / "w", n=4, seed=2, seconds=(0.6, 1.0))))
    labels = {r["id"]: np.arange(num_frames(len(load_row(r)))) for r in rows}
    data = CropBatches(rows, labels, 4, 16000)
    idx = data.epoch_batches(0)[0]
    wav, lab = data.load(idx, seed=(0, 1))
    for s in range(2):
        w, lb = data.load(idx, seed=(0, 1), part=shard_slice(4, s, 2))
        assert torch.equal(w, wav[2 * s: 2 * s + 2]) and torch.equal(lb, lab[2 * s: 2 * s + 2])


def test_nested_options_flatten_into_flags_and_keywords() -> None:
    from spokenlm.lm.train import LM_TRAINER, LMTrainOptions

    opts = build_options(LMTrainOptions, units=Path("u"), output=Path("o"), lr=1e-3, seq_len=64)
    assert opts.trainer == LM_TRAINER.replace(lr=1e-3) and opts.seq_len == 64
    p = argparse.ArgumentParser()
    add_options(p, LMTrainOptions)
    ns = p.parse_args(["u", "--output", "o", "--max-steps", "7", "--distributed", "fsdp",
                       "--no-resume"])
    parsed = options_from_namespace(LMTrainOptions, ns)
    assert parsed.trainer == LM_TRAINER.replace(max_steps=7, distributed="fsdp", resume=False)
    assert "--weight-decay" in p.format_help() and "(default: 0.1)" in p.format_help()
    with pytest.raises(TypeError):
        build_options(LMTrainOptions, units=Path("u"), output=Path("o"), not_an_option=1)


def test_schedules() -> None:
    b = Budget(max_steps=10, step_tokens=0)
    epoch = {"n": 0}
    f = lr_factor(TrainerOptions(lr_schedule="exponential", lr_decay=0.5, warmup_steps=0),
                  b, lambda: 0.0, lambda: epoch["n"])
    assert f(3) == 1.0
    epoch["n"] = 2
    assert f(3) == 0.25
    c = lr_factor(TrainerOptions(lr_schedule="constant", warmup_steps=2), b, lambda: 0.0,
                  lambda: 0)
    assert [c(s) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    assert json.loads(json.dumps({"describe": b.describe()}))["describe"] == "10 steps"


def test_ema_is_the_running_average_of_the_weights_and_resumes_exactly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--ema 0.5: final/ gets 0.5^12 w_0 + sum_t 0.5^(13-t) w_t (the trained weights w_t after
    each step t, as a run without --ema makes them), and a killed run resumes to the same."""
    plain = Toy(dropout=0.0)
    trained = [_weights(plain)]

    class Recorded(Toy):
        def loss(self, model: nn.Module, batch: Any, step: int) -> dict[str, Any]:
            if step > 0:
                trained.append(_weights(self))  # the weights after step `step`
            return super().loss(model, batch, step)

    recorder = Recorded(dropout=0.0)
    recorder.model = plain.model
    fit(recorder, OPTS, CPU, tmp_path / "plain")
    trained.append(_weights(recorder))
    assert len(trained) == 13
    want = trained[0]
    for w in trained[1:]:
        want = 0.5 * want + 0.5 * w
    averaged = Toy(dropout=0.0)
    fit(averaged, OPTS.replace(ema=0.5), CPU, tmp_path / "ema")
    torch.testing.assert_close(_weights(averaged), want, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(want, trained[-1])

    resumed = _killed_and_resumed(lambda: Toy(dropout=0.0), OPTS.replace(ema=0.5),
                                  tmp_path / "killed", monkeypatch)
    assert torch.equal(_weights(resumed), _weights(averaged))
    with pytest.raises(InputError, match="--ema 1.0"):
        OPTS.replace(ema=1.0).check()
