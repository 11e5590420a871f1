"""Long audio in bounded memory: files read block by block, frames processed in chunks.

Stages that work on frames (encoders, vocoders) process a long input as chunks of frames,
each run with ``context`` extra frames of real input on either side that are computed and
thrown away, so a model whose output at frame ``i`` depends only on frames within
``context`` of ``i`` gives the same output chunked as in one piece (to float rounding).
At the ends of the input a chunk has no context beyond the edge, exactly as the whole
input has none, so edge effects (padding, replicated deltas) are the same too.

- :func:`plan_chunks`: the chunks of a sequence whose length is known (vocoder frames);
- :func:`sample_chunks`: chunks of a waveform that arrives in blocks, length unknown until
  the end (encoders; chunk boundaries fall on frame boundaries of a :class:`Framing`);
- :class:`AudioStream`: a manifest row's audio (or a segment of it), re-readable, decoded
  :data:`BLOCK_SECONDS` at a time and checked as it is read (NaN/Inf, silence, too short:
  the same :class:`~spokenlm.audio.load.AudioError` as :func:`~spokenlm.audio.load.load_row`);
- :func:`write_wav_blocks`: a wav written block by block as it is produced.

Inputs up to :data:`STREAM_ABOVE_S` seconds keep the one-piece path everywhere, so their
outputs are unchanged by streaming; longer ones stream.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from ..common.files import atomic_path
from .constants import MIN_DURATION_S, SAMPLE_RATE
from .framing import Framing
from .load import (SILENCE_PEAK, AudioError, audio_info, printable, row_segment,
                   segment_frames, stream_audio)

#: Audio (or synthesised speech) longer than this many seconds is processed in chunks;
#: anything shorter goes through the one-piece path exactly as before streaming existed.
STREAM_ABOVE_S: float = 60.0
#: Seconds of audio decoded per block when a file is streamed.
BLOCK_SECONDS: float = 30.0


@dataclass(frozen=True)
class Chunking:
    """How a model's output may be computed chunk by chunk.

    ``chunk_frames``: frames kept per chunk; ``context_frames``: real input frames each
    side of a chunk that its kept frames depend on; ``exact``: whether chunked output then
    equals the one-piece output (to float rounding), or only approximately (global
    operations such as self-attention); ``two_pass``: the model also needs whole-input
    statistics, gathered in a first pass over the input (per-utterance CMN); ``note``: why
    it is approximate, for docs and logs.
    """

    chunk_frames: int
    context_frames: int
    exact: bool
    two_pass: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.chunk_frames < 1 or self.context_frames < 0:
            raise ValueError(f"chunking: chunk_frames={self.chunk_frames} must be >= 1 and "
                             f"context_frames={self.context_frames} >= 0")


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of a sequence, computed on ``[start - left, stop + right)``."""

    start: int
    stop: int
    left: int
    right: int

    @property
    def lo(self) -> int:
        """First input frame the chunk is computed on."""
        return self.start - self.left

    @property
    def hi(self) -> int:
        """One past the last input frame the chunk is computed on."""
        return self.stop + self.right


def plan_chunks(n_frames: int, chunk_frames: int, context_frames: int,
                multiple: int = 1, min_last: int = 0) -> list[Chunk]:
    """Chunks covering frames ``[0, n_frames)`` in order, ``chunk_frames`` each (the last
    shorter), each with up to ``context_frames`` of context per side (less at the edges).

    With ``multiple`` > 1 chunk lengths and contexts are rounded up to multiples of it, so
    every chunk starts on a multiple (models that group frames, e.g. an F0 quantizer's 4).
    A last chunk shorter than ``min_last`` frames joins the one before it.
    """
    m = max(1, int(multiple))
    chunk = -(-max(1, int(chunk_frames)) // m) * m
    context = -(-max(0, int(context_frames)) // m) * m
    n = int(n_frames)
    out = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        out.append(Chunk(start, stop, min(context, start), min(context, n - stop)))
    if len(out) > 1 and out[-1].stop - out[-1].start < min_last:
        last = out.pop()
        out[-1] = Chunk(out[-1].start, last.stop, out[-1].left, last.right)
    return out


def sample_chunks(blocks: Iterable[np.ndarray], framing: Framing, chunk_frames: int,
                  context_frames: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """Cut a waveform arriving as consecutive blocks into encoder chunks.

    Frame ``i`` covers samples ``[hop i, hop i + window)`` (:class:`Framing`). Yields
    ``(samples, skip, keep)``: ``samples`` (S,) start on a frame boundary and hold the next
    ``keep`` frames plus up to ``context_frames`` real frames each side; frames
    ``[skip, skip + keep)`` of the model's output on them are the next ``keep`` frames of
    the whole. Together the kept frames are exactly ``framing.num_frames(total samples)``.
    Memory: one chunk with its context plus one block.
    """
    hop, win = framing.hop_length, framing.win_length
    chunk, context = max(1, int(chunk_frames)), max(0, int(context_frames))

    def end_sample(frames: int) -> int:  # samples needed for frames [0, frames)
        return (frames - 1) * hop + win

    pieces: list[np.ndarray] = []
    buf = np.zeros(0, np.float32)
    buf_start = 0  # index in the whole waveform of buf[0]
    held = 0  # samples in buf + pieces
    done = 0  # frames emitted
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        pieces.append(block)
        held += len(block)
        while buf_start + held >= end_sample(done + chunk + context):
            if pieces:
                buf = np.concatenate([buf, *pieces])
                pieces = []
            lo = max(0, done - context)
            yield (buf[lo * hop - buf_start: end_sample(done + chunk + context) - buf_start],
                   done - lo, chunk)
            done += chunk
            drop = max(0, done - context) * hop - buf_start
            buf, buf_start, held = buf[drop:], buf_start + drop, held - drop
    if pieces:
        buf = np.concatenate([buf, *pieces])
    total = framing.num_frames(buf_start + len(buf))
    while done < total:
        stop = min(done + chunk, total)
        lo, hi = max(0, done - context), min(total, stop + context)
        yield buf[lo * hop - buf_start: end_sample(hi) - buf_start], done - lo, stop - done
        done = stop


class AudioStream:
    """The audio of ``path`` (or its segment ``[start, start + duration)`` s) as float32
    mono blocks (B,) at ``sample_rate``, :data:`BLOCK_SECONDS` each; iterate it as many
    times as needed (each pass decodes the file again).

    Checked as it is read, with the messages of :func:`~spokenlm.audio.load.validate_audio`:
    NaN/Inf raises at the block that holds it, silence and a too-short input at the end of
    the pass. No length limit: nothing is allocated from the header. After a full pass,
    ``num_samples`` is the number of samples read.
    """

    def __init__(self, path: str | os.PathLike, *, start: float | None = None,
                 duration: float | None = None, sample_rate: int = SAMPLE_RATE,
                 block_seconds: float = BLOCK_SECONDS) -> None:
        self.path, self.start, self.duration = path, start, duration
        self.sample_rate, self.block_seconds = sample_rate, block_seconds
        self.num_samples: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], sample_rate: int = SAMPLE_RATE,
                 block_seconds: float = BLOCK_SECONDS) -> AudioStream:
        """The audio :func:`~spokenlm.audio.load.load_row` would load, as a stream."""
        start, duration = row_segment(row, where=f"row of {printable(row['path'])}")
        return cls(row["path"], start=start, duration=duration, sample_rate=sample_rate,
                   block_seconds=block_seconds)

    def expected_samples(self) -> int:
        """Samples at ``sample_rate`` the header promises (no decoding)."""
        info = audio_info(self.path, max_duration=None)
        frames = info.frames if self.start is None and self.duration is None else \
            segment_frames(info, self.path, self.start or 0.0, self.duration)[1]
        return int(frames * self.sample_rate / info.samplerate)

    def __iter__(self) -> Iterator[np.ndarray]:
        name = printable(self.path)
        n, peak = 0, 0.0
        for block in stream_audio(self.path, self.sample_rate, block_seconds=self.block_seconds,
                                  start=self.start, duration=self.duration):
            lo, hi = float(block.min()), float(block.max())
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise AudioError(f"{name}: contains NaN or Inf samples; re-export the "
                                 f"recording")
            peak = max(peak, hi, -lo)
            n += len(block)
            yield block
        if n == 0:
            raise AudioError(f"{name}: contains no samples; remove it or re-export the "
                             f"recording")
        if n / self.sample_rate < MIN_DURATION_S:
            raise AudioError(f"{name}: too short ({n / self.sample_rate:.3f} s < "
                             f"{MIN_DURATION_S} s); remove it or pad it")
        if peak < SILENCE_PEAK:
            raise AudioError(f"{name}: silent (peak amplitude {peak:.2e}); remove it or check "
                             f"the recording level")
        self.num_samples = n


def write_wav_blocks(path: str | os.PathLike, blocks: Iterable[np.ndarray],
                     sample_rate: int = SAMPLE_RATE) -> int:
    """Write audio blocks (B,) one after another into one 16-bit PCM wav, atomically (the
    file appears under ``path`` only when complete): float blocks clipped to [-1, 1] as
    :func:`~spokenlm.audio.load.save_wav` writes them, int16 blocks as they are. Returns
    the number of samples. Memory: one block."""
    n = 0
    with atomic_path(path) as tmp:
        with sf.SoundFile(os.fsencode(tmp), "w", sample_rate, 1, subtype="PCM_16",
                          format="WAV") as f:
            for block in blocks:
                block = np.asarray(block).reshape(-1)
                if block.dtype != np.int16:  # int16 blocks are 16-bit samples, written as is
                    block = np.clip(block.astype(np.float32, copy=False), -1.0, 1.0)
                f.write(block)
                n += len(block)
    return n


def is_long(num_samples: int, sample_rate: int = SAMPLE_RATE) -> bool:
    """Whether ``num_samples`` is over :data:`STREAM_ABOVE_S` (streamed rather than whole)."""
    return num_samples > STREAM_ABOVE_S * sample_rate
