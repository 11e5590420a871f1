"""Training data for vocoders: units JSONL rows + their audio, cut into aligned segments.

Frame i of an utterance covers samples ``[i * hop, (i + 1) * hop)`` (hop 320 at 50 Hz;
the units' ``frame_rate`` sets it); the audio is padded or cropped to ``n_frames * hop``.
Each batch holds random fixed-length segments (one per
drawn utterance, as in HiFi-GAN) and, for the duration predictor, the whole utterances'
deduplicated units and durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..audio.framing import DEFAULT_FRAMING, Framing, units_framing
from ..audio.load import load_row
from ..common.errors import InputError
from ..common.files import iter_jsonl
from ..common.paths import resolve_path
from ..common.progress import progress


@dataclass
class Utterance:
    """One training utterance: frame-level units aligned with audio."""

    id: str
    frames: np.ndarray      # int64 (F,) unit per frame
    units: np.ndarray       # int64 (N,) deduplicated units
    durations: np.ndarray   # int64 (N,) frames per unit, sum = F
    wav: np.ndarray         # float32 (F * hop,)
    speaker: str


@dataclass
class Batch:
    """A training batch (tensors on one device)."""

    frames: Tensor           # (B, S) int64 segment units
    wav: Tensor              # (B, S * hop) float32 segment audio
    speaker: Tensor | None   # (B,) int64 speaker rows, None for single-speaker models
    units: Tensor            # (B, N) int64 whole-utterance dedup units (0-padded)
    durations: Tensor        # (B, N) int64 frames per unit (0-padded)
    mask: Tensor             # (B, N) bool, True on real units


def expected_frames(n_samples: int, framing: Framing = DEFAULT_FRAMING) -> int:
    """Unit frames an encoder gives for ``n_samples`` (400-sample window, 320 hop at 50 Hz)."""
    return framing.num_frames(n_samples)


def _dedup(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    return frames[starts], np.diff(np.r_[starts, len(frames)])


def _row_units(row: dict, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, dedup units, durations) of a units row, with or without ``durations``."""
    units = np.asarray(row.get("units", []), dtype=np.int64)
    if row.get("durations") is not None:
        durations = np.asarray(row["durations"], dtype=np.int64)
        if durations.shape != units.shape or (durations.size and durations.min() < 1):
            raise InputError(f"{where}: 'durations' must have one integer >= 1 per unit; "
                             f"re-run `spokenlm tokenize run`")
        frames = np.repeat(units, durations)
    else:
        frames = units
    if frames.size == 0:
        raise InputError(f"{where}: no units; remove the row or re-run tokenization")
    u, d = _dedup(frames)
    return frames, u, d


def load_utterances(units_path: Path, min_frames: int = 1) -> list[Utterance]:
    """Read a units JSONL and the audio each row's ``path`` names (relative paths resolve
    against the JSONL's folder). Rows whose audio length disagrees with ``n_frames`` by
    more than 2 frames are an error: the units were not made from that file. The frame
    hop comes from the rows' ``frame_rate`` (:func:`~spokenlm.audio.framing.units_framing`)."""
    rows = list(iter_jsonl(units_path))
    if not rows:
        raise InputError(f"{units_path}: no rows; tokenize some audio first")
    framing = units_framing(rows, units_path)
    hop = framing.hop_length
    out = []
    for lineno, row in enumerate(progress(rows, desc="vocoder: loading audio"), 1):
        where = f"{units_path}:{lineno} (id {row.get('id')!r})"
        if not row.get("path"):
            raise InputError(f"{where}: no 'path' to the audio; vocoder training needs units "
                             f"made from a manifest with audio paths (`spokenlm tokenize run`)")
        path = resolve_path(row["path"], units_path)
        frames, u, d = _row_units(row, where)
        wav = load_row(row, path=path)
        n = int(row.get("n_frames", len(frames)))
        if len(frames) != n:
            raise InputError(f"{where}: {len(frames)} frames of units but n_frames={n}")
        if abs(expected_frames(len(wav), framing) - n) > 2:
            raise InputError(f"{where}: {path} has {len(wav)} samples "
                             f"({expected_frames(len(wav), framing)} frames at "
                             f"{framing.describe()}) but the row has {n} frames; "
                             f"re-tokenize this audio")
        if n < min_frames:
            continue
        wav = np.pad(wav, (0, max(0, n * hop - len(wav))))[: n * hop]
        out.append(Utterance(str(row.get("id", lineno)), frames, u, d,
                             wav.astype(np.float32), str(row.get("speaker") or "")))
    if not out:
        raise InputError(f"{units_path}: every utterance is shorter than {min_frames} frames")
    return out


class SegmentSampler:
    """Endless random batches; an epoch is one pass over the utterances in random order.

    Its state (position, RNG) is a small dict, so training resumes where it stopped.
    """

    def __init__(self, utterances: list[Utterance], batch_size: int, segment_frames: int,
                 speakers: list[str], seed: int = 0, hop_length: int | None = None) -> None:
        self.utts, self.batch_size, self.segment = utterances, batch_size, segment_frames
        #: samples per frame (from the utterances: len(wav) / len(frames))
        self.hop = hop_length or (len(utterances[0].wav) // max(1, len(utterances[0].frames)))
        self.speakers = {s: i for i, s in enumerate(speakers)}
        self.rng = np.random.default_rng(seed)
        self.consumed = 0
        self.order = self.rng.permutation(len(utterances))

    @property
    def epoch(self) -> int:
        return self.consumed // len(self.utts)

    def state_dict(self) -> dict:
        return {"consumed": self.consumed, "order": self.order.tolist(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.consumed = int(state["consumed"])
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.rng.bit_generator.state = state["rng"]

    def _next_index(self) -> int:
        pos = self.consumed % len(self.utts)
        idx = int(self.order[pos])
        self.consumed += 1
        if self.consumed % len(self.utts) == 0:
            self.order = self.rng.permutation(len(self.utts))
        return idx

    def _segment(self, utt: Utterance) -> tuple[np.ndarray, np.ndarray]:
        n, s = len(utt.frames), self.segment
        if n >= s:
            start = int(self.rng.integers(0, n - s + 1))
            return (utt.frames[start:start + s],
                    utt.wav[start * self.hop:(start + s) * self.hop])
        frames = np.pad(utt.frames, (0, s - n), mode="edge")
        return frames, np.pad(utt.wav, (0, (s - n) * self.hop))

    def next_rows(self) -> list[tuple[Utterance, np.ndarray, np.ndarray]]:
        """The next batch's utterances with their segments (frames (S,), wav (S * hop,))."""
        utts = [self.utts[self._next_index()] for _ in range(self.batch_size)]
        return [(u, *self._segment(u)) for u in utts]

    def next_batch(self, device: torch.device) -> Batch:
        return self.collate(self.next_rows(), device)

    def collate(self, rows: list[tuple[Utterance, np.ndarray, np.ndarray]],
                device: torch.device) -> Batch:
        """Rows of :meth:`next_rows` (all of them, or one process's shard) as a batch."""
        utts = [u for u, _, _ in rows]
        segs = [(f, w) for _, f, w in rows]
        n_max = max(len(u.units) for u in utts)
        units = np.zeros((len(utts), n_max), dtype=np.int64)
        durs = np.zeros((len(utts), n_max), dtype=np.int64)
        for i, u in enumerate(utts):
            units[i, :len(u.units)], durs[i, :len(u.units)] = u.units, u.durations
        speaker = None
        if self.speakers:
            speaker = torch.tensor([self.speakers.get(u.speaker, 0) for u in utts],
                                   device=device)
        d = torch.from_numpy(durs).to(device)
        return Batch(frames=torch.from_numpy(np.stack([f for f, _ in segs])).to(device),
                     wav=torch.from_numpy(np.stack([w for _, w in segs])).to(device),
                     speaker=speaker, units=torch.from_numpy(units).to(device),
                     durations=d, mask=d > 0)
