"""``hubert`` and ``wav2vec2``: Hugging Face SSL encoders from a local directory, any layer.

The frame rate comes from the model's conv front-end (``conv_kernel`` / ``conv_stride`` in
its config.json): 50 Hz for HuBERT Base and wav2vec 2.0, 25 Hz for mHuBERT-25Hz.

Only the transformer layers up to ``layer`` are kept (the rest are dropped after loading),
so extracting layer 6 of a 12-layer HuBERT costs half the full model. The features at
``layer`` L equal ``model(wav, output_hidden_states=True).hidden_states[L]`` of the full
model (L = 0 is the input of the first transformer layer):

- HuBERT Base / wav2vec 2.0 Base (``do_stable_layer_norm=False``) apply the encoder
  LayerNorm *before* the stack, so truncating the layer list is enough;
- wav2vec 2.0 Large-style models (``do_stable_layer_norm=True``) apply it *after* the
  stack. ``hidden_states[L]`` is the un-normalised residual stream (transformers 5; fairseq's
  ``extract_features(output_layer=L)`` too), so the final LayerNorm is dropped. Note that
  transformers 4.x normalised the last entry of ``hidden_states``.

HuBERT Base's first conv uses group norm over *time* (``feat_extract_norm="group"``), so
zero-padding an utterance changes its features: batch only utterances of equal length or
pass one at a time (the tokenizer does this).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ...audio.framing import conv_framing
from ...audio.normalize import do_normalize, normalize_wav
from ...common.errors import InputError
from ...common.hub import local_or_hub
from .base import Encoder, register_encoder


@dataclass
class HFEncoderOptions:
    """A Hugging Face model (local directory or hub id) and the transformer layer to read."""

    path: str = ""
    layer: int = 6
    #: zero-mean unit-variance input per utterance; None reads ``do_normalize`` from the
    #: directory's preprocessor_config.json (False when absent, as HuBERT Base).
    normalize: bool | None = None

    def __post_init__(self) -> None:
        self.path = str(self.path)


class HFEncoder(Encoder):
    """Base for transformers SSL encoders: (B, T) -> (B, F, hidden_size) at layer ``layer``."""

    Options = HFEncoderOptions
    model_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: HFEncoderOptions) -> None:
        super().__init__(options)
        if not options.path:
            raise InputError(f"the {self.name} encoder needs a model directory: pass "
                             f"--encoder-path DIR (a local Hugging Face {self.name} model)")
        path = local_or_hub(options.path, f"{self.name} encoder")
        config = _read_model_config(path, self.name)
        if config.get("model_type") not in self.model_types:
            raise InputError(
                f"{path / 'config.json'}: model_type={config.get('model_type')!r} is not a "
                f"{self.name} model (expected {' or '.join(self.model_types)}); use the "
                f"matching --encoder or another directory")
        n_layers = int(config.get("num_hidden_layers", 0))
        if not 0 <= options.layer <= n_layers:
            raise InputError(f"{self.name} encoder {path}: layer={options.layer} is out of range; "
                             f"this model has layers 0..{n_layers}")
        if options.normalize is None:
            options.normalize = do_normalize(path)
        model = self._load(path)
        #: the full model's config (num_hidden_layers etc.), kept as saved
        self.full_config = model.config
        model.encoder.layers = model.encoder.layers[: options.layer]
        if getattr(model.config, "do_stable_layer_norm", False):
            model.encoder.layer_norm = torch.nn.Identity()
        if getattr(model, "adapter", None) is not None:
            model.adapter = None
        model.eval().requires_grad_(False)
        self.model = model
        self.dim = int(model.config.hidden_size)
        #: hop and receptive field of the conv front-end: 320 / 400 samples (50 Hz) for
        #: HuBERT Base, 640 samples (25 Hz) for mHuBERT-25Hz
        self.framing = conv_framing(model.config.conv_kernel, model.config.conv_stride)

    def _load(self, path: Path) -> Any:
        raise NotImplementedError

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) float audio at 16 kHz -> (B, F, D) hidden states of layer ``layer``."""
        self.check_input(wav)
        if self.options.normalize:
            wav = normalize_wav(wav)
        return self.model(wav).last_hidden_state.float()


@register_encoder("hubert")
class HubertEncoder(HFEncoder):
    """transformers ``HubertModel`` (HuBERT Base/Large, mHuBERT) from a local directory."""

    model_types = ("hubert",)

    def _load(self, path: Path) -> Any:
        from transformers import HubertModel

        return HubertModel.from_pretrained(str(path), local_files_only=True)


@register_encoder("wav2vec2")
class Wav2Vec2Encoder(HFEncoder):
    """transformers ``Wav2Vec2Model`` (wav2vec 2.0 Base/Large, XLS-R) from a local directory."""

    model_types = ("wav2vec2",)

    def _load(self, path: Path) -> Any:
        from transformers import Wav2Vec2Model

        return Wav2Vec2Model.from_pretrained(str(path), local_files_only=True)


def _read_model_config(path: Path, name: str) -> dict[str, Any]:
    cfg = path / "config.json"
    if not path.is_dir() or not cfg.exists():
        raise InputError(
            f"{name} encoder: {path} is not a model directory (no config.json); pass a local "
            f"Hugging Face {name} directory (config.json + model.safetensors), e.g. one saved "
            f"with save_pretrained")
    try:
        return json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{cfg}: not valid JSON ({e}); re-save the model") from e
