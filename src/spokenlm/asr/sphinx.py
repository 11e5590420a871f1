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
    """Forced alignment of a known transcript: phone intervals in seconds.

    pocketsphinx aligns in two passes (words through a grammar of the transcript, then
    phones and states). The first pass sometimes ends before the transcript does; each
    result is therefore checked to hold every word of the transcript in order, and the
    alignment is retried with wider beams (``beams``) before it is declared failed.
    """

    def __init__(self, beams: tuple[float, ...] = (1e-48, 1e-60, 1e-80, 1e-100)) -> None:
        self._ps = _pocketsphinx()
        self.beams = beams
        self._decoders: dict[float, object] = {}

    def _decoder(self, beam: float):
        if beam not in self._decoders:
            self._decoders[beam] = self._ps.Decoder(samprate=16000, loglevel="FATAL",
                                                    beam=beam, wbeam=beam, pbeam=beam)
        return self._decoders[beam]

    def align(self, wav: np.ndarray, text: str) -> list[tuple[float, float, str]]:
        """``[(start_s, end_s, phone), ...]`` (ARPAbet, no stress; silences as ``SIL``).

        Raises :class:`InputError` when a word is not in the CMU dictionary or no beam
        gives an alignment that covers the whole transcript."""
        words = normalize_text(text).split()
        missing = [w for w in words if self._decoder(self.beams[0]).lookup_word(w) is None]
        if missing:
            raise InputError(f"words {missing} are not in the pocketsphinx dictionary")
        pcm = _pcm(wav)
        for beam in self.beams:
            decoder = self._decoder(beam)
            try:
                decoder.set_align_text(" ".join(words))
                for first in (True, False):  # first pass: words; second: phones and states
                    decoder.start_utt()
                    decoder.process_raw(pcm, full_utt=True)
                    decoder.end_utt()
                    if first:
                        decoder.set_alignment()
                alignment = decoder.get_alignment()
            except RuntimeError:  # no path through the transcript at this beam
                continue
            if alignment is None:
                continue
            names, out = [], []
            for word in alignment:  # iterate once: entries do not outlive the iterator
                names.append(word.name)
                for phone in word:
                    start = phone.start / SPHINX_FRAME_RATE
                    out.append((start, start + phone.duration / SPHINX_FRAME_RATE, phone.name))
            got = [n.split("(")[0] for n in names if not n.startswith(("<", "["))]
            if got != words:
                continue
            return out
        raise InputError(f"forced alignment failed for {text!r} at every beam {self.beams}")


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
