"""Batches of (waveform, transcript ids) for CTC training: ``spokenlm asr train`` and the
paired-data CTC loss of ``spokenlm joint slam`` both draw them from :class:`CTCBatches`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio.load import load_row, row_num_samples
from .text import Vocab, row_tokens


class CTCBatches:
    """Length-grouped shuffled batches: (wav (B, T) zero-padded, lengths (B,), targets
    list of id lists). Batches are a function of (seed, epoch)."""

    def __init__(self, rows: list[dict], vocab: Vocab, batch_size: int, seed: int,
                 source: Path) -> None:
        self.rows = rows
        self.targets = [vocab.encode(row_tokens(r, vocab.unit, source)) for r in rows]
        self.batch_size = max(1, min(batch_size, len(rows)))
        self.seed = seed
        self._lengths: dict[int, int] = {}

    def length(self, i: int) -> int:
        """Samples of row ``i`` (from its header, cached)."""
        if i not in self._lengths:
            self._lengths[i] = row_num_samples(self.rows[i])
        return self._lengths[i]

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        dur = np.array([float(self.rows[i].get("duration") or 0) for i in order])
        order = order[np.argsort(dur, kind="stable")]
        batches = [order[s:s + self.batch_size].tolist()
                   for s in range(0, len(order), self.batch_size)]
        perm = np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))
        return [batches[i] for i in perm]

    def load(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        wavs = [load_row(self.rows[i]) for i in idx]
        lengths = torch.tensor([len(w) for w in wavs])
        wav = torch.zeros(len(wavs), int(lengths.max()))
        for b, w in enumerate(wavs):
            wav[b, :len(w)] = torch.from_numpy(w)
        return wav, lengths, [self.targets[i] for i in idx]
