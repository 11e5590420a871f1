"""``joint``: the speech path of a joint model as a spokenlm encoder (CTC fine-tuning,
tokenization, ABX like any other encoder)::

    build_encoder({"name": "joint", "path": "runs/slam/final"})        # SLAM
    build_encoder({"name": "joint", "path": "runs/speechlm/final"})    # SpeechLM

SLAM: conv front-end + speech conformers + shared conformers. SpeechLM: front-end + speech
transformer + shared transformer (also exported as a plain HubertModel in
``final/speech_encoder``, usable with the ``hubert`` encoder). The conv front-end is frozen
(as for the HF encoders); everything above it fine-tunes. Models are imported lazily so
registering this encoder costs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..common.errors import InputError
from ..tokenize.encoders.base import Encoder, register_encoder


@dataclass
class JointEncoderOptions:
    """A ``final/`` dir of ``spokenlm joint slam train`` or ``joint speechlm train``."""

    path: str = ""

    def __post_init__(self) -> None:
        self.path = str(self.path)


@register_encoder("joint")
class JointEncoder(Encoder):
    """(B, T) -> (B, F, hidden): the joint model's shared-stack output on speech."""

    Options = JointEncoderOptions

    def __init__(self, options: JointEncoderOptions) -> None:
        super().__init__(options)
        cfg = Path(options.path) / "config.json"
        if not options.path or not cfg.exists():
            raise InputError(f"joint encoder: {options.path or '(no path)'} is not a joint "
                             f"model dir (no config.json); pass --encoder-path with the "
                             f"final/ dir of `spokenlm joint slam train` or `joint speechlm "
                             f"train`")
        kind = json.loads(cfg.read_text()).get("type")
        if kind == "spokenlm-slam":
            from .slam import SLAMModel

            self.model: torch.nn.Module = SLAMModel.from_pretrained(options.path)
            self.model.frontend.feature_extractor.requires_grad_(False)
            self.dim = self.model.config.hidden
        elif kind == "spokenlm-speechlm":
            from .speechlm import SpeechLMModel

            self.model = SpeechLMModel.from_pretrained(options.path)
            self.model.hubert.feature_extractor.requires_grad_(False)
            self.dim = self.model.config.hidden
        else:
            raise InputError(f"{cfg}: type {kind!r} is not a joint model (spokenlm-slam or "
                             f"spokenlm-speechlm)")
        self.kind = kind

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) float audio at 16 kHz -> (B, F, D)."""
        self.check_input(wav)
        if self.kind == "spokenlm-slam":
            return self.model.speech_path(wav)[0].float()
        return self.model.run_shared(self.model.speech_hidden(wav)).float()
