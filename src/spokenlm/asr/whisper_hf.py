"""A transformers Whisper directory as an ASR (``whisper-hf:DIR``).

The directory holds ``WhisperForConditionalGeneration`` (``config.json``, weights,
``generation_config.json``) and its ``WhisperProcessor`` files (feature extractor and
tokenizer), as written by ``model.save_pretrained(d); processor.save_pretrained(d)`` or a
downloaded ``openai/whisper-*`` snapshot. Decoding settings: :class:`~spokenlm.asr.whisper.
WhisperDecoding`. Utterances up to 30 s are batched (each padded to Whisper's 30 s window);
longer ones go one at a time through transformers' long-form loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..common.device import resolve_device
from ..common.errors import ArtifactError, InputError
from .whisper import SAMPLE_RATE, WINDOW_SECONDS, WhisperASR, WhisperDecoding, model_kind


class WhisperHFASR(WhisperASR):
    """Whisper decoding with a local transformers model directory (fp32 on CPU, fp16 on CUDA)."""

    name = "whisper-hf"

    def __init__(self, path: str | Path, device: str = "auto",
                 decoding: WhisperDecoding = WhisperDecoding(), batch_size: int = 8) -> None:
        super().__init__(Path(path), decoding)
        if model_kind(self.path) != "hf":
            raise InputError(f"{self.path}: a CTranslate2 Whisper dir (model.bin), not a "
                             f"transformers one; use --asr whisper-ct2:{self.path} or whisper:DIR")
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        try:
            self.processor = WhisperProcessor.from_pretrained(self.path, local_files_only=True)
            self.model = WhisperForConditionalGeneration.from_pretrained(self.path,
                                                                         local_files_only=True)
        except (OSError, ValueError, TypeError) as e:
            raise ArtifactError(f"{self.path}: cannot load a Whisper model and its processor "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                                f"the dir needs the processor files (save_pretrained of "
                                f"WhisperProcessor) next to the model") from e
        self.device = resolve_device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model.to(self.device, dtype=self.dtype).eval()
        self.multilingual = bool(getattr(self.model.generation_config, "is_multilingual", False))
        self.batch_size = batch_size

    def _kwargs(self, long_form: bool) -> dict:
        """``generate`` arguments for :class:`WhisperDecoding`."""
        kwargs = dict(num_beams=self.decoding.beam_size, do_sample=False, temperature=0.0,
                      condition_on_prev_tokens=False, return_timestamps=long_form,
                      compression_ratio_threshold=None, logprob_threshold=None,
                      no_speech_threshold=None)
        if self.multilingual:
            kwargs.update(language=self.decoding.language, task="transcribe")
        return kwargs

    @torch.no_grad()
    def _generate(self, wavs: Sequence[np.ndarray], long_form: bool) -> list[str]:
        extra = dict(truncation=False, padding="longest") if long_form else {}
        inputs = self.processor.feature_extractor(list(wavs), sampling_rate=SAMPLE_RATE,
                                                  return_tensors="pt",
                                                  return_attention_mask=True, **extra)
        features = inputs["input_features"].to(self.device, self.dtype)  # (B, 80|128, F)
        ids = self.model.generate(features, attention_mask=inputs["attention_mask"].to(
            self.device), **self._kwargs(long_form))
        return self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)

    def _raw_batch(self, wavs: Sequence[np.ndarray]) -> list[str]:
        window = int(WINDOW_SECONDS * SAMPLE_RATE)
        short = [i for i, w in enumerate(wavs) if len(w) <= window]
        out = [""] * len(wavs)
        if short:
            for i, text in zip(short, self._generate([wavs[i] for i in short], False)):
                out[i] = text
        for i in (i for i, w in enumerate(wavs) if len(w) > window):
            out[i] = self._generate([wavs[i]], True)[0]
        return out
