"""The one training loop and its options, shared by every spokenlm trainer.

- :mod:`.options`: :class:`TrainerOptions`, nested into each command's options.
- :mod:`.loop`: :func:`fit` and the :class:`Recipe` hooks a trainer implements.
- :mod:`.schedule`: optimizers, schedules, budgets.
- :mod:`.distributed`: torchrun process groups, DDP / FSDP2, the data split by rank.
- :mod:`.checkpoints`: replicated and sharded checkpoints, exact resume.
"""

from __future__ import annotations

from .distributed import Env, init, shard_slice, take
from .loop import Recipe, Result, fit
from .options import TrainerOptions

__all__ = ["Env", "Recipe", "Result", "TrainerOptions", "fit", "init", "shard_slice", "take"]
