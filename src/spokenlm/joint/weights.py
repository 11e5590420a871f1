"""Atomic safetensors save / strict load of a module's weights, with errors naming the fix."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..common.errors import ArtifactError
from ..common.files import atomic_path


def save_weights(module: torch.nn.Module, path: Path) -> Path:
    """Write ``module.state_dict()`` to ``path`` (safetensors, atomically)."""
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load ``path`` into ``module`` strictly; mismatches raise :class:`ArtifactError`."""
    if not Path(path).exists():
        raise ArtifactError(f"{path}: missing; the model dir is incomplete, re-run the "
                            f"training command (it resumes from its last checkpoint)")
    try:
        module.load_state_dict(load_file(str(path)))
    except RuntimeError as e:
        raise ArtifactError(f"{path}: weights do not fit config.json "
                            f"({str(e).splitlines()[0]}); re-save the model or use the "
                            f"config it was trained with") from e
