"""Regenerate ``omegaconf_hubert.pt``: a tiny HuBERT checkpoint whose ``cfg`` is a real
omegaconf 2.0.6 ``DictConfig`` (the version fairseq pins), laid out as fairseq's trainer
saves it: a structured ``HubertConfig`` with a ``ChoiceEnum`` field, plus ``task`` and
``common`` sections. fairseq itself is not importable here, so its two classes are defined
under their real module names. Run with omegaconf==2.0.6 and torch installed::

    PYTHONPATH=src python tests/interop/data/make_omegaconf_hubert.py
"""

# no `from __future__ import annotations`: omegaconf reads the real annotation types

import enum
import sys
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from omegaconf import OmegaConf

from spokenlm.testing.fairseq import tiny_hubert_cfg, tiny_hubert_state


def _module(name: str) -> types.ModuleType:
    for i in range(1, name.count(".") + 2):
        sys.modules.setdefault(".".join(name.split(".")[:i]),
                               types.ModuleType(".".join(name.split(".")[:i])))
    return sys.modules[name]


class StrEnum(enum.Enum):  # fairseq.dataclass.constants.StrEnum
    def __str__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        return self.value == other

    def __hash__(self) -> int:
        return hash(str(self))


EXTRACTOR_MODE_CHOICES = StrEnum("ChoiceEnum", {k: k for k in ["default", "layer_norm"]})
EXTRACTOR_MODE_CHOICES.__module__ = "fairseq.dataclass.constants"
_module("fairseq.dataclass.constants").ChoiceEnum = EXTRACTOR_MODE_CHOICES

CFG = tiny_hubert_cfg(layers=2, embed_dim=32)


@dataclass
class HubertConfig:
    label_rate: float = 50.0
    extractor_mode: EXTRACTOR_MODE_CHOICES = EXTRACTOR_MODE_CHOICES.default  # type: ignore
    latent_temp: Tuple[float, float, float] = (2.0, 0.5, 0.999995)
    mask_other: Optional[float] = 0.0


for k, v in CFG.items():  # the remaining fields, typed by their values
    if k not in {f.name for f in fields(HubertConfig)}:
        HubertConfig.__annotations__[k] = type(v)
        setattr(HubertConfig, k, v)
HubertConfig = dataclass(HubertConfig)
HubertConfig.__module__ = "fairseq.models.hubert.hubert"
_module("fairseq.models.hubert.hubert").HubertConfig = HubertConfig


@dataclass
class HubertPretrainingConfig:
    data: str = "/data/librispeech"
    labels: List[str] = field(default_factory=lambda: ["km"])
    normalize: bool = False
    sample_rate: int = 16000


HubertPretrainingConfig.__module__ = "fairseq.tasks.hubert_pretraining"
_module("fairseq.tasks.hubert_pretraining").HubertPretrainingConfig = HubertPretrainingConfig

if __name__ == "__main__":
    model = OmegaConf.structured(HubertConfig)
    cfg = OmegaConf.create({"_name": None, "common": {"seed": 1337, "fp16": True},
                            "model": model, "task": OmegaConf.structured(HubertPretrainingConfig),
                            "optimization": {"lr": [0.0005], "max_update": 400000}})
    ckpt = {"args": None, "cfg": cfg, "model": tiny_hubert_state(CFG, seed=5),
            "optimizer_history": [{"criterion_name": "HubertCriterion",
                                   "optimizer_name": "FairseqAdam", "num_updates": 400000}],
            "extra_state": {"epoch": 1}, "last_optimizer_state": None}
    out = Path(__file__).with_name("omegaconf_hubert.pt")
    torch.save(ckpt, out)
    print(out, out.stat().st_size)
