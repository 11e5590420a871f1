"""The shared checkpoint mechanism: atomic saves, pruning, and resuming past damaged ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spokenlm.common.checkpoints import UnreadableCheckpoint, checkpoint_candidates, \
    load_checkpoint, resume_checkpoint, resume_training, rng_state, save_checkpoint
from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.common.files import atomic_path
from spokenlm.testing.checkpoints import checkpoint_steps, truncate_checkpoint


class Tiny(torch.nn.Linear):
    def __init__(self, seed: int) -> None:
        torch.manual_seed(seed)
        super().__init__(64, 64)

    def write_files(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()},
                  str(path / "model.safetensors"))


def _run(tmp_path: Path, steps: tuple[int, ...], keep: int = 2) -> tuple[Path, dict[int, Tiny]]:
    ckpt_dir = tmp_path / "run" / "checkpoints"
    models = {s: Tiny(s) for s in steps}
    for s in steps:
        save_checkpoint(ckpt_dir, s, models[s], {"marker": s}, keep)
    return ckpt_dir, models


def _resume(ckpt_dir: Path, model: torch.nn.Module) -> tuple[Path, dict] | None:
    return resume_checkpoint(ckpt_dir, lambda p: load_checkpoint(p, model))


def test_candidates_start_at_latest_then_newest_first(tmp_path: Path) -> None:
    ckpt_dir, _ = _run(tmp_path, (1, 2, 3), keep=3)
    assert [p.name[-1] for p in checkpoint_candidates(ckpt_dir)] == ["3", "2", "1"]
    with atomic_path(ckpt_dir / "latest") as t:
        t.write_text("step_00000002\n")
    assert [p.name[-1] for p in checkpoint_candidates(ckpt_dir)] == ["2", "3", "1"]
    (ckpt_dir / "latest").write_text("")  # a pointer lost in a power cut: newest first
    assert [p.name[-1] for p in checkpoint_candidates(ckpt_dir)] == ["3", "2", "1"]
    assert checkpoint_candidates(tmp_path / "none") == []
    assert _resume(tmp_path / "none", Tiny(0)) is None


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_resume_skips_a_damaged_checkpoint_and_leaves_the_model_clean(
        tmp_path: Path, file: str, capsys: pytest.CaptureFixture) -> None:
    ckpt_dir, models = _run(tmp_path, (1, 2))
    truncate_checkpoint(ckpt_dir.parent, 2, file)
    model = Tiny(7)
    path, state = _resume(ckpt_dir, model)
    assert path.name == "step_00000001" and state["marker"] == 1 and state["step"] == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 models[1].state_dict().values()))
    err = capsys.readouterr()
    line = [x for x in (err.out + err.err).splitlines() if "skipping" in x]
    assert len(line) == 1 and "step_00000002" in line[0] and file in line[0]
    assert "step_00000001" in line[0]


def test_next_save_drops_the_skipped_checkpoint(tmp_path: Path) -> None:
    ckpt_dir, _ = _run(tmp_path, (10, 20, 30), keep=3)
    truncate_checkpoint(ckpt_dir.parent, 30)
    path, _ = _resume(ckpt_dir, Tiny(0))
    assert path.name == "step_00000020"
    save_checkpoint(ckpt_dir, 25, Tiny(25), {}, keep=3)  # the resumed run saves again
    assert checkpoint_steps(ckpt_dir.parent) == [10, 20, 25]
    assert (ckpt_dir / "latest").read_text().strip() == "step_00000025"
    assert not list(ckpt_dir.glob(".*.tmp"))


def test_every_checkpoint_damaged_is_one_clear_error(tmp_path: Path) -> None:
    ckpt_dir, _ = _run(tmp_path, (1, 2))
    truncate_checkpoint(ckpt_dir.parent, 2)
    truncate_checkpoint(ckpt_dir.parent, 1, "trainer_state.pt")
    with pytest.raises(ArtifactError, match="no intact checkpoint") as e:
        _resume(ckpt_dir, Tiny(0))
    msg = str(e.value)
    assert "\n" not in msg and f"delete {ckpt_dir}" in msg and "--output" in msg
    assert "step_00000002" in msg and "step_00000001" in msg
    assert not isinstance(e.value, UnreadableCheckpoint)


def test_a_checkpoint_of_another_model_stops_at_once(tmp_path: Path) -> None:
    ckpt_dir, _ = _run(tmp_path, (1, 2))
    with pytest.raises(ArtifactError, match="does not fit") as e:
        _resume(ckpt_dir, torch.nn.Linear(64, 32))
    assert "step_00000002" in str(e.value)  # not "no intact checkpoint" after trying all


def test_resume_training_refuses_without_resume_and_restores_every_state(tmp_path: Path) -> None:
    run = tmp_path / "run"
    model = Tiny(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    assert resume_training(run, False, lambda p: load_checkpoint(p, model), opt, sched) \
        == (None, None)  # fresh start
    model(torch.randn(2, 64)).sum().backward()
    opt.step()
    sched.step()
    rng = rng_state()
    save_checkpoint(run / "checkpoints", 1, model, {"optimizer": opt.state_dict(),
                                                   "scheduler": sched.state_dict(), "rng": rng})
    expected = torch.rand(3)
    with pytest.raises(InputError, match="--resume"):
        resume_training(run, False, lambda p: load_checkpoint(p, model), opt, sched)

    fresh = Tiny(1)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda step: 0.5 ** step)
    ckpt, saved = resume_training(run, True, lambda p: load_checkpoint(p, fresh), opt2, sched2)
    assert ckpt is not None and ckpt.name.endswith("1")
    assert torch.equal(fresh.weight, model.weight)
    assert sched2.last_epoch == 1 and opt2.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"],
                       opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(3), expected)  # RNG restored to the saved point
