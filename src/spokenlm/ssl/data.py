"""Batches for HuBERT-style pretraining: equal-length crops of audio with their labels.

Utterances are shuffled per epoch (seed, epoch), grouped by similar length, and each batch
is cropped to its shortest member (at most ``max_samples``), the crop starting on a frame
boundary (a multiple of 320 samples) so frame ``i`` of the crop is frame ``k + i`` of the
utterance and keeps its label. No padding, so group norm over time sees real audio only.
Everything is a function of (seed, epoch, step): a resumed run draws the same batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.load import load_row, row_num_samples
from ..common.errors import InputError
from ..tokenize.encoders.base import RECEPTIVE_FIELD, STRIDE, num_frames
from ..training import Recipe

#: batches formed per sorted chunk (length-grouping window)
SORT_WINDOW = 50


@dataclass
class DataState:
    """Position in the data stream: epoch and next batch index within it."""

    epoch: int = 0
    batch: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class EpochRecipe(Recipe):
    """A recipe whose data position is a :class:`DataState` (``self.position``)."""

    position: DataState

    def state_dict(self) -> dict[str, Any]:
        return {"data": self.position.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = DataState(**state["data"])


class CropBatches:
    """``(wav (B, T), labels (B, F))`` batches of ``batch_size`` utterances.

    Args:
        rows: manifest rows (``id``, absolute ``path``, ``duration``).
        labels: ``id`` -> frame labels (F,) int64; rows without labels are dropped.
        max_samples: longest crop (HuBERT: 250k samples; tiny runs: 2-4 s).
    """

    def __init__(self, rows: list[dict], labels: dict[str, np.ndarray], batch_size: int,
                 max_samples: int, seed: int = 0, source: Path | str = "<manifest>") -> None:
        self.rows = [r for r in rows if r["id"] in labels]
        if not self.rows:
            raise InputError(f"{source}: no utterance has targets; make targets for this "
                             f"manifest (ids must match the labels JSONL)")
        self.labels = labels
        self.batch_size = min(batch_size, len(self.rows))
        self.max_samples = max(RECEPTIVE_FIELD, max_samples)
        self.seed = seed
        self._epoch_cache: tuple[int, list[list[int]]] | None = None
        self._lengths: dict[int, int] = {}

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Row indices of every batch of ``epoch`` (shuffled, length-grouped)."""
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        durations = np.array([float(self.rows[i].get("duration") or 0) for i in order])
        batches: list[list[int]] = []
        window = SORT_WINDOW * self.batch_size
        for s in range(0, len(order), window):
            chunk = order[s:s + window][np.argsort(durations[s:s + window], kind="stable")]
            batches += [chunk[b:b + self.batch_size].tolist()
                        for b in range(0, len(chunk) - self.batch_size + 1, self.batch_size)]
        perm = np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))
        batches = [batches[i] for i in perm]
        self._epoch_cache = (epoch, batches)
        return batches

    def next_batch(self, state: DataState, part: slice = slice(None)
                   ) -> tuple[torch.Tensor, torch.Tensor, DataState]:
        """The batch at ``state`` (its rows ``part``) and the state after it."""
        idx, nxt = self.batch_at(state)
        wav, lab = self.load(idx, seed=(self.seed, state.epoch, state.batch), part=part)
        return wav, lab, nxt

    def batch_at(self, state: DataState) -> tuple[list[int], DataState]:
        """Row indices of the batch at ``state``, and the state after it."""
        batches = self.epoch_batches(state.epoch)
        nxt = DataState(state.epoch, state.batch + 1)
        if nxt.batch >= len(batches):
            nxt = DataState(state.epoch + 1, 0)
        return batches[state.batch], nxt

    def load(self, idx: list[int], seed: tuple[int, ...] = (0,), part: slice = slice(None)
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop rows ``idx`` to a common length: wav (B, T) float32, labels (B, F) int64.
        With ``part``, only those rows (one process's shard) are read and returned, cropped
        exactly as when all are loaded (the other rows' lengths from their headers)."""
        rng = np.random.default_rng(list(seed))
        mine = set(range(len(idx))[part])
        wavs = {j: load_row(self.rows[i]) for j, i in enumerate(idx) if j in mine}
        lengths = [len(wavs[j]) if j in wavs else self._length(i) for j, i in enumerate(idx)]
        length = min(min(lengths), self.max_samples)
        n = num_frames(length)
        length = (n - 1) * STRIDE + RECEPTIVE_FIELD  # drop samples no frame covers
        out_w, out_l = [], []
        for j, i in enumerate(idx):
            lab = self.labels[self.rows[i]["id"]]
            total = num_frames(lengths[j])
            if len(lab) != total:
                raise InputError(f"{self.rows[i]['path']}: {total} frames but its targets have "
                                 f"{len(lab)}; the targets were made from other audio, delete "
                                 f"the targets dir and rerun")
            k = int(rng.integers(0, total - n + 1))  # first frame of the crop
            if j in wavs:
                out_w.append(wavs[j][k * STRIDE: k * STRIDE + length])
                out_l.append(lab[k:k + n])
        return torch.from_numpy(np.stack(out_w)), torch.from_numpy(np.stack(out_l))

    def _length(self, i: int) -> int:
        """Samples of row ``i`` (from its header, cached)."""
        if i not in self._lengths:
            self._lengths[i] = row_num_samples(self.rows[i])
        return self._lengths[i]
