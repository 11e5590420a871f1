"""Packed unit data for LM training.

Reads the packed units of the contract (``<prefix>.bin`` uint16/uint32 units,
``<prefix>.idx.npy`` int64 (N+1,) offsets, ``<prefix>.meta.json``; the format and its reader
are :mod:`spokenlm.common.packed`'s), lays the utterances out as one token stream
``BOS u.. EOS BOS u.. EOS ...`` (units shifted by ``unit_offset``) in an order drawn from
``(seed, epoch)``, and cuts it into blocks of ``T + 1`` tokens (stride ``T``) for next-token
prediction. A :class:`DataState` (epoch, next block) is all a checkpoint needs to resume at
exactly the next batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..common.errors import InputError
from ..common.packed import PACK_SUFFIXES, find_packed, packed_prefix

__all__ = ["PACK_SUFFIXES", "BlockStream", "DataState", "load_packed", "packed_prefix",
           "split_valid"]

#: accepts a prefix, the units ``.jsonl`` or a packed file (InputError when missing)
load_packed = find_packed


@dataclass
class DataState:
    """Where the training stream is: ``position`` = index of the next block in ``epoch``."""

    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataState:
        return cls(int(d["epoch"]), int(d["position"]))


class BlockStream:
    """Blocks of ``block_len`` tokens over the utterances ``indices`` of packed units.

    ``shuffle`` draws a new utterance order per epoch from ``(seed, epoch)``; otherwise the
    order is the packed order (validation). The last partial block of an epoch is dropped.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, indices: np.ndarray,
                 block_len: int, *, bos_id: int, eos_id: int, unit_offset: int = 0,
                 seed: int = 0, shuffle: bool = True) -> None:
        self.tokens, self.offsets = tokens, offsets
        self.indices = np.asarray(indices, dtype=np.int64)
        self.block_len, self.stride = int(block_len), int(block_len) - 1
        self.bos_id, self.eos_id, self.unit_offset = bos_id, eos_id, unit_offset
        self.seed, self.shuffle = seed, shuffle
        self.total = int((offsets[self.indices + 1] - offsets[self.indices]).sum()
                         + 2 * len(self.indices))
        if self.stride < 1 or self.total < self.block_len:
            raise InputError(f"block of {block_len} tokens does not fit in {self.total} "
                             "tokens of data; lower --seq-len or add data")
        self.n_blocks = (self.total - 1) // self.stride
        self._layout: tuple[int, np.ndarray, np.ndarray] | None = None

    def layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(utterance order (N,), stream end of each utterance (N,)) for ``epoch``."""
        if self._layout is None or self._layout[0] != epoch:
            order = self.indices
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch]).permutation(order)
            ends = np.cumsum(self.offsets[order + 1] - self.offsets[order] + 2)
            self._layout = (epoch, order, ends)
        return self._layout[1], self._layout[2]

    def utterance(self, i: int) -> np.ndarray:
        """Token ids ``BOS u.. EOS`` of utterance ``i`` (int64)."""
        units = np.asarray(self.tokens[self.offsets[i]: self.offsets[i + 1]], dtype=np.int64)
        return np.concatenate([[self.bos_id], units + self.unit_offset, [self.eos_id]])

    def block(self, epoch: int, b: int) -> np.ndarray:
        """Block ``b`` of ``epoch``: stream tokens ``[b*T, b*T + T + 1)``, int64 (T+1,)."""
        order, ends = self.layout(epoch)
        start, stop = b * self.stride, b * self.stride + self.block_len
        j = int(np.searchsorted(ends, start, side="right"))
        parts, pos = [], start
        while pos < stop:
            begin = int(ends[j - 1]) if j else 0
            utt = self.utterance(int(order[j]))
            parts.append(utt[pos - begin: stop - begin])
            pos = begin + len(utt)
            j += 1
        return np.concatenate(parts)

    def next_batch(self, state: DataState, batch_size: int, rank: int = 0,
                   world_size: int = 1) -> tuple[np.ndarray, DataState]:
        """The next ``batch_size`` blocks (this rank's share of them) and the state after.

        Returns int64 (batch_size // world_size, T+1); a batch may run into the next epoch.
        """
        if batch_size % world_size:
            raise InputError(f"batch_size={batch_size} is not divisible by the "
                             f"{world_size} processes; pick a multiple of {world_size}")
        where, epoch, pos = [], state.epoch, state.position
        for _ in range(batch_size):
            if pos >= self.n_blocks:
                epoch, pos = epoch + 1, 0
            where.append((epoch, pos))
            pos += 1
        share = batch_size // world_size
        mine = where[rank * share: (rank + 1) * share]
        return np.stack([self.block(e, b) for e, b in mine]), DataState(epoch, pos)

    def eval_blocks(self, max_blocks: int | None = None) -> np.ndarray:
        """The first blocks of epoch 0 (no shuffle for validation), int64 (n, T+1)."""
        n = self.n_blocks if max_blocks is None else min(self.n_blocks, max_blocks)
        return np.stack([self.block(0, b) for b in range(n)])


def split_valid(n_utterances: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) utterance indices: the last ``fraction`` of utterances (at least one
    when ``fraction > 0`` and there are two or more utterances) are held out."""
    n_valid = 0 if fraction <= 0 else max(1, int(round(n_utterances * fraction)))
    n_valid = min(n_valid, n_utterances - 1) if n_utterances > 1 else 0
    idx = np.arange(n_utterances, dtype=np.int64)
    return idx[: n_utterances - n_valid], idx[n_utterances - n_valid:]
