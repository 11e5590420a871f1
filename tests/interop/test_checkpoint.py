"""Loading fairseq checkpoints whose cfg is a pickled omegaconf DictConfig, without omegaconf."""

from __future__ import annotations

import enum
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from spokenlm.interop.checkpoint import Stub, load_fairseq_checkpoint, to_plain
from spokenlm.interop.fairseq_hubert import convert_fairseq_hubert
from spokenlm.testing.fairseq import (reference_hubert_features, tiny_hubert_cfg,
                                      tiny_hubert_state)


def _define(module: str, cls: type, monkeypatch: pytest.MonkeyPatch) -> type:
    """Make ``cls`` picklable as ``module.<name>`` (a fake module in sys.modules)."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules or not getattr(sys.modules[name], "_fake", False):
            mod = types.ModuleType(name)
            mod._fake = True  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, mod)
    cls.__module__ = module
    cls.__qualname__ = cls.__name__
    setattr(sys.modules[module], cls.__name__, cls)
    return cls


def save_with_fake_omegaconf(path: Path, ckpt: dict[str, Any], extractor_mode: str) -> None:
    """torch.save ``ckpt`` with ``cfg`` as stand-in omegaconf objects laid out like the real
    ones (DictConfig / ListConfig holding ``_content`` of nodes with ``_val``, metadata),
    and ``extractor_mode`` as a fairseq ChoiceEnum member; the fake modules are gone after."""
    with pytest.MonkeyPatch.context() as mp:
        class ContainerMetadata:
            def __init__(self, key: Any = None) -> None:
                self.ref_type, self.object_type, self.optional = Any, dict, True
                self.key, self.flags, self.key_type, self.element_type = key, {}, Any, Any

        class AnyNode:
            def __init__(self, value: Any, key: Any, parent: Any) -> None:
                self._val, self._metadata, self._parent = value, ContainerMetadata(key), parent

        class DictConfig:
            def __init__(self, content: dict, key: Any = None, parent: Any = None) -> None:
                self._metadata, self._parent = ContainerMetadata(key), parent
                self._content = {k: wrap(v, k, self) for k, v in content.items()}

            def __getstate__(self) -> dict:
                return dict(self.__dict__)

        class ListConfig(DictConfig):
            def __init__(self, content: list, key: Any = None, parent: Any = None) -> None:
                self._metadata, self._parent = ContainerMetadata(key), parent
                self._content = [wrap(v, i, self) for i, v in enumerate(content)]

        class Choices(enum.Enum):
            default = "default"
            layer_norm = "layer_norm"

        _define("omegaconf.base", ContainerMetadata, mp)
        _define("omegaconf.nodes", AnyNode, mp)
        _define("omegaconf.dictconfig", DictConfig, mp)
        _define("omegaconf.listconfig", ListConfig, mp)
        _define("fairseq.dataclass.constants", Choices, mp)

        def wrap(value: Any, key: Any, parent: Any) -> Any:
            if isinstance(value, dict):
                return DictConfig(value, key, parent)
            if isinstance(value, list):
                return ListConfig(value, key, parent)
            return AnyNode(value, key, parent)

        cfg = DictConfig(ckpt["cfg"])
        cfg._content["model"]._content["extractor_mode"]._val = Choices(extractor_mode)
        torch.save({**ckpt, "cfg": cfg}, path)
    assert "omegaconf" not in sys.modules or not getattr(sys.modules["omegaconf"], "_fake", 0)


def test_dictconfig_checkpoint_loads_without_omegaconf(tmp_path: Path) -> None:
    model_cfg = tiny_hubert_cfg(layer_norm_first=True, extractor_mode="layer_norm")
    plain = {"model": model_cfg, "task": {"_name": "hubert_pretraining", "normalize": True,
                                          "labels": ["km"]}, "common": {"seed": 1}}
    state = tiny_hubert_state(model_cfg, seed=3)
    path = tmp_path / "omegaconf.pt"
    save_with_fake_omegaconf(path, {"cfg": plain, "model": state, "args": None}, "layer_norm")
    with pytest.raises(ModuleNotFoundError):  # what a plain torch.load does without omegaconf
        torch.load(path, weights_only=False)

    ckpt = load_fairseq_checkpoint(path)
    assert ckpt["cfg"] == plain
    out = convert_fairseq_hubert(path, tmp_path / "hf")
    from transformers import HubertModel

    wav = torch.randn(1, 4000)
    with torch.no_grad():
        hf = HubertModel.from_pretrained(str(out)).eval()(wav, output_hidden_states=True)
    ref = reference_hubert_features(state, model_cfg, wav, 2)
    assert (hf.hidden_states[2] - ref).abs().max().item() < 1e-4


def test_to_plain_handles_namespaces_enums_and_unknown_stubs() -> None:
    import argparse

    class Color(enum.Enum):
        red = "r"

    ns = argparse.Namespace(a=1, b=[Color.red, (2, 3)], c={"d": argparse.Namespace(e="f")})
    assert to_plain(ns) == {"a": 1, "b": ["r", [2, 3]], "c": {"d": {"e": "f"}}}
    stub = Stub.__new__(Stub)
    stub.__setstate__({"x": 1, "_private": 2})
    assert to_plain(stub) == {"x": 1}


def test_real_omegaconf_checkpoint(tmp_path: Path) -> None:
    """``data/omegaconf_hubert.pt`` was written with real omegaconf 2.0.6 (see the script
    beside it): every global in it passes the allowlist and the cfg comes back plain."""
    path = Path(__file__).with_name("data") / "omegaconf_hubert.pt"
    ckpt = load_fairseq_checkpoint(path)
    model_cfg = tiny_hubert_cfg(layers=2, embed_dim=32)
    assert ckpt["cfg"]["model"] == model_cfg
    assert ckpt["cfg"]["task"]["labels"] == ["km"] and ckpt["cfg"]["task"]["normalize"] is False
    out = convert_fairseq_hubert(path, tmp_path / "hf")
    from transformers import HubertModel

    wav = torch.randn(1, 4000)
    with torch.no_grad():
        hf = HubertModel.from_pretrained(str(out)).eval()(wav, output_hidden_states=True)
    ref = reference_hubert_features(ckpt["model"], model_cfg, wav, 2)
    assert (hf.hidden_states[2] - ref).abs().max().item() < 1e-4
