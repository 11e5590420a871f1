"""Units back to speech: unit HiFi-GAN (quality) and a fast mel + Griffin-Lim vocoder (demos).

``load_vocoder(dir).synthesize(units, durations)`` -> float32 16 kHz audio;
``train_vocoder`` (``spokenlm vocoder train``) lives in :mod:`spokenlm.vocoder.train`.
"""

from .base import VOCODERS, Vocoder, VocoderModel, load_vocoder, register_vocoder

__all__ = ["VOCODERS", "Vocoder", "VocoderModel", "load_vocoder", "register_vocoder"]
