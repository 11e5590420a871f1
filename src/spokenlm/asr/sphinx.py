"""pocketsphinx backends: English words, ARPAbet phones, and forced phone alignment.

The PyPI wheel ships the CMU en-us acoustic model, dictionary and LMs, so all of this
works offline. pocketsphinx is an optional dependency: a clear error says how to install it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..common.errors import InputError
from .base import ASR, normalize_text, register_asr

#: pocketsphinx frame rate (frames per second) of its segmentations and alignments.
SPHINX_FRAME_RATE = 100.0


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as e:
        raise InputError("the pocketsphinx ASR needs the `pocketsphinx` package: "
                         "pip install pocketsphinx") from e
    return pocketsphinx


def _pcm(wav: np.ndarray) -> bytes:
    """float32 (T,) in [-1, 1] -> 16-bit little-endian PCM bytes."""
    return (np.clip(np.asarray(wav, np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PocketSphinxASR(ASR):
    """Large-vocabulary en-us word recognition (CMU en-us model, 3-gram LM)."""

    name = "pocketsphinx"

    def __init__(self, lm: str | None = None) -> None:
        ps = _pocketsphinx()
        kwargs = {"lm": lm} if lm else {}
        self.decoder = ps.Decoder(samprate=16000, loglevel="FATAL", **kwargs)
        self.lm = lm

    def _decode(self, wav: np.ndarray) -> None:
        self.decoder.start_utt()
        self.decoder.process_raw(_pcm(wav), full_utt=True)
        self.decoder.end_utt()

    def transcribe(self, wav: np.ndarray) -> str:
        self._decode(wav)
        hyp = self.decoder.hyp()
        return normalize_text(hyp.hypstr) if hyp is not None else ""

    def describe(self) -> str:
        return self.name + (f":{self.lm}" if self.lm else "")


class PocketSphinxPhones(PocketSphinxASR):
    """ARPAbet phone recognition with pocketsphinx's phone-bigram allphone search."""

    name = "pocketsphinx-phones"
    unit = "phones"

    def __init__(self, lm: str | None = None) -> None:
        ps = _pocketsphinx()
        self.lm = lm
        self.decoder = ps.Decoder(samprate=16000, loglevel="FATAL", lm=None,
                                  allphone=lm or ps.get_model_path("en-us/en-us-phone.lm.bin"),
                                  backtrace=True, beam=1e-20, pbeam=1e-20, lw=2.0)

    def transcribe(self, wav: np.ndarray) -> str:
        self._decode(wav)
        return " ".join(s.word for s in self.decoder.seg() if s.word not in ("SIL", "+SPN+",
                                                                              "+NSN+"))


class PocketSphinxAligner:
    """Forced alignment of a known transcript: phone intervals in seconds."""

    def __init__(self) -> None:
        ps = _pocketsphinx()
        self.decoder = ps.Decoder(samprate=16000, loglevel="FATAL")

    def align(self, wav: np.ndarray, text: str) -> list[tuple[float, float, str]]:
        """``[(start_s, end_s, phone), ...]`` (ARPAbet, no stress; silences as ``SIL``).

        Raises :class:`InputError` when a word is not in the CMU dictionary or the
        alignment fails."""
        words = normalize_text(text).split()
        missing = [w for w in words if self.decoder.lookup_word(w) is None]
        if missing:
            raise InputError(f"words {missing} are not in the pocketsphinx dictionary")
        pcm = _pcm(wav)
        self.decoder.set_align_text(" ".join(words))
        for _ in range(2):  # first pass: words; second pass: phones and states
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            if _ == 0:
                self.decoder.set_alignment()
        alignment = self.decoder.get_alignment()
        if alignment is None:
            raise InputError(f"forced alignment failed for {text!r}")
        out = []
        for word in alignment:
            for phone in word:
                start = phone.start / SPHINX_FRAME_RATE
                out.append((start, start + phone.duration / SPHINX_FRAME_RATE, phone.name))
        return out


def align_many(wavs: Sequence[np.ndarray], texts: Sequence[str]
               ) -> list[list[tuple[float, float, str]] | None]:
    """Phone intervals of each (wav, transcript); None where alignment failed."""
    aligner = PocketSphinxAligner()
    out: list[list[tuple[float, float, str]] | None] = []
    for wav, text in zip(wavs, texts):
        try:
            out.append(aligner.align(wav, text))
        except InputError:
            out.append(None)
    return out


register_asr("pocketsphinx")(lambda arg: PocketSphinxASR(arg))
register_asr("pocketsphinx-phones")(lambda arg: PocketSphinxPhones(arg))
