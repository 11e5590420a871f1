"""``spokenlm resynth``: audio -> units -> vocoder -> audio.

Resynthesis shows what the units keep of the signal: the output is spoken from units only
(with the original unit durations, or with predicted ones for deduplicated-only input).

A recording longer than :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` is never loaded
whole: it is tokenized chunk by chunk from disk, and its speech synthesised chunk by chunk
and written to the wav as it comes (peak memory: a few hundred MB for an hour of audio).
Shorter files go through the one-piece path, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.chunking import AudioStream, is_long, sample_chunks
from ..audio.constants import SAMPLE_RATE
from ..audio.framing import Framing, check_same_framing
from ..audio.load import AudioError, load_row, save_wav, segment_columns
from ..common.files import write_jsonl
from ..common.options import arg, command
from ..common.paths import store_row, unique_names
from ..common.progress import log, progress
from ..tokenize.tokenizer import SpeechTokenizer, Units
from ..vocoder.base import VocoderModel, load_vocoder
from ..vocoder.f0 import F0_FRAME_RATE, F0_HOP, track_f0, vocoder_f0_tracker
from .index import RowIndex, artifact_stamp
from .inputs import audio_inputs


@dataclass
class ResynthOptions:
    input: Path = arg(positional=True, scanned=True,
                      help="audio file, folder of audio, or JSONL manifest")
    tokenizer: Path = arg(help="tokenizer directory (spokenlm tokenize train)")
    vocoder: Path = arg(help="vocoder directory (spokenlm vocoder train)")
    output: Path = arg(Path("resynth"), help="folder for the resynthesised wavs")
    keep_durations: bool = arg(True, help="speak units with their measured durations; "
                                          "--no-keep-durations predicts them")
    split: str | None = arg(None, help="with a manifest: only rows of this split")
    limit: int | None = arg(None, help="resynthesise at most this many files")
    f0: str | None = arg(None, help="F0 tracker for F0-conditioned vocoders: yaapt or yin "
                                    "(fast); default: the vocoder's (yaapt when imported)")


@command("resynth", ResynthOptions)
def resynth(opts: ResynthOptions) -> Path:
    """Resynthesise audio through the units: audio -> tokenizer -> vocoder -> wav files.

    Each wav's row is added to ``resynth.jsonl`` as soon as the wav is written, so a killed
    run keeps its finished files; rerunning it resumes (see :class:`RowIndex`).
    """
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    vocoder = load_vocoder(opts.vocoder)
    check_same_framing(tokenizer.framing, f"tokenizer {opts.tokenizer}", vocoder.framing,
                       f"vocoder {opts.vocoder}")
    rows = audio_inputs(opts.input, opts.limit, opts.split)
    names = unique_names(row["id"] for row in rows)
    settings = {"tokenizer": artifact_stamp(opts.tokenizer),
                "vocoder": artifact_stamp(opts.vocoder), "keep_durations": opts.keep_durations}
    tracker = vocoder_f0_tracker(vocoder, opts.f0) if vocoder.needs_f0 else None
    if tracker:
        settings["f0"] = tracker
    skipped: list[dict] = []
    with RowIndex(opts.output / "resynth.jsonl", settings) as index:
        for row in progress(rows, desc="resynth", unit="file"):
            path = opts.output / f"{names[row['id']]}.wav"
            if index.done(row["id"], path=str(path), source=str(row["path"])):
                continue
            try:
                stream = AudioStream.from_row(row)
                wav = None if is_long(stream.expected_samples()) else load_row(row)
                if wav is None:  # never loaded whole: streamed from disk, written as it comes
                    units, n_in, n_out = _resynth_long(tokenizer, vocoder, stream, path,
                                                       opts.keep_durations, tracker)
            except AudioError as e:
                log(f"skipping {e}")
                skipped.append({"id": row["id"], "path": row["path"], "reason": str(e)})
                continue
            if wav is not None:
                units = tokenizer.encode(wav, dedup=True)
                durations = units.durations if opts.keep_durations else None
                # F0 vocoders get the source's pitch (aligned only with the measured durations)
                f0 = track_f0(wav, tracker) if tracker and durations is not None else None
                audio = vocoder.synthesize(units.units, durations, f0=f0)
                save_wav(path, audio, vocoder.sample_rate)
                n_in, n_out = len(wav), len(audio)
            durations = units.durations if opts.keep_durations else None
            index.add({"id": row["id"], "source": str(row["path"]), "path": str(path),
                       **{f"source_{k}": v for k, v in segment_columns(row).items()},
                       "text": row.get("text"), "units": units.units.tolist(),
                       "durations": None if durations is None else units.durations.tolist(),
                       "duration_in": n_in / SAMPLE_RATE,
                       "duration_out": n_out / vocoder.sample_rate})
        done = index.finish(row["id"] for row in rows)
    skipped_path = opts.output / "resynth.skipped.jsonl"
    if skipped:
        write_jsonl(skipped_path, [store_row(r, skipped_path, ("path",)) for r in skipped])
    elif skipped_path.exists():
        skipped_path.unlink()  # from an earlier run; nothing was skipped this time
    log(f"resynthesised {len(done)} files into {opts.output} ({len(skipped)} skipped)")
    return opts.output


def _resynth_long(tokenizer: SpeechTokenizer, vocoder: VocoderModel, stream: AudioStream,
                  path: Path, keep_durations: bool, tracker: str | None
                  ) -> tuple[Units, int, int]:
    """Resynthesise a long recording in bounded memory: units chunk by chunk from the file
    (:meth:`SpeechTokenizer.encode_stream`), F0 chunk by chunk (:func:`_track_f0_stream`),
    speech written to ``path`` as it is synthesised. Returns (units, samples read, samples
    written)."""
    units = tokenizer.encode_stream(lambda: stream, dedup=True)
    durations = units.durations if keep_durations else None
    f0 = _track_f0_stream(stream, tracker) if tracker and durations is not None else None
    n_out = vocoder.synthesize_to_wav(path, units.units, durations, f0=f0)
    return units, int(stream.num_samples or 0), n_out


def _track_f0_stream(stream: AudioStream, tracker: str, chunk_s: float = 30.0,
                     context_s: float = 1.0) -> np.ndarray:
    """F0 (Hz, 200 frames/s, (ceil(T / 80),)) of a long recording, tracked on chunks of
    ``chunk_s`` with ``context_s`` of audio each side and trimmed. Trackers normalise per
    input (YIN's loudness gate, YAAPT's global passes), so this is close to, not equal to,
    tracking the whole file at once."""
    framing = Framing(F0_HOP, 1)  # value k at sample 80 k: ceil(T / 80) values
    parts = [track_f0(wav, tracker)[skip:skip + keep] for wav, skip, keep in sample_chunks(
        stream, framing, int(chunk_s * F0_FRAME_RATE), int(context_s * F0_FRAME_RATE))]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
