"""AdamW and warmup + cosine: now in :mod:`spokenlm.training.schedule`, shared by every
trainer; re-exported here for older imports."""

from __future__ import annotations

from ..training.schedule import make_optimizer, warmup_cosine

__all__ = ["make_optimizer", "warmup_cosine"]
