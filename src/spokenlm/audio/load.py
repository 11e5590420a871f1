"""Load, resample, validate and save audio.

Any format soundfile reads (wav, flac, ogg, ...) is mixed to mono and resampled to
:data:`SAMPLE_RATE` with soxr. Bad audio raises :class:`AudioError` naming the file and
what to do about it.

Every reader goes through :func:`audio_info`, which refuses a file from its header alone
(absurd sample rate or channel count, more frames than the file holds, longer than
``max_duration``) before any sample is decoded, so a forged 64 KB header cannot make a
reader allocate gigabytes. File names are passed to libsndfile as bytes, so names that
are not valid UTF-8 load like any other; messages show such bytes as ``\\xff``.

A manifest row may name a segment of its file: ``start`` (seconds) and ``duration`` (its
length in seconds; absent: to the end of the file). Every reader of rows goes through
:func:`load_row`, which seeks and decodes only that segment, so rows cut from a recording
of hours (``spokenlm data librilight``) never load the recording whole. A row without
``start`` is the whole file (its ``duration`` is then the file's, for information).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ..common.errors import InputError
from ..common.files import atomic_path
from .constants import (MAX_CHANNELS, MAX_DURATION_S, MAX_SAMPLE_RATE, MIN_DURATION_S,
                        MIN_SAMPLE_RATE, SAMPLE_RATE)

#: Peak amplitude below which a file counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: Frames decoded at a time when a file must be mixed down or resampled.
BLOCK_FRAMES = 1 << 18
#: Bytes per sample of the subtypes stored uncompressed, for the frames-vs-file-size check.
_BYTES_PER_SAMPLE = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2,
                     "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
#: Containers whose PCM subtypes are raw samples (FLAC says PCM_16 but compresses).
_RAW_FORMATS = {"WAV", "WAVEX", "AIFF", "AU", "RAW", "W64", "RF64", "CAF", "NIST", "IRCAM"}
#: How far (s) a row's segment may run past the end of its file and be cut there: rounding
#: of the stored ``start``/``duration`` and of header lengths, never a real mistake.
SEGMENT_TOLERANCE_S = 0.01
#: Row keys naming a segment of the row's file, in seconds.
SEGMENT_KEYS = ("start", "duration")


class AudioError(InputError):
    """An audio file is unreadable, empty, silent, too short or contains NaN/Inf."""


def printable(path: str | bytes | os.PathLike) -> str:
    """``path`` as text that prints and encodes as UTF-8: bytes of a file name that are not
    UTF-8 (held by Python as surrogate escapes) are shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def audio_info(path: str | os.PathLike, *,
               max_duration: float | None = MAX_DURATION_S) -> sf._SoundFileInfo:
    """Header of ``path`` (sample rate, channels, frames) without decoding the samples.

    Raises :class:`AudioError` for a missing file, a dangling symlink, a directory or other
    non-regular file, an empty file, an unreadable header, or a header that fails
    :func:`check_header` (``max_duration=None``: no length limit).
    """
    path = Path(path)
    name = printable(path)
    if path.is_symlink() and not path.exists():
        raise AudioError(f"{name}: dangling symlink -> {printable(os.readlink(path))}; "
                         f"fix the link or remove it")
    if not path.exists():
        raise AudioError(f"{name}: file not found; check the path or regenerate the manifest")
    if path.is_dir():
        raise AudioError(f"{name}: a directory, not a file; rename it so it does not end in "
                         f"an audio extension")
    try:
        st = path.stat()
    except OSError as e:
        raise AudioError(f"{name}: cannot be read ({e.strerror}); check its permissions") from e
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{name}: not a regular file (a pipe, socket or device); copy the "
                         f"audio into a regular file")
    if st.st_size == 0:
        raise AudioError(f"{name}: empty file (0 bytes); remove it or re-export the recording")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{name}: not readable as audio ({e}); convert it to wav/flac "
                         f"or remove it") from e
    check_header(info, path, file_size=st.st_size, max_duration=max_duration)
    return info


def header_fields(path: str | os.PathLike) -> dict[str, float | int]:
    """``{"duration", "sample_rate", "num_channels"}`` of ``path`` from its checked header
    (:func:`audio_info`, no length limit), as manifest rows record them."""
    info = audio_info(path, max_duration=None)
    return {"duration": info.frames / info.samplerate, "sample_rate": info.samplerate,
            "num_channels": info.channels}


def check_header(info: sf._SoundFileInfo, path: str | os.PathLike, *,
                 file_size: int | None = None,
                 max_duration: float | None = MAX_DURATION_S) -> None:
    """Raise :class:`AudioError` if a header is implausible: sample rate outside
    [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`], more than :data:`MAX_CHANNELS`
    channels, more raw samples than ``file_size`` bytes can hold (uncompressed formats), or
    longer than ``max_duration`` seconds (None: no limit)."""
    name = printable(path)
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: header claims a sample rate of {info.samplerate} Hz, "
                         f"outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz; the header is "
                         f"corrupt, re-export the file or remove it")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{name}: header claims {info.channels} channels (at most "
                         f"{MAX_CHANNELS} accepted); the header is corrupt, re-export the "
                         f"file or remove it")
    width = _BYTES_PER_SAMPLE.get(info.subtype) if info.format in _RAW_FORMATS else None
    if width is not None and file_size is not None:
        frame_bytes = info.channels * width
        if info.frames * frame_bytes > file_size + frame_bytes:
            raise AudioError(f"{name}: header claims {info.frames} frames "
                             f"({info.frames * frame_bytes} bytes of {info.subtype}) but the "
                             f"file has {file_size} bytes; the header is corrupt, re-export "
                             f"the file or remove it")
    duration = info.frames / info.samplerate
    if max_duration is not None and duration > max_duration:
        raise AudioError(f"{name}: header says {duration:.1f} s long, over the "
                         f"{max_duration:g} s limit; split it into shorter files, or raise "
                         f"the limit (`spokenlm audio manifest --max-duration`) and cut it "
                         f"into segments (`spokenlm data segment`)")


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *,
               start: float | None = None, duration: float | None = None,
               validate: bool = True, max_duration: float | None = MAX_DURATION_S
               ) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate``; the header is checked first
    (:func:`audio_info`), so a file over ``max_duration`` is refused without decoding.

    With ``start`` or ``duration`` (seconds) only the segment [start, start + duration) is
    decoded, after a seek (``duration`` None: to the end of the file); ``max_duration`` then
    limits the segment, not the file. A segment outside the file raises :class:`AudioError`.

    Returns:
        wav: float32 array of shape (T,), values in [-1, 1].
    """
    if start is None and duration is None:
        wav = decode_audio(path, audio_info(path, max_duration=max_duration), sample_rate)
    else:
        info = audio_info(path, max_duration=None)
        span = segment_frames(info, path, start or 0.0, duration)
        seconds = span[1] / info.samplerate
        if max_duration is not None and seconds > max_duration:
            raise AudioError(f"{printable(path)}: segment at {start or 0.0:g} s is "
                             f"{seconds:.1f} s long, over the {max_duration:g} s limit; cut "
                             f"it into shorter segments")
        wav = decode_audio(path, info, sample_rate, span=span)
    if validate:
        validate_audio(wav, path, sample_rate)
    return wav


def row_segment(row: Mapping[str, Any], where: str = "row"
                ) -> tuple[float | None, float | None]:
    """``(start, duration)`` in seconds of the segment a manifest row names, ``(None, None)``
    when it has no ``start`` (the whole file). Raises :class:`InputError` (naming ``where``)
    for values that are not numbers >= 0."""
    if row.get("start") is None:
        return None, None
    values = []
    for key in SEGMENT_KEYS:
        value = row.get(key)
        if key == "duration" and value is None:
            values.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise InputError(f"{where} (id {row.get('id')!r}): {key}={value!r}; a segment's "
                             f"start and duration are seconds, numbers >= 0 (fix the row or "
                             f"regenerate the manifest)")
        values.append(float(value))
    return values[0], values[1]


def segment_columns(row: Mapping[str, Any]) -> dict[str, float]:
    """``{"start", "duration"}`` of a row naming a segment, else ``{}``: what a stage copies
    into the rows it writes so that later stages read the same segment."""
    start, duration = row_segment(row)
    if start is None:
        return {}
    return {"start": start, **({} if duration is None else {"duration": duration})}


def load_row(row: Mapping[str, Any], sample_rate: int = SAMPLE_RATE, *,
             validate: bool = True, max_duration: float | None = MAX_DURATION_S,
             path: str | os.PathLike | None = None) -> np.ndarray:
    """The audio of a manifest row: its ``path`` (or ``path`` given here, e.g. resolved
    against a units file), only the segment its ``start``/``duration`` name if it has one.

    Returns:
        wav: float32 (T,) mono at ``sample_rate``.
    """
    start, duration = row_segment(row, where=f"row of {printable(row['path'])}")
    return load_audio(row["path"] if path is None else path, sample_rate, start=start,
                      duration=duration, validate=validate, max_duration=max_duration)


def row_num_samples(row: Mapping[str, Any], sample_rate: int = SAMPLE_RATE) -> int:
    """Samples at ``sample_rate`` that :func:`load_row` gives for ``row``, from the header
    only (no decoding)."""
    info = audio_info(row["path"], max_duration=None)
    start, duration = row_segment(row)
    frames = info.frames if start is None else segment_frames(
        info, row["path"], start, duration)[1]
    return int(frames * sample_rate / info.samplerate)


def segment_frames(info: sf._SoundFileInfo, path: str | os.PathLike, start: float,
                   duration: float | None) -> tuple[int, int]:
    """``(first frame, number of frames)`` of the segment [start, start + duration) s of the
    file whose header is ``info``. A segment may run past the end by
    :data:`SEGMENT_TOLERANCE_S` (it is cut there); otherwise :class:`AudioError`."""
    name = printable(path)
    length = info.frames / info.samplerate
    if start < 0 or (duration is not None and duration < 0):
        raise AudioError(f"{name}: segment start={start!r} s, duration={duration!r} s; both "
                         f"must be >= 0, fix the manifest row")
    end = length if duration is None else start + duration
    if start >= length or end > length + SEGMENT_TOLERANCE_S:
        raise AudioError(f"{name}: segment [{start:.3f}, {end:.3f}] s lies outside the file "
                         f"({length:.3f} s long); fix the row's start/duration or regenerate "
                         f"the manifest")
    first = min(int(round(start * info.samplerate)), info.frames)
    last = min(int(round(end * info.samplerate)), info.frames)
    return first, max(0, last - first)


def decode_audio(path: str | os.PathLike, info: sf._SoundFileInfo,
                 sample_rate: int = SAMPLE_RATE, *,
                 span: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``path``, whose header ``info`` :func:`audio_info` checked, to float32 mono
    (T,) at ``sample_rate``; ``span`` = (first frame, number of frames) decodes only that
    segment, after a seek. A multi-channel or other-rate file is decoded, mixed down and
    resampled :data:`BLOCK_FRAMES` at a time, so memory is the output plus one block."""
    first, frames = (0, info.frames) if span is None else span
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            if first:
                f.seek(first)
            if f.channels == 1 and f.samplerate == sample_rate:
                return f.read(frames, dtype="float32")  # (T,)
            return _decode_blocks(f, sample_rate, frames)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{printable(path)}: could not decode audio ({e}); the file may be "
                         f"truncated or corrupt, re-export it or remove it") from e


def _decode_blocks(f: sf.SoundFile, sample_rate: int, frames: int) -> np.ndarray:
    """Mono (T,) float32 at ``sample_rate`` of the next ``frames`` frames of an open file,
    one block at a time."""
    out = np.empty(math.ceil(frames * sample_rate / f.samplerate), np.float32)
    n = 0
    for chunk in _mono_blocks(f, sample_rate, frames, BLOCK_FRAMES):
        if n + len(chunk) > len(out):
            out = np.concatenate([out[:n], np.empty(n + len(chunk) - len(out), np.float32)])
        out[n: n + len(chunk)] = chunk
        n += len(chunk)
    return out[:n]


def _mono_blocks(f: sf.SoundFile, sample_rate: int, frames: int, block_frames: int
                 ) -> Iterator[np.ndarray]:
    """The next ``frames`` frames of an open file as float32 mono blocks (B,) at
    ``sample_rate`` (about ``block_frames`` input frames each; resampled by a soxr stream)."""
    stream = (None if f.samplerate == sample_rate else
              soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ"))
    for block in f.blocks(block_frames, frames=frames, dtype="float32", always_2d=True):
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        yield mono if stream is None else stream.resample_chunk(mono)
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def stream_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *,
                 block_seconds: float = 30.0, start: float | None = None,
                 duration: float | None = None) -> Iterator[np.ndarray]:
    """A file of any length (or its segment [start, start + duration) s) as consecutive
    float32 mono blocks (B,) at ``sample_rate``, about ``block_seconds`` each (the last
    shorter), so memory stays one block however long the file is. The header is checked
    first (:func:`audio_info`, no length limit)."""
    info = audio_info(path, max_duration=None)
    first, frames = ((0, info.frames) if start is None and duration is None else
                     segment_frames(info, path, start or 0.0, duration))
    block_frames = max(1, int(block_seconds * info.samplerate))
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            if first:
                f.seek(first)
            for block in _mono_blocks(f, sample_rate, frames, block_frames):
                if len(block):
                    yield np.ascontiguousarray(block)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{printable(path)}: could not decode audio ({e}); the file may be "
                         f"truncated or corrupt, re-export it or remove it") from e


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a (T,) float32 signal with soxr (high quality); identity when rates match."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def validate_audio(wav: np.ndarray, path: str | os.PathLike = "<array>",
                   sample_rate: int = SAMPLE_RATE, min_duration: float = MIN_DURATION_S) -> None:
    """Raise :class:`AudioError` if ``wav`` (T,) is empty, too short, non-finite or silent.
    Uses only min/max (no temporary arrays the size of ``wav``)."""
    name = printable(path)
    if wav.size == 0:
        raise AudioError(f"{name}: contains no samples; remove it or re-export the recording")
    lo, hi = float(wav.min()), float(wav.max())  # NaN and Inf propagate into min/max
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise AudioError(f"{name}: contains NaN or Inf samples; re-export the recording")
    duration = wav.shape[0] / sample_rate
    if duration < min_duration:
        raise AudioError(f"{name}: too short ({duration:.3f} s < {min_duration} s); "
                         f"remove it or pad it")
    peak = max(hi, -lo)
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak amplitude {peak:.2e}); remove it or check "
                         f"the recording level")


def save_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write (T,) float audio as 16-bit PCM wav, atomically; values are clipped to [-1, 1]."""
    wav = np.clip(np.asarray(wav, dtype=np.float32), -1.0, 1.0)
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(os.fsencode(tmp), wav, sample_rate, subtype="PCM_16", format="WAV")
    return path
