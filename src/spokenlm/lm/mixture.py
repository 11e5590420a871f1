"""Data mixtures for LM training: several packed unit sets sampled with weights.

Slam trains on real speech mixed with synthetic spoken stories (sTinyStories); a
:class:`MixtureStream` draws each batch's composition from the sources' weights and takes
the rows from each source's own :class:`~spokenlm.lm.data.BlockStream`, so every source
keeps its own epoch order and resume position. The composition of batch ``k`` depends only
on ``(seed, k)``: every process draws the same one (each takes its share of every source),
and a resumed run draws exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..common.errors import InputError
from .data import BlockStream, DataState


def parse_mix(spec: str) -> tuple[str, float]:
    """``"data/synth/units:0.3"`` -> ``("data/synth/units", 0.3)``."""
    path, sep, weight = spec.rpartition(":")
    try:
        w = float(weight)
    except ValueError:
        w = -1.0
    if not sep or not path or not w > 0:
        raise InputError(f"--mix {spec!r}: expected PATH:WEIGHT with a positive weight, e.g. "
                         f"data/synth/units.jsonl:0.3")
    return path, w


@dataclass
class MixState:
    """Resume state: one :class:`DataState` per source, batches drawn, rows per source."""

    sources: list[DataState]
    batches: int = 0
    rows: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": [s.to_dict() for s in self.sources], "batches": self.batches,
                "rows": list(self.rows)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixState:
        return cls([DataState.from_dict(s) for s in d["sources"]], int(d["batches"]),
                   [int(r) for r in d["rows"]])


class MixtureStream:
    """Batches whose rows come from ``streams`` in proportion to ``weights`` (normalised)."""

    def __init__(self, streams: list[BlockStream], weights: list[float], names: list[str],
                 seed: int = 0) -> None:
        if len(streams) != len(weights) or not streams:
            raise ValueError("one weight per stream")
        lens = {s.block_len for s in streams}
        if len(lens) != 1:
            raise InputError(f"mixed sources have different block lengths {sorted(lens)}; "
                             f"use one --seq-len")
        w = np.asarray(weights, dtype=np.float64)
        self.streams, self.weights, self.names, self.seed = streams, w / w.sum(), names, seed
        self.total = sum(s.total for s in streams)
        self.block_len = streams[0].block_len

    def initial_state(self) -> MixState:
        return MixState([DataState() for _ in self.streams], 0, [0] * len(self.streams))

    def composition(self, batch: int, rows: int) -> np.ndarray:
        """Rows per source (S,) of batch number ``batch``: multinomial draw from the weights."""
        rng = np.random.default_rng([self.seed, 0x5EED, batch])
        return rng.multinomial(rows, self.weights)

    def next_batch(self, state: MixState, batch_size: int, rank: int = 0,
                   world_size: int = 1) -> tuple[np.ndarray, MixState]:
        """This rank's share of the next global batch (int64 (batch_size / world, T+1)),
        rows grouped by source, and the state after."""
        if batch_size % world_size:
            raise InputError(f"batch_size={batch_size} is not divisible by the "
                             f"{world_size} processes; pick a multiple of {world_size}")
        counts = self.composition(state.batches, batch_size // world_size)
        parts, sources = [], list(state.sources)
        for i, c in enumerate(counts):
            if c:
                x, sources[i] = self.streams[i].next_batch(sources[i], int(c) * world_size,
                                                           rank, world_size)
                parts.append(x)
        rows = [r + int(c) * world_size for r, c in zip(state.rows, counts)]
        return np.concatenate(parts), MixState(sources, state.batches + 1, rows)

    def shares(self, state: MixState) -> dict[str, float]:
        """Fraction of the rows drawn so far that came from each source."""
        total = max(1, sum(state.rows))
        return {n: round(r / total, 4) for n, r in zip(self.names, state.rows)}
