"""Atomic safetensors save / strict load of a module's weights, with errors naming the fix."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

from ..common.errors import ArtifactError
from .. import __version__
from ..common.files import atomic_dir, atomic_path, read_json, write_json
from ..common.paths import ArtifactKind


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


class ModelDir:
    """Save/load for a module built from one config dataclass: ``config.json`` (with a
    ``type`` tag) + ``model.safetensors``. Subclasses set the three class variables."""

    TYPE: ClassVar[str]
    CONFIG: ClassVar[type]
    TRAIN_HINT: ClassVar[str]  # the command that makes such a dir, for error messages
    config: Any

    def write_files(self, path: Path) -> None:
        save_weights(self, Path(path) / "model.safetensors")  # type: ignore[arg-type]
        write_json(Path(path) / "config.json", {"type": self.TYPE, **asdict(self.config),
                                                "spokenlm_version": __version__})

    @classmethod
    def artifact_kind(cls) -> ArtifactKind:
        """Dirs a save may replace: those whose config.json names this ``TYPE``."""
        return ArtifactKind(cls.TYPE, ("config.json",), cls.TYPE)

    def save_pretrained(self, path: str | Path) -> Path:
        with atomic_dir(path, self.artifact_kind()) as tmp:
            self.write_files(tmp)
        return Path(path)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Any:
        path = Path(path)
        cfg: dict[str, Any] = read_json(path / "config.json") if (path / "config.json").exists() \
            else {}
        if cfg.pop("type", None) != cls.TYPE:
            raise ArtifactError(f"{path}: not a {cls.TYPE} model dir (config.json type is not "
                                f"{cls.TYPE!r}); train one with `{cls.TRAIN_HINT}`")
        cfg.pop("spokenlm_version", None)
        model = cls(cls.CONFIG(**cfg))  # type: ignore[call-arg]
        load_weights(model, path / "model.safetensors")  # type: ignore[arg-type]
        return model.eval()  # type: ignore[attr-defined]
