"""What the joint recipes (``joint t2u train``, ``joint speechlm train``, ``joint slam train``)
share on top of the one training loop (:mod:`spokenlm.training.loop`).

Their batches, masks and random draws are a function of ``(seed, step, shard)`` only
(:func:`step_generator`), so a run needs no data position to resume exactly, and a shard is
the same rows whether one process takes it or another. Run dir::

    checkpoints/step_XXXXXXXX/  model files (``model.write_files``) + trainer_state.pt
    log.jsonl                   step, lr and the mean of each metric since the last line
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..training import Env, Recipe, Result, TrainerOptions

#: the joint recipes' optimizer: AdamW betas (0.9, 0.98), decay 0.01, clip 10, as HuBERT's
JOINT_TRAINER = TrainerOptions(lr=5e-4, beta2=0.98, weight_decay=0.01, clip_grad=10.0,
                               warmup_steps=100, min_lr_ratio=0.0, max_steps=1000,
                               precision="fp32", eval_every=0, save_every=200)


class JointRecipe(Recipe):
    """A stateless joint recipe: subclasses give :meth:`shard` (the batch of one shard)."""

    def __init__(self, name: str, model: torch.nn.Module, env: Env) -> None:
        self.name, self.model, self.env = name, model, env

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        return [self.shard(step, s, n_shards) for s in shards]

    def shard(self, step: int, shard: int, n_shards: int) -> Any:
        raise NotImplementedError


def summary(result: Result) -> dict[str, Any]:
    """The metrics of the last log window plus ``steps`` and ``train_seconds``."""
    return {**result.window, "steps": result.steps, "train_seconds": result.time_s}


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, stream, step): masks and draws of one step (of one
    shard: ``stream`` = the shard)."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, stream, step]).generate_state(1)[0]))
    return g
