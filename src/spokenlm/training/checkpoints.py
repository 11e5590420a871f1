"""The checkpoints of a training run, for every trainer, built on
:mod:`spokenlm.common.checkpoints` (atomic ``step_XXXXXXXX/`` dirs, ``latest``, pruning and
the fall-back past damaged checkpoints).

A checkpoint holds all an exact resume needs: the model, every optimizer and scheduler
(the main one and the recipe's extras, e.g. a GAN's discriminators), the RNG states of
every process, the recipe's data position and the loop's counters. Two layouts:

- replicated (one process, DDP): the model's own files (``model.write_files``: a plain model
  dir) + ``trainer_state.pt`` with the optimizer; written by rank 0.
- sharded (FSDP2): ``torch.distributed.checkpoint`` files (``.metadata`` + one
  ``__<rank>_0.distcp`` per process) of the model and optimizer state dicts
  (``get_state_dict``/``set_state_dict``), written by every process into one staging dir,
  + ``trainer_state.pt`` by rank 0, published (renamed into place) by rank 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..common.checkpoints import (checkpoint_name, publish_checkpoint, read_state,
                                  reading, refuse_unless_resume, resume_checkpoint,
                                  resume_training, rng_state, save_checkpoint, set_rng_state,
                                  staging_dir)
from ..common.errors import ArtifactError, InputError
from .distributed import Engine, Env

if TYPE_CHECKING:
    from .loop import Extra, Recipe

_SHARDED, _REPLICATED = "sharded", "replicated"


class RunCheckpoints:
    """Save and resume the checkpoints of ``run`` (``run/checkpoints``); both collective."""

    def __init__(self, run: Path, env: Env, engine: Engine, optimizer: torch.optim.Optimizer,
                 scheduler: Any, extras: dict[str, Extra], recipe: Recipe, keep: int) -> None:
        self.run, self.dir = run, run / "checkpoints"
        self.env, self.engine, self.recipe, self.keep = env, engine, recipe, keep
        self.optimizer, self.scheduler, self.extras = optimizer, scheduler, extras
        self.layout = _SHARDED if engine.sharded else _REPLICATED

    def _trainer_state(self, loop_state: dict[str, Any]) -> dict[str, Any]:
        rngs = self.env.gather(rng_state())
        return {"layout": self.layout, "world_size": self.env.world, "state": loop_state,
                "recipe": self.recipe.state_dict(), "rng": rngs[0], "rngs": rngs,
                "scheduler": self.scheduler.state_dict(),
                "extras": {k: e.state_dict() for k, e in self.extras.items()}}

    def save(self, step: int, loop_state: dict[str, Any]) -> None:
        """Checkpoint ``step``; every process calls it."""
        state = self._trainer_state(loop_state)
        if self.layout == _SHARDED:
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_state_dict

            tmp = self.dir / f".{checkpoint_name(step)}.tmp"  # one dir for every process
            if self.env.main:
                staging_dir(self.dir, step)
            self.env.barrier()
            msd, osd = get_state_dict(self.engine.model, self.optimizer)
            dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=tmp)
            self.env.barrier()
            if self.env.main:
                publish_checkpoint(self.dir, step, tmp, state, self.keep)
        elif self.env.main:
            save_checkpoint(self.dir, step, self.recipe,
                            {**state, "optimizer": self.optimizer.state_dict()}, self.keep)
        self.env.barrier()

    def resume(self, resume: bool) -> tuple[Path, dict[str, Any]] | None:
        """Load the newest intact checkpoint into everything; ``(its path, the loop state)``,
        or None for a fresh start. Refuses a run with checkpoints unless ``resume``."""
        if self.layout == _SHARDED:
            found = resume_checkpoint(refuse_unless_resume(self.run, resume), self._load_sharded)
            if found is not None:
                self.scheduler.load_state_dict(found[1]["scheduler"])
                set_rng_state(found[1]["rng"])
            ckpt, saved = found if found is not None else (None, None)
        else:
            ckpt, saved = resume_training(self.run, resume, self._load_replicated,
                                          self.optimizer, self.scheduler)
        if ckpt is None or saved is None:
            return None
        try:
            for k, e in self.extras.items():
                e.load_state_dict(saved["extras"][k])
        except (RuntimeError, KeyError, ValueError) as e:
            raise ArtifactError(f"{ckpt}: cannot resume from this checkpoint ({e}); delete "
                                f"{self.dir} to start over") from e
        rngs = saved["rngs"]
        if len(rngs) == self.env.world:
            set_rng_state(rngs[self.env.rank])
        elif self.env.world > 1:  # another process count: the data split is the same
            torch.manual_seed(int(saved["step"]) * 1000 + self.env.rank)
            self.env.log(f"{ckpt.name} was written by {len(rngs)} process(es), resumed by "
                         f"{self.env.world}: dropout draws differ from an uninterrupted run")
        self.recipe.load_state_dict(saved["recipe"])
        return ckpt, saved["state"]

    def _check(self, path: Path, saved: dict[str, Any]) -> dict[str, Any]:
        if "recipe" not in saved or "layout" not in saved:
            raise ArtifactError(f"{path}: a checkpoint of an older spokenlm (no trainer loop "
                                f"state); delete {self.dir} to start over, or choose a new "
                                f"--output")
        if saved["layout"] != self.layout:
            want = "fsdp" if saved["layout"] == _SHARDED else "ddp"
            raise InputError(f"{path}: a {saved['layout']} checkpoint; resume it with "
                             f"--distributed {want} under torchrun (or choose a new --output)")
        return saved

    def _load_replicated(self, path: Path) -> dict[str, Any]:
        saved = self.recipe.read_checkpoint(path)
        return self._check(path, saved)

    def _load_sharded(self, path: Path) -> dict[str, Any]:
        """Read the DCP shards of ``path`` into copies of the live state dicts, and only
        then set them into the model and optimizer (a failed read changes nothing)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        saved = self._check(path, read_state(path))
        msd, osd = get_state_dict(self.engine.model, self.optimizer)
        target = {"model": _clone(msd), "optimizer": _clone(osd)}
        with reading(path):
            dcp.load(target, checkpoint_id=path)
        set_state_dict(self.engine.model, self.optimizer, model_state_dict=target["model"],
                       optim_state_dict=target["optimizer"])
        return saved


def _clone(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _clone(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_clone(v) for v in tree]
    return tree
