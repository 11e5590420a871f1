"""The Encoder interface and its registry.

An encoder turns 16 kHz audio into frame features. Each encoder declares its
:class:`~spokenlm.audio.framing.Framing` (hop, window, frame rate): ``floor((T - window) /
hop) + 1`` frames for ``T`` samples, the frame count of a wav2vec 2.0 / HuBERT conv
front-end. HuBERT Base and the default spectral encoders give 50 Hz frames (window 400,
hop 320), so their units align frame for frame; mHuBERT-25Hz gives 25 Hz, and the spectral
encoders take any ``frame_rate`` that is a whole hop at 16 kHz.

New encoders register by name with :func:`register_encoder` and declare their options as a
dataclass ``Options``; :func:`build_encoder` rebuilds any encoder from its ``config()``::

    @register_encoder("mfcc")
    class MFCCEncoder(Encoder):
        Options = MFCCOptions
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from ...audio.chunking import Chunking
from ...audio.framing import DEFAULT_FRAMING, Framing
from ...common.errors import InputError

#: Receptive field and stride (samples) of the default 50 Hz framing: 25 ms window, 20 ms hop.
RECEPTIVE_FIELD: int = DEFAULT_FRAMING.win_length
STRIDE: int = DEFAULT_FRAMING.hop_length

#: encoder name -> Encoder subclass
ENCODERS: dict[str, type[Encoder]] = {}

E = TypeVar("E", bound="type[Encoder]")


def num_frames(num_samples: int) -> int:
    """Frames of the default 50 Hz framing: ``floor((T - 400) / 320) + 1``, 0 when T < 400."""
    return DEFAULT_FRAMING.num_frames(num_samples)


class Encoder(torch.nn.Module):
    """Audio (B, T) at 16 kHz -> features (B, F, D) at ``framing.frame_rate``.

    Subclasses set ``name`` (by :func:`register_encoder`), ``Options`` (a dataclass of their
    settings, all JSON-serialisable), ``dim`` and, when not 50 Hz, ``framing``, and implement
    :meth:`forward`.

    Zero-padding a waveform can change the features of its real frames (HuBERT Base's group
    norm over time, per-utterance CMN, deltas at the edges), so callers batch only
    utterances of equal length (see ``SpeechTokenizer.encode_batch``).
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type] = type(None)
    def __init__(self, options: Any) -> None:
        super().__init__()
        self.options = options
        self.dim: int = 0
        self.framing: Framing = DEFAULT_FRAMING

    @property
    def frame_rate(self) -> float:
        """Frames per second (``framing.frame_rate``)."""
        return self.framing.frame_rate

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, F, D)
        raise NotImplementedError

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        return self.framing.num_frames(num_samples)

    @property
    def chunking(self) -> Chunking:
        """How long inputs are encoded chunk by chunk (``SpeechTokenizer.encode_stream``).

        Default, for models with global operations (self-attention, a conv positional
        embedding, group norm over time): 20 s chunks with 5 s of context each side, whose
        features equal the one-piece ones only approximately. Frame-local encoders override
        this with their exact context.
        """
        rate = self.framing.frame_rate
        return Chunking(int(round(20 * rate)), int(round(5 * rate)), exact=False,
                        note=f"{self.name}: global self-attention / normalisation over the "
                             f"input; chunked features are approximate")

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **options}``; :func:`build_encoder` rebuilds the encoder from it."""
        return {"name": self.name, **dataclasses.asdict(self.options)}

    def check_input(self, wav: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``wav`` is (B, T) with T >= one receptive field."""
        if wav.dim() != 2:
            raise InputError(f"{self.name} encoder: expected audio of shape (B, T), got "
                             f"{tuple(wav.shape)}; add a batch dimension with wav[None]")
        window = self.framing.win_length
        if wav.shape[1] < window:
            raise InputError(f"{self.name} encoder: audio of {wav.shape[1]} samples is shorter "
                             f"than one frame ({window} samples = {1000 * window / 16000:g} ms "
                             f"at 16 kHz); drop or pad it")


def register_encoder(name: str) -> Callable[[E], E]:
    """Class decorator: register an :class:`Encoder` subclass under ``name``."""

    def deco(cls: E) -> E:
        if name in ENCODERS and ENCODERS[name] is not cls:
            raise ValueError(f"encoder {name!r} is already registered by {ENCODERS[name]}")
        if not dataclasses.is_dataclass(cls.Options):
            raise TypeError(f"{cls.__name__}.Options must be a dataclass of encoder options")
        cls.name = name
        ENCODERS[name] = cls
        return cls

    return deco


def encoder_options(name: str, **values: Any) -> dict[str, Any]:
    """Config dict for encoder ``name`` from ``values``, keeping only the options it has.

    Lets a command pass generic flags (``path``, ``layer``) to any encoder::

        encoder_options("mfcc", path=None, layer=6)    -> {"name": "mfcc"}
        encoder_options("hubert", path="hb", layer=6)  -> {"name": "hubert", "path": "hb", "layer": 6}
    """
    cls = _lookup(name)
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    return {"name": name, **{k: v for k, v in values.items() if k in fields and v is not None}}


def parse_encoder_options(name: str, pairs: list[str]) -> dict[str, Any]:
    """``["cmn=true", "n_mels=40"]`` -> ``{"cmn": True, "n_mels": 40}``, typed by encoder
    ``name``'s options dataclass; an unknown key or bad value names the valid ones."""
    cls = _lookup(name)
    hints = typing.get_type_hints(cls.Options)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in hints:
            raise InputError(f"--encoder-option {pair!r}: expected KEY=VALUE with KEY one of "
                             f"{sorted(hints)} for encoder {name!r}")
        tp = hints[key]
        try:
            if tp is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1", "yes")
            elif tp in (int, float, str):
                out[key] = tp(text)
            else:
                out[key] = text
        except ValueError as e:
            raise InputError(f"--encoder-option {pair!r}: {text!r} is not a valid "
                             f"{getattr(tp, '__name__', tp)}") from e
    return out


def encoder_path_spec(path: str | os.PathLike | None) -> str | None:
    """What a tokenizer records as its encoder's ``path``: an existing local directory made
    absolute (the tokenizer can then be used from any folder), a hub id (``org/name``) as
    given, None for none."""
    if path is None:
        return None
    local = Path(os.fspath(path)).expanduser()
    return str(local.resolve()) if local.exists() else os.fspath(path)


def build_encoder(config: dict[str, Any]) -> Encoder:
    """Build an encoder from ``{"name": ..., <options>}`` (the output of ``Encoder.config()``)."""
    config = dict(config)
    name = config.pop("name", None)
    cls = _lookup(name)
    fields = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise InputError(f"encoder {name!r}: unknown option(s) {unknown}; "
                         f"valid options are {sorted(fields)}")
    try:
        options = cls.Options(**config)
    except TypeError as e:
        raise InputError(f"encoder {name!r}: bad options {config} ({e})") from e
    return cls(options)


def _lookup(name: Any) -> type[Encoder]:
    if name not in ENCODERS:
        raise InputError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name]
