"""Speech recognisers behind one interface (:class:`ASR`): pocketsphinx (offline en-us,
words or phones), any transformers CTC model directory, and a pocketsphinx forced aligner
that writes frame-level phone labels for PNMI."""

from .base import ASR, ASRS, load_asr, register_asr

__all__ = ["ASR", "ASRS", "load_asr", "register_asr"]
