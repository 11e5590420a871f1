"""Training checkpoints, shared by every trainer: ``checkpoints/step_XXXXXXXX/`` (the model's
files + ``trainer_state.pt``) and ``checkpoints/latest`` naming the last one saved.

Saving writes a checkpoint into a temporary sibling, flushes it to disk, renames it into
place, replaces ``latest``, and only then prunes old checkpoints, so a kill or a power cut
at any moment leaves the previous checkpoint intact.

Resuming (:func:`resume_checkpoint`) tries the checkpoint ``latest`` names, then the others,
newest first. A trainer's load function reads every file of a checkpoint before it changes
the model, and raises :class:`UnreadableCheckpoint` when one is missing, truncated or
corrupt: that checkpoint is logged and skipped, and the model is left as it was for the next
try, so resuming past a bad checkpoint is exactly resuming from the older one. The next save
repoints ``latest`` and removes the skipped checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from .. import __version__
from .errors import ArtifactError, InputError
from .files import atomic_path
from .progress import log

STATE_FILE = "trainer_state.pt"
WEIGHTS_FILE = "model.safetensors"
LATEST = "latest"
T = TypeVar("T")


class SavesFiles(Protocol):
    def write_files(self, path: Path) -> None: ...


class UnreadableCheckpoint(ArtifactError):
    """A file of a checkpoint is missing, truncated or corrupt; resume tries an older one."""


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


# ---- saving ------------------------------------------------------------------------------

def save_checkpoint(ckpt_dir: Path, step: int, model: SavesFiles, trainer_state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write checkpoint ``step`` (``model.write_files`` + the trainer state) atomically,
    point ``latest`` at it, then keep the last ``keep``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{checkpoint_name(step)}.", suffix=".tmp",
                                dir=ckpt_dir))
    try:
        model.write_files(tmp)
        return publish_checkpoint(ckpt_dir, step, tmp, trainer_state, keep)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def staging_dir(ckpt_dir: Path, step: int) -> Path:
    """An empty ``.step_XXXXXXXX.tmp`` dir of a fixed name (so that several processes can
    write the shards of one checkpoint into it), for :func:`publish_checkpoint`."""
    tmp = ckpt_dir / f".{checkpoint_name(step)}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish_checkpoint(ckpt_dir: Path, step: int, tmp: Path, trainer_state: dict[str, Any],
                       keep: int = 2) -> Path:
    """Add the trainer state to ``tmp`` (holding the model files), flush it, rename it to
    checkpoint ``step``, point ``latest`` at it, then keep the last ``keep``."""
    final = ckpt_dir / checkpoint_name(step)
    torch.save({**trainer_state, "step": step, "spokenlm_version": __version__},
               tmp / STATE_FILE)
    _flush(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    with atomic_path(ckpt_dir / LATEST) as t:
        t.write_text(final.name + "\n")
    _flush(ckpt_dir, files=False)
    _prune(ckpt_dir, keep, final)
    return final


def _flush(directory: Path, files: bool = True) -> None:
    """fsync the files under ``directory`` and the directory itself, so that a rename that
    follows cannot reach the disk before the data it names (a power cut then leaves a
    complete checkpoint or none, never a truncated one)."""
    if os.name != "posix":
        return
    paths = [p for p in directory.rglob("*") if p.is_file()] if files else []
    for p in [*paths, directory]:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _complete(path: Path) -> bool:
    return path.is_dir() and (path / STATE_FILE).exists()


def _prune(ckpt_dir: Path, keep: int, current: Path) -> None:
    """Keep the ``keep`` newest complete checkpoints up to ``current``. Older ones go, and so
    do any after it: they belong to the history a resume went back from (a corrupt
    checkpoint it skipped), and must not be resumed from later."""
    done = sorted(p for p in ckpt_dir.glob("step_*") if p.name <= current.name and _complete(p))
    kept = set(done[-max(keep, 1):]) | {current}
    for p in ckpt_dir.glob("step_*"):
        if p not in kept:
            shutil.rmtree(p, ignore_errors=True)
    for p in ckpt_dir.glob(".step_*.tmp"):  # left by a kill mid-write
        shutil.rmtree(p, ignore_errors=True)


# ---- resuming ----------------------------------------------------------------------------

def checkpoint_candidates(ckpt_dir: Path) -> list[Path]:
    """The checkpoints a resume tries, in order: the one ``latest`` names, then every other
    ``step_*`` dir, newest first. Empty when the run has none (a fresh start)."""
    if not ckpt_dir.is_dir():
        return []
    dirs = sorted((p for p in ckpt_dir.glob("step_*") if p.is_dir()), reverse=True)
    pointer = ckpt_dir / LATEST
    named = pointer.read_text().strip() if pointer.is_file() else ""
    first = [p for p in dirs if p.name == named]
    return first + [p for p in dirs if p.name != named]


def resume_checkpoint(ckpt_dir: Path, load: Callable[[Path], T]) -> tuple[Path, T] | None:
    """``(path, load(path))`` for the first candidate checkpoint that ``load`` can read, or
    None when there is none. ``load`` must read all of a checkpoint's files before it changes
    anything, and raise :class:`UnreadableCheckpoint` for a missing or corrupt file; such a
    checkpoint is skipped with one log line. Any other error (a checkpoint that does not fit
    the model of these options) stops the resume: an older checkpoint would not fit either.
    Raises :class:`ArtifactError` when every checkpoint is unreadable."""
    candidates = checkpoint_candidates(ckpt_dir)
    failures = []
    for i, path in enumerate(candidates):
        try:
            return path, load(path)
        except UnreadableCheckpoint as e:
            failures.append(f"{path.name}: {e}")
            then = (f"trying {candidates[i + 1].name}" if i + 1 < len(candidates)
                    else "no older checkpoint left")
            log(f"skipping checkpoint {path}: {e}; {then}")
    if not candidates:
        return None
    raise ArtifactError(f"{ckpt_dir}: no intact checkpoint to resume from "
                        f"({'; '.join(failures)}); delete {ckpt_dir} to start the run over, "
                        "or choose a new --output")


def refuse_unless_resume(run: Path, resume: bool) -> Path:
    """``run/checkpoints``; an :class:`InputError` when it holds checkpoints and not
    ``resume`` (a run is never silently overwritten)."""
    ckpt_dir = run / "checkpoints"
    found = checkpoint_candidates(ckpt_dir)
    if found and not resume:
        raise InputError(f"{run}: already holds checkpoints ({found[0].name}); pass --resume "
                         "to continue that run, or choose a new --output")
    return ckpt_dir


def resume_training(run: Path, resume: bool, load: Callable[[Path], dict[str, Any]],
                    optimizer: torch.optim.Optimizer, scheduler: Any
                    ) -> tuple[Path, dict[str, Any]] | tuple[None, None]:
    """The resume step every trainer shares: refuse a ``run`` that already holds
    checkpoints unless ``resume``; else load the newest intact one (:func:`resume_checkpoint`
    on ``run/checkpoints``) and restore ``optimizer``, ``scheduler`` and the RNG states.
    Returns ``(checkpoint, saved trainer state)``, or ``(None, None)`` for a fresh start."""
    ckpt_dir = refuse_unless_resume(run, resume)
    resumed = resume_checkpoint(ckpt_dir, load)
    if resumed is None:
        return None, None
    ckpt, saved = resumed
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    return ckpt, saved


def _reason(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


@contextlib.contextmanager
def reading(what: Path) -> Iterator[None]:
    """Turn any failure to read ``what`` (a checkpoint file or dir) into
    :class:`UnreadableCheckpoint`; for loaders that read several files at once."""
    try:
        yield
    except UnreadableCheckpoint:
        raise
    except Exception as e:  # noqa: BLE001 - truncated files fail in many ways
        which = "its files" if what.is_dir() else what.name
        raise UnreadableCheckpoint(f"cannot read {which} ({_reason(e)})") from e


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of safetensors file ``path``, on the CPU."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise UnreadableCheckpoint(f"{path.name} is missing")
    with reading(path):
        return load_file(str(path))


def read_state(path: Path) -> dict[str, Any]:
    """The trainer state (``trainer_state.pt``) of checkpoint dir ``path``."""
    file = path / STATE_FILE
    if not file.is_file():
        raise UnreadableCheckpoint(f"{STATE_FILE} is missing")
    with reading(file):
        return torch.load(file, map_location="cpu", weights_only=True)


def check_fits(path: Path, weights: dict[str, torch.Tensor], module: torch.nn.Module,
               optional: Collection[str] = ()) -> None:
    """Raise :class:`ArtifactError` unless ``weights`` has every tensor of ``module`` (but
    ``optional`` ones, e.g. a tied output head), of the same shapes, and no other."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights) - set(optional))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in weights and weights[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ArtifactError(f"{path}: checkpoint does not fit the model built from these "
                            f"options (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                            f"other shapes {shapes[:2]}); resume with the options the run "
                            "was started with, or choose a new --output")


def load_checkpoint(path: Path, model: torch.nn.Module, optional: Collection[str] = (),
                    weights_file: str = WEIGHTS_FILE) -> dict[str, Any]:
    """Read ``weights_file`` and the trainer state of checkpoint ``path``, check the weights
    fit ``model``, then load them into it; return the trainer state. For trainers whose
    model's ``write_files`` writes one safetensors file of its whole ``state_dict``."""
    return restore_checkpoint(path, model, read_weights(path / weights_file), optional)


def restore_checkpoint(path: Path, model: torch.nn.Module, weights: dict[str, torch.Tensor],
                       optional: Collection[str] = ()) -> dict[str, Any]:
    """Check ``weights`` (read from checkpoint ``path`` however its model dir stores them)
    fit ``model``, load them into it and return the checkpoint's trainer state."""
    state = read_state(path)
    check_fits(path, weights, model, optional)
    model.load_state_dict(weights, strict=False)  # strict up to ``optional``: checked above
    return state
