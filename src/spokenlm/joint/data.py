"""Data for the joint recipes: unpaired text, text-derived units, speech frame units.

- :func:`unpaired_text`: sentences from a text file (one per line) or from spokenlm's
  grammar with a seed different from the corpus's, with espeak-ng phonemes;
- :func:`phoneme_unit_rows` (SpeechLM-P) and :func:`hidden_unit_rows` (SpeechLM-H, via the
  text-to-unit model): frame-level units per sentence (JSONL-ready rows);
- :func:`alignment_labels`: speech frame units from ``spokenlm asr align`` frame phones;
- :class:`TextBatches`: padded (units or characters) batches drawn by (seed, step);
- :func:`speech_batch`: an equal-length crop batch of :class:`spokenlm.ssl.data.CropBatches`
  for step ``step``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..asr.text import Unit, Vocab, row_tokens
from ..common.errors import InputError
from ..data.grammar import generate_sentences
from ..data.phoneme_units import DurationModel, phones_to_units
from ..data.phonemes import phonemize_batch, split_phones
from ..ssl.data import CropBatches, DataState

#: seed of the grammar for unpaired text (the synthetic corpus uses small seeds)
TEXT_SEED = 7919


def unpaired_text(n: int, seed: int = TEXT_SEED, text_file: Path | None = None,
                  exclude: Sequence[str] = ()) -> list[dict]:
    """``n`` sentences ``{"id", "text", "phonemes"}`` not in ``exclude`` (the speech's
    transcripts): the first ``n`` lines of ``text_file``, else grammar sentences."""
    skip = {t.strip().lower() for t in exclude}
    if text_file is not None:
        if not Path(text_file).exists():
            raise InputError(f"{text_file}: text file not found; pass a UTF-8 file with one "
                             f"sentence per line")
        lines = [s.strip() for s in Path(text_file).read_text().splitlines() if s.strip()]
    else:
        lines = generate_sentences(n + len(skip), seed=seed)
    texts = [t for t in lines if t.lower() not in skip][:n]
    if not texts:
        raise InputError(f"{text_file or 'grammar'}: no unpaired sentences left after "
                         f"removing the speech transcripts; give more text")
    phon = phonemize_batch(texts)
    return [{"id": f"text{i:06d}", "text": t, "phonemes": p}
            for i, (t, p) in enumerate(zip(texts, phon))]


def phoneme_unit_rows(rows: Sequence[dict], durations: DurationModel,
                      inventory: Sequence[str], seed: int = 0) -> list[dict]:
    """SpeechLM-P text units: each phone repeated by a sampled duration (deterministic)."""
    out, known = [], set(inventory)
    for i, r in enumerate(rows):
        phones = [p for p in split_phones(r["phonemes"]) if p in known]
        units = phones_to_units(phones, durations.sample(phones, seed=(seed, i)), inventory)
        out.append({**r, "units": units})
    return out


def hidden_unit_rows(rows: Sequence[dict], t2u: object, batch: int = 32) -> list[dict]:
    """SpeechLM-H text units: the text-to-unit model's frame units for each sentence."""
    out = []
    for s in range(0, len(rows), batch):
        chunk = rows[s:s + batch]
        known = [[p for p in split_phones(r["phonemes"]) if p in t2u.index] for r in chunk]
        for r, (units, _) in zip(chunk, t2u.generate(known)):
            out.append({**r, "units": units.tolist()})
    return out


def alignment_labels(alignments: Sequence[dict], inventory: Sequence[str]
                     ) -> dict[str, np.ndarray]:
    """``id`` -> frame phone units (F,) from ``spokenlm asr align`` rows (``phones``)."""
    return {a["id"]: np.asarray(phones_to_units(a["phones"], [1] * len(a["phones"]),
                                                inventory), dtype=np.int64)
            for a in alignments}


def char_vocab(texts: Sequence[str]) -> Vocab:
    """Character vocabulary (blank 0, ``|`` between words) of ``texts``."""
    return Vocab.build((row_tokens({"text": t}, "chars") for t in texts), "chars")


class TextBatches:
    """Padded batches of token sequences drawn with replacement by (seed, step).

    ``batch(step) -> (ids (B, L) int64 padded with ``pad``, lengths (B,), char targets)``;
    sequences longer than ``max_len`` are cut (their char targets kept whole only when the
    sequence is not cut, else dropped from CTC by an empty list)."""

    def __init__(self, seqs: Sequence[Sequence[int]], chars: Sequence[Sequence[int]],
                 batch_size: int, seed: int = 0, max_len: int = 1000, pad: int = 0) -> None:
        keep = [i for i, s in enumerate(seqs) if len(s) > 0]
        if not keep:
            raise InputError("no non-empty text sequences to train on; give more text")
        self.seqs = [list(seqs[i])[:max_len] for i in keep]
        self.chars = [list(chars[i]) if len(seqs[i]) <= max_len else [] for i in keep]
        self.batch_size, self.seed, self.pad = batch_size, seed, pad

    def indices(self, step: int) -> np.ndarray:
        """The rows (B,) of the batch of ``step``."""
        return np.random.default_rng([self.seed, 11, step]).integers(0, len(self.seqs),
                                                                     size=self.batch_size)

    def lengths(self, step: int) -> torch.Tensor:
        """Sequence lengths (B,) of the whole batch of ``step``."""
        return torch.tensor([len(self.seqs[i]) for i in self.indices(step)])

    def batch(self, step: int, part: slice = slice(None)
              ) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        """The batch of ``step`` (its rows ``part``: one process's shard, padded to its own
        longest)."""
        idx = self.indices(step)[part]
        lengths = torch.tensor([len(self.seqs[i]) for i in idx])
        ids = torch.full((len(idx), int(lengths.max())), self.pad, dtype=torch.long)
        for b, i in enumerate(idx):
            ids[b, : lengths[b]] = torch.tensor(self.seqs[i])
        return ids, lengths, [self.chars[i] for i in idx]


def text_char_ids(rows: Sequence[dict], vocab: Vocab, unit: Unit = "chars") -> list[list[int]]:
    return [vocab.encode(row_tokens(r, unit)) for r in rows]


def speech_batch(data: CropBatches, step: int, part: slice = slice(None)
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop batch of ``step`` (epochs of ``len(epoch_batches)`` steps): (B, T), (B, F);
    with ``part``, those rows of it."""
    n = len(data.epoch_batches(0))
    if n == 0:
        raise InputError("too few utterances for one speech batch; lower --batch-size")
    wav, lab, _ = data.next_batch(DataState(step // n, step % n), part)
    return wav, lab
