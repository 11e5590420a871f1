"""A transformers CTC model directory as an ASR (``Wav2Vec2ForCTC``, HuBERT-CTC, ...).

The directory holds the model (``config.json`` + weights) and its processor files
(``preprocessor_config.json``, ``vocab.json``, ``tokenizer_config.json``), as written by
``model.save_pretrained(d); processor.save_pretrained(d)``. Decoding is greedy CTC:
argmax per frame, merge repeats, drop blanks, ``|`` is the word delimiter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..common.device import resolve_device
from ..common.errors import ArtifactError
from ..common.hub import loading, local_or_hub
from ..common.progress import progress
from .base import ASR, normalize_text, register_asr


class CTCDirASR(ASR):
    """Greedy CTC decoding with a local transformers model directory."""

    name = "ctc"

    def __init__(self, path: str | Path, device: str = "auto", batch_size: int = 8) -> None:
        from transformers import AutoModelForCTC, AutoProcessor

        self.path = local_or_hub(path, "CTC model")
        if not (self.path / "config.json").exists():
            raise ArtifactError(f"{self.path}: not a transformers model directory (no "
                                f"config.json); pass a CTC model saved with save_pretrained")
        with loading(self.path, "a CTC model and its processor", "the directory needs "
                     "vocab.json and preprocessor_config.json next to the model"):
            self.processor = AutoProcessor.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModelForCTC.from_pretrained(self.path, local_files_only=True)
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def _logits(self, wavs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded batch -> (logits (B, F, V), frame lengths (B,))."""
        inputs = self.processor(list(wavs), sampling_rate=16000, return_tensors="pt",
                                padding=True, return_attention_mask=True)
        values = inputs["input_values"].to(self.device)
        mask = inputs.get("attention_mask")
        logits = self.model(values, attention_mask=None if mask is None else mask.to(
            self.device)).logits.float().cpu()
        lengths = torch.full((len(wavs),), logits.shape[1], dtype=torch.long)
        if mask is not None and hasattr(self.model, "_get_feat_extract_output_lengths"):
            lengths = self.model._get_feat_extract_output_lengths(mask.sum(-1)).cpu().long()
        return logits, lengths.clamp(max=logits.shape[1])

    def _decode(self, logits: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        ids = logits.argmax(-1)  # (B, F)
        out = []
        for row, n in zip(ids, lengths.tolist()):
            out.append(self.processor.decode(row[:n].tolist()))
        return [normalize_text(t) for t in out]

    def transcribe(self, wav: np.ndarray) -> str:
        return self.transcribe_many([wav])[0]

    def transcribe_many(self, wavs: Sequence[np.ndarray], desc: str = "asr") -> list[str]:
        """Transcripts in input order; utterances of similar length share a batch."""
        order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))
        out: list[str] = [""] * len(wavs)
        bar = progress(desc=desc, total=len(wavs), unit="utt")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            texts = self._decode(*self._logits([wavs[i] for i in idx]))
            for i, t in zip(idx, texts):
                out[i] = t
            bar.update(len(idx))
        bar.close()
        return out

    def describe(self) -> str:
        return f"ctc:{self.path}"


register_asr("ctc")(lambda arg: CTCDirASR(arg or "."))
