"""Damage a training run's checkpoints the way a copy cut short or a power cut does."""

from __future__ import annotations

import os
from pathlib import Path


def truncate_checkpoint(run: Path, step: int, file: str = "model.safetensors") -> Path:
    """Cut ``<run>/checkpoints/step_<step>/<file>`` to half its size; returns the file."""
    path = Path(run) / "checkpoints" / f"step_{step:08d}" / file
    os.truncate(path, path.stat().st_size // 2)
    return path


def checkpoint_steps(run: Path) -> list[int]:
    """Steps of the checkpoint dirs of run ``run``, oldest first."""
    return sorted(int(p.name.removeprefix("step_"))
                  for p in (Path(run) / "checkpoints").glob("step_*"))
