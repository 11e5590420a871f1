"""Training checkpoints: ``checkpoints/step_XXXXXXXX/`` (a unit LM dir + ``trainer_state.pt``)
and ``checkpoints/latest`` naming the last complete one.

Each checkpoint is written into a temporary sibling and renamed into place, then ``latest``
is replaced atomically, so a kill at any moment leaves the previous checkpoint usable.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..common.errors import ArtifactError
from ..common.files import atomic_path
from .model import UnitLM

STATE_FILE = "trainer_state.pt"
LATEST = "latest"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states, in torch.load(weights_only) types."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(ckpt_dir: Path, step: int, lm: UnitLM, trainer_state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest`` at it, keep the last ``keep``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=ckpt_dir))
    try:
        lm.write_files(tmp)
        torch.save({**trainer_state, "step": step, "spokenlm_version": __version__},
                   tmp / STATE_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    with atomic_path(ckpt_dir / LATEST) as t:
        t.write_text(final.name + "\n")
    _prune(ckpt_dir, keep, final)
    return final


def _complete(path: Path) -> bool:
    return path.is_dir() and (path / STATE_FILE).exists()


def _step_dirs(ckpt_dir: Path) -> list[Path]:
    return sorted(p for p in ckpt_dir.glob("step_*") if _complete(p))


def _prune(ckpt_dir: Path, keep: int, current: Path) -> None:
    for p in _step_dirs(ckpt_dir)[: -max(keep, 1)]:
        if p != current:
            shutil.rmtree(p, ignore_errors=True)
    for p in ckpt_dir.glob(".step_*.tmp"):  # left by a kill mid-write
        shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint named by ``latest`` (or the newest complete one), None when none."""
    pointer = ckpt_dir / LATEST
    if pointer.exists():
        named = ckpt_dir / pointer.read_text().strip()
        if _complete(named):
            return named
    dirs = _step_dirs(ckpt_dir) if ckpt_dir.is_dir() else []
    return dirs[-1] if dirs else None


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (built with the run's config); return the trainer state."""
    from safetensors.torch import load_file

    weights = path / "model.safetensors"
    if not weights.exists():
        raise ArtifactError(f"{path}: no model.safetensors; delete this checkpoint dir to "
                            "resume from the previous one")
    try:
        missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    except RuntimeError as e:
        raise ArtifactError(f"{path}: checkpoint does not fit the model built from these "
                            f"options ({str(e).splitlines()[0]}...); resume with the same "
                            "size options, or choose a new --output") from e
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ArtifactError(f"{path}: checkpoint weights do not match the model (missing "
                            f"{sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]}); "
                            "resume with the same size options or use a new --output")
    try:
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ArtifactError(f"{path / STATE_FILE}: unreadable trainer state ({e}); delete "
                            "this checkpoint dir to resume from the previous one") from e
    return state
