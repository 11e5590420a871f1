"""Read fairseq ``.pt`` checkpoints without fairseq or omegaconf installed.

A fairseq checkpoint is ``torch.save`` of a dict::

    {"cfg": <model/task/... config>, "args": <legacy argparse.Namespace or None>,
     "model": <state dict>, "optimizer_history": [...], "extra_state": {...}, ...}

Recent fairseq writes ``cfg`` as a plain dict (``OmegaConf.to_container``); checkpoints from
2020-2021 (HuBERT, mHuBERT, early wav2vec 2.0) pickle an omegaconf ``DictConfig`` whose
leaves are omegaconf nodes and sometimes fairseq enums; the oldest ones carry an
``argparse.Namespace`` under ``args``. Unpickling those normally needs both packages. Here
every class from ``fairseq``, ``omegaconf`` or ``hydra`` is replaced by a small stand-in
(:class:`Stub`) that records what the pickle gives it, and :func:`to_plain` turns the result
into plain dicts, lists and scalars.

Unpickling runs code chosen by the file's author (as ``torch.load(weights_only=False)``
and fairseq itself do): only load checkpoints you trust.
"""

from __future__ import annotations

import argparse
import enum
import os
import pickle
import types
from pathlib import Path
from typing import Any

import torch

from ..common.errors import InputError

#: Modules whose classes are replaced by :class:`Stub` when unpickling.
STUB_PREFIXES: tuple[str, ...] = ("fairseq", "omegaconf", "hydra")


class Stub:
    """Stand-in for a class the unpickler cannot or should not import.

    Records constructor arguments (enums and ``__reduce__``-style objects are rebuilt as
    ``cls(*args)``) and the pickled state (``__setstate__``), so :func:`to_plain` can recover
    the values: omegaconf containers keep theirs in ``_content``, nodes in ``_val``.
    """

    _stub_module: str = ""
    _stub_name: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stub_args = args
        self._stub_kwargs = kwargs
        self._stub_state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = super().__new__(cls)
        obj._stub_args, obj._stub_kwargs, obj._stub_state = args, kwargs, None
        return obj

    def __setstate__(self, state: Any) -> None:
        self._stub_state = state

    def __repr__(self) -> str:
        return f"<stub {self._stub_module}.{self._stub_name}>"


_STUB_CLASSES: dict[tuple[str, str], type[Stub]] = {}


def stub_class(module: str, name: str) -> type[Stub]:
    """The (cached) :class:`Stub` subclass standing in for ``module.name``."""
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (Stub,), {"_stub_module": module, "_stub_name": name})
    return _STUB_CLASSES[key]


class StubUnpickler(pickle.Unpickler):
    """Unpickler mapping fairseq / omegaconf / hydra classes to :class:`Stub` subclasses."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in STUB_PREFIXES:
            return stub_class(module, name)
        return super().find_class(module, name)


def _pickle_load(file: Any, **kwargs: Any) -> Any:
    return StubUnpickler(file, **kwargs).load()


#: A ``pickle_module`` for ``torch.load``: torch subclasses ``Unpickler`` (keeping our
#: ``find_class`` for everything but storages) and calls ``load`` for legacy files.
stub_pickle = types.ModuleType("spokenlm_stub_pickle")
stub_pickle.Unpickler = StubUnpickler  # type: ignore[attr-defined]
stub_pickle.load = _pickle_load  # type: ignore[attr-defined]
stub_pickle.__dict__["__version__"] = getattr(pickle, "format_version", "4.0")


def to_plain(obj: Any) -> Any:
    """Recursively turn stubs, namespaces and containers into dicts, lists and scalars.

    omegaconf ``DictConfig`` / ``ListConfig`` -> dict / list of their ``_content``; omegaconf
    value nodes -> their ``_val``; enums (real or stubbed) -> their value;
    ``argparse.Namespace`` -> dict. Tensors are returned unchanged.
    """
    if isinstance(obj, Stub):
        state = obj._stub_state
        if isinstance(state, dict):
            if "_content" in state:
                return to_plain(state["_content"])
            if "_val" in state:
                return to_plain(state["_val"])
            if "_value_" in state:
                return to_plain(state["_value_"])
            return {k: to_plain(v) for k, v in state.items() if not str(k).startswith("_")}
        if obj._stub_args:  # enum members and reduce-style objects: cls(value)
            return to_plain(obj._stub_args[0]) if len(obj._stub_args) == 1 else [
                to_plain(a) for a in obj._stub_args]
        return to_plain(state)
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if isinstance(obj, argparse.Namespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def load_fairseq_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a fairseq checkpoint as a dict; ``cfg`` / ``args`` become plain dicts.

    Tensors stay on the CPU in their saved dtype. Raises :class:`InputError` naming the file
    when it is missing, not a torch file, or not a fairseq checkpoint (no ``model``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found; pass the fairseq .pt file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, pickle_module=stub_pickle)
    except Exception as e:  # noqa: BLE001 - torch / pickle raise many types
        raise InputError(f"{path}: cannot read it as a torch checkpoint ({type(e).__name__}: "
                         f"{e}); pass an unmodified fairseq .pt file") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' "
                         f"state dict, got {keys}); pass the .pt file fairseq wrote")
    for key in ("cfg", "args"):
        if ckpt.get(key) is not None:
            ckpt[key] = to_plain(ckpt[key])
    return ckpt


def model_config(ckpt: dict[str, Any], path: str | os.PathLike) -> tuple[dict, dict]:
    """``(model cfg, task cfg)`` of a loaded checkpoint, from ``cfg`` or legacy ``args``.

    A legacy ``args`` namespace is flat: it serves as both.
    """
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        return cfg["model"], cfg.get("task") or {}
    args = ckpt.get("args")
    if isinstance(args, dict):
        return args, args
    raise InputError(f"{path}: the checkpoint has neither cfg['model'] nor legacy args; "
                     f"it was not written by fairseq's trainer, re-save it with fairseq")
