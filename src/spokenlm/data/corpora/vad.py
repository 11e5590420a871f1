"""Voice activity detection over long files, and cutting speech into training segments.

:class:`SileroVad` runs Silero VAD (the ONNX model shipped in the ``faster-whisper`` wheel,
``faster_whisper/assets/silero_vad*.onnx``) with onnxruntime, streaming: the file is read in
blocks (:func:`spokenlm.audio.load.stream_audio`) and the model's LSTM state and 64-sample
context are carried from one block to the next, so a recording of hours is scored in the
memory of one block and gives the same probabilities as scoring it in one piece.
:func:`speech_intervals` turns the per-window speech probabilities (one per 32 ms) into
speech intervals (hysteresis, minimum speech and silence lengths, padding), and
:func:`cut_segments` merges or splits intervals (a VAD's, or the ``voice_activity`` of a
Libri-Light ``.json``) into segments between ``min_segment`` and ``max_segment`` seconds, in
the spirit of Libri-Light's ``cut_by_vad.py`` but as (start, end) spans of the original file
(silences inside a segment are kept, gaps longer than ``max_gap`` end a segment).
``spokenlm data segment`` (:func:`segment_manifest`) does both for any manifest of long
recordings, writing rows with ``start``/``duration``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.load import AudioError, audio_info, printable, row_segment, stream_audio
from ...audio.manifest import read_manifest, skip_report_path, write_manifest
from ...common.errors import InputError
from ...common.files import write_jsonl
from ...common.options import arg, command
from ...common.progress import log, progress

#: Silero VAD's input: 16 kHz mono, scored in windows of 512 samples (32 ms), each with the
#: 64 samples before it as context.
VAD_SAMPLE_RATE = 16_000
WINDOW = 512
CONTEXT = 64
#: Default segment lengths (s) and the pause (s) that ends a segment, as in Libri-Light's
#: cut_by_vad (which targets a length; here segments are spans of the recording).
MIN_SEGMENT_S = 2.0
MAX_SEGMENT_S = 20.0
MAX_GAP_S = 3.0
#: Windows per onnxruntime call (the LSTM runs over them in order): 8 s of audio, so the
#: buffers of one call stay small (larger calls are no faster and grow the heap).
WINDOWS_PER_CALL = 256


@dataclass(frozen=True)
class VadOptions:
    """How speech probabilities become intervals (seconds)."""

    threshold: float = 0.5       # a window with probability >= threshold is speech
    min_speech: float = 0.25     # shorter speech is dropped
    min_silence: float = 0.3     # silence (probability < threshold - 0.15) ending speech
    pad: float = 0.1             # added before and after each interval


def silero_model_path() -> Path:
    """The Silero VAD ONNX file inside the installed ``faster-whisper`` package."""
    try:
        import faster_whisper
    except ImportError:
        raise InputError("voice activity detection needs the Silero VAD model shipped with "
                         "faster-whisper, which is not installed; `pip install faster-whisper` "
                         "(or use segments you already have, e.g. --vad json)") from None
    assets = Path(faster_whisper.__file__).parent / "assets"
    models = sorted(assets.glob("silero_vad*.onnx"))
    if not models:
        raise InputError(f"{assets}: no silero_vad*.onnx in this faster-whisper install; "
                         f"reinstall faster-whisper (`pip install --force-reinstall "
                         f"faster-whisper`)")
    return models[-1]


class SileroVad:
    """Silero VAD on onnxruntime; one instance may score several files from several threads
    (the recurrent state lives in each :meth:`probabilities` call)."""

    def __init__(self, model_path: str | os.PathLike | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise InputError("voice activity detection needs onnxruntime (installed with "
                             "faster-whisper); `pip install faster-whisper`") from None
        path = Path(model_path) if model_path is not None else silero_model_path()
        so = onnxruntime.SessionOptions()
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        so.enable_cpu_mem_arena = False  # memory stays flat over hours of audio
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), sess_options=so,
                                                    providers=["CPUExecutionProvider"])

    def probabilities(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """Speech probability of each 512-sample window of the 16 kHz mono signal given as
        consecutive blocks (B_i,) of any sizes; the last window is zero-padded.

        Returns:
            float32 (W,), W = ceil(total samples / 512).
        """
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        context = np.zeros(CONTEXT, np.float32)
        pending = np.zeros(0, np.float32)
        out: list[np.ndarray] = []

        def run(windows: np.ndarray) -> None:  # windows (N, 512)
            nonlocal h, c, context
            ctx = np.concatenate([context[None], windows[:-1, -CONTEXT:]])  # (N, 64)
            x = np.concatenate([ctx, windows], axis=1)  # (N, 576)
            for s in range(0, len(x), WINDOWS_PER_CALL):
                probs, h, c = self.session.run(None, {"input": x[s:s + WINDOWS_PER_CALL],
                                                      "h": h, "c": c})
                out.append(np.asarray(probs, np.float32).reshape(-1))
            context = windows[-1, -CONTEXT:].copy()

        for block in blocks:
            buf = np.concatenate([pending, np.asarray(block, np.float32)])
            n = len(buf) // WINDOW
            if n:
                run(buf[:n * WINDOW].reshape(n, WINDOW))
            pending = buf[n * WINDOW:]
        if len(pending):
            run(np.pad(pending, (0, WINDOW - len(pending)))[None])
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def detect(self, path: str | os.PathLike, opts: VadOptions = VadOptions(), *,
               block_seconds: float = 8.0, start: float | None = None,
               duration: float | None = None) -> list[tuple[float, float]]:
        """Speech intervals (start, end) in seconds of the file ``path`` (of its segment
        [start, start + duration) when given; times still count from the file's start),
        read in blocks of ``block_seconds`` (any rate or channel count: mixed to mono,
        resampled to 16 kHz)."""
        n = 0

        def counted() -> Iterable[np.ndarray]:
            nonlocal n
            for block in stream_audio(path, VAD_SAMPLE_RATE, block_seconds=block_seconds,
                                      start=start, duration=duration):
                n += len(block)
                yield block

        probs = self.probabilities(counted())
        offset = start or 0.0
        return [(offset + s, offset + e) for s, e in speech_intervals(probs, opts, n_samples=n)]


_SHARED: dict[str, SileroVad] = {}
_LOCK = threading.Lock()


def shared_vad() -> SileroVad:
    """One :class:`SileroVad` per process (its ONNX session is loaded once)."""
    with _LOCK:
        if "vad" not in _SHARED:
            _SHARED["vad"] = SileroVad()
        return _SHARED["vad"]


def speech_intervals(probs: np.ndarray, opts: VadOptions = VadOptions(), *,
                     n_samples: int | None = None,
                     sample_rate: int = VAD_SAMPLE_RATE) -> list[tuple[float, float]]:
    """Speech intervals in seconds from window probabilities ``probs`` (W,) (window i covers
    samples [512 i, 512 (i + 1))): speech starts at a window >= ``threshold`` and ends where
    ``min_silence`` s of windows < ``threshold - 0.15`` begin; intervals shorter than
    ``min_speech`` are dropped, the rest padded by ``pad`` and merged where they touch."""
    total = len(probs) * WINDOW if n_samples is None else n_samples
    off = max(opts.threshold - 0.15, 0.01)
    min_silence = opts.min_silence * sample_rate
    spans: list[list[int]] = []
    start: int | None = None
    silent_from: int | None = None
    for i, p in enumerate(np.asarray(probs, np.float64)):
        t = i * WINDOW
        if p >= opts.threshold:
            silent_from = None
            if start is None:
                start = t
        elif start is not None and p < off:
            silent_from = t if silent_from is None else silent_from
            if t + WINDOW - silent_from >= min_silence:
                spans.append([start, silent_from])
                start = silent_from = None
    if start is not None:
        spans.append([start, total if silent_from is None else silent_from])
    pad = int(round(opts.pad * sample_rate))
    out: list[list[int]] = []
    for s, e in spans:
        if e - s < opts.min_speech * sample_rate:
            continue
        s, e = max(0, s - pad), min(total, e + pad)
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s / sample_rate, e / sample_rate) for s, e in out]


def cut_segments(intervals: Iterable[tuple[float, float]], *, min_segment: float,
                 max_segment: float, max_gap: float, file_duration: float
                 ) -> list[tuple[float, float]]:
    """Speech ``intervals`` (seconds) -> segments (start, end) of the file to train on.

    Intervals are clipped to [0, ``file_duration``], sorted and merged where they overlap;
    one longer than ``max_segment`` is split into equal parts no longer than it. Consecutive
    intervals are then joined into one span while the span stays within ``max_segment`` and
    the silence before the next is at most ``max_gap``; spans shorter than ``min_segment``
    are left out.
    """
    if not 0 < max_segment or min_segment > max_segment:
        raise InputError(f"segment lengths min {min_segment} s, max {max_segment} s: need "
                         f"0 < max and min <= max")
    clean: list[list[float]] = []
    for s, e in sorted((max(0.0, float(s)), min(file_duration, float(e)))
                       for s, e in intervals):
        if e <= s:
            continue
        if clean and s <= clean[-1][1]:
            clean[-1][1] = max(clean[-1][1], e)
        else:
            clean.append([s, e])
    pieces: list[tuple[float, float]] = []
    for s, e in clean:
        k = max(1, math.ceil((e - s) / max_segment - 1e-9))
        step = (e - s) / k
        pieces += [(s + j * step, e if j == k - 1 else s + (j + 1) * step) for j in range(k)]
    spans: list[list[float]] = []
    for s, e in pieces:
        if spans and e - spans[-1][0] <= max_segment + 1e-9 and s - spans[-1][1] <= max_gap:
            spans[-1][1] = e
        else:
            spans.append([s, e])
    return [(s, e) for s, e in spans if e - s >= min_segment]


@dataclass(kw_only=True)
class SegmentingOptions:
    """How a command cuts speech into segments (``data segment``, ``data librilight``)."""

    min_segment: float = arg(MIN_SEGMENT_S, help="shortest segment kept (s)")
    max_segment: float = arg(MAX_SEGMENT_S, help="longest segment (s); longer speech is split")
    max_gap: float = arg(MAX_GAP_S, help="a silence longer than this (s) ends a segment")
    vad_threshold: float = arg(VadOptions.threshold, help="Silero speech probability "
                                                           "threshold")

    def check_segment_lengths(self) -> None:
        """Refuse ``--min-segment`` / ``--max-segment`` that no segment can satisfy."""
        if not 0 < self.min_segment <= self.max_segment:
            raise InputError(f"--min-segment {self.min_segment} / --max-segment "
                             f"{self.max_segment}: need 0 < min <= max")

    def vad_options(self) -> VadOptions:
        return VadOptions(threshold=self.vad_threshold)

    def cut(self, intervals: Iterable[tuple[float, float]], file_duration: float
            ) -> list[tuple[float, float]]:
        """:func:`cut_segments` of ``intervals`` with these lengths."""
        return cut_segments(intervals, min_segment=self.min_segment,
                            max_segment=self.max_segment, max_gap=self.max_gap,
                            file_duration=file_duration)


@dataclass
class SegmentOptions(SegmentingOptions):
    manifest: Path = arg(positional=True, help="audio manifest (JSONL) of long recordings")
    output: Path = arg(Path("segments.jsonl"), short="-o", help="manifest of segments to write")
    jobs: int = arg(2, help="recordings segmented in parallel")


#: Columns of a recording's row that do not hold for its segments.
NOT_INHERITED = ("id", "path", "start", "duration", "text", "phonemes")


@command("data segment", SegmentOptions)
def segment_manifest(opts: SegmentOptions) -> Path:
    """Cut each recording of a manifest into speech segments by Silero VAD.

    One row per segment (``id`` ``<id>_<k>``, ``start``/``duration`` into the recording,
    ``recording`` = its id, its other columns but text), and a skip report of the rows left
    out."""
    opts.check_segment_lengths()
    rows = read_manifest(opts.manifest)
    if not rows:
        raise InputError(f"{opts.manifest}: the manifest lists no audio")
    vad, vad_opts = shared_vad(), opts.vad_options()

    def one(row: dict) -> list[dict]:
        start, duration = row_segment(row, where=str(opts.manifest))
        info = audio_info(row["path"], max_duration=None)
        end = (info.frames / info.samplerate if duration is None or start is None
               else start + duration)
        intervals = vad.detect(row["path"], vad_opts, start=start, duration=duration)
        spans = opts.cut(intervals, end)
        if not spans:
            raise AudioError(f"{printable(row['path'])}: no speech segment of at least "
                             f"{opts.min_segment:g} s found; lower --min-segment")
        keep = {k: v for k, v in row.items() if k not in NOT_INHERITED}
        return [{"id": f"{row['id']}_{k:04d}", "path": row["path"], "start": round(s, 6),
                 "duration": round(e - s, 6), **keep, "recording": row["id"]}
                for k, (s, e) in enumerate(spans)]

    def safe(row: dict) -> tuple[list[dict], str | None]:
        try:
            return one(row), None
        except AudioError as e:
            return [], str(e)

    out: list[dict] = []
    skipped: list[dict] = []
    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        for row, (segs, reason) in zip(rows, progress(pool.map(safe, rows), total=len(rows),
                                                      desc="vad", unit="file")):
            if reason is not None:
                log(f"skipped {reason}")
                skipped.append({"id": row["id"], "path": row["path"], "reason": reason})
            out += segs
    return write_segments(out, skipped, opts.output,
                          empty=f"{opts.manifest}: no speech segment in {len(rows)} recordings",
                          source=f"speech from {len(rows) - len(skipped)} recordings")


def write_segments(rows: list[dict], skipped: list[dict], output: Path, *, empty: str,
                   source: str) -> Path:
    """Write the skip report ``<output>.skipped.jsonl`` and the manifest of segments
    ``rows``. ``empty``: the error when there is no segment (``; see <report>`` added);
    ``source``: what the segments were cut from, for the summary line."""
    report = write_jsonl(skip_report_path(output), skipped)
    if not rows:
        raise InputError(f"{empty}; see {printable(report)}")
    write_manifest(rows, output)
    hours = sum(r["duration"] for r in rows) / 3600
    log(f"{printable(output)}: {len(rows)} segments, {hours:.2f} h of {source}; "
        f"{len(skipped)} skipped (listed in {printable(report)})")
    return output
