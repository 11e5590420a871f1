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

Every global the pickle names is checked against an allowlist
(:mod:`spokenlm.interop.safe_pickle`), so a crafted checkpoint cannot run code here;
``allow_globals`` (``--allow-global module.name``) adds exact globals a trusted file needs.
"""

from __future__ import annotations

import argparse
import enum
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import InputError
from .safe_pickle import Stub, UnsafePickleError, restricted_torch_load


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


def load_fairseq_checkpoint(path: str | os.PathLike, allow_globals: Sequence[str] = ()
                            ) -> dict[str, Any]:
    """Load a fairseq checkpoint as a dict; ``cfg`` / ``args`` become plain dicts.

    Tensors stay on the CPU in their saved dtype. Globals outside the allowlist raise
    :class:`UnsafePickleError` before anything runs, unless named in ``allow_globals``. Raises
    :class:`InputError` naming the file when it is missing, not a torch file, or not a
    fairseq checkpoint (no ``model``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found; pass the fairseq .pt file")
    try:
        ckpt = restricted_torch_load(path, allow_globals)
    except UnsafePickleError:
        raise
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
