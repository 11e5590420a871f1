"""espeak-ng as a multi-speaker TTS: a fixed table of voices and a parallel ``speak``.

A speaker is an espeak-ng voice variant (``en-us+f2``) with a pitch and a speaking rate.
espeak-ng writes 22.05 kHz audio; :func:`speak` resamples it to 16 kHz mono and writes each
wav atomically, so an interrupted run can be resumed by skipping files that exist.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..audio.constants import SAMPLE_RATE
from ..audio.load import AudioError, resample, save_wav, validate_audio
from ..common.errors import InputError
from ..common.options import arg
from ..common.progress import progress
from .phonemes import espeak_binary

#: Silence added at each end of a synthesised utterance (seconds).
PAD_S = 0.1


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng voice with variant, e.g. "en-us+f2"
    pitch: int  # 0..99
    rate: int  # words per minute
    gender: str  # "f" | "m"

    @property
    def language(self) -> str:
        """The voice without its variant ("en-us"): what decides the phonemes."""
        return self.voice.split("+")[0]

    def espeak_args(self) -> list[str]:
        return ["-v", self.voice, "-p", str(self.pitch), "-s", str(self.rate)]

    def to_dict(self) -> dict:
        return asdict(self)


def _table() -> tuple[Speaker, ...]:
    rows = [  # voice, pitch, rate: genders and accents interleaved
        ("en-us+m3", 45, 160), ("en-us+f2", 60, 165), ("en-gb+m1", 40, 150),
        ("en-gb+f3", 65, 155), ("en-us+m5", 35, 175), ("en-us+f4", 55, 145),
        ("en-gb+m7", 50, 170), ("en-gb+f1", 70, 160), ("en-us+m2", 55, 140),
        ("en-us+f5", 45, 175), ("en-gb+m4", 30, 160), ("en-gb+f2", 62, 150),
        ("en-us+m6", 48, 155), ("en-us+f3", 68, 170), ("en-gb+m3", 42, 180),
        ("en-gb+f4", 58, 140), ("en-us+m7", 38, 150), ("en-us+f1", 64, 160),
        ("en-gb+m5", 52, 165), ("en-gb+f5", 60, 175), ("en-us+m1", 44, 145),
        ("en-gb+m2", 36, 155), ("en-us+m4", 56, 165), ("en-gb+m6", 46, 170),
    ]
    return tuple(Speaker(f"spk{i:02d}", v, p, r, v.split("+")[1][0])
                 for i, (v, p, r) in enumerate(rows))


#: The built-in speakers, in a fixed order; :func:`speaker_table` extends it when asked for more.
SPEAKERS: tuple[Speaker, ...] = _table()


def speaker_table(n: int) -> list[Speaker]:
    """``n`` distinct speakers: the first ``n`` of :data:`SPEAKERS`, then variations of them
    with shifted pitch and rate."""
    if n < 1:
        raise InputError(f"n_speakers={n}: need at least 1 speaker")
    out = list(SPEAKERS[:n])
    for i in range(len(SPEAKERS), n):
        base, round_ = SPEAKERS[i % len(SPEAKERS)], i // len(SPEAKERS)
        pitch = 15 + (base.pitch - 15 + 13 * round_) % 70
        rate = 130 + (base.rate - 130 + 17 * round_) % 60
        out.append(Speaker(f"spk{i:02d}", base.voice, pitch, rate, base.gender))
    if len({(s.voice, s.pitch, s.rate) for s in out}) != len(out):
        raise InputError(f"n_speakers={n}: too many speakers to keep them distinct; use fewer")
    return out


def speak(texts: Sequence[str], speaker: Speaker, out_paths: Sequence[str | Path], *,
          jobs: int = 1, skip_existing: bool = True) -> list[Path]:
    """Speak each text with ``speaker`` into the matching 16 kHz mono wav.

    ``texts`` may hold espeak-ng phoneme input (``"[[h@l'oU]]"``). Files that already exist
    are kept when ``skip_existing`` (so a killed run resumes).
    """
    if len(texts) != len(out_paths):
        raise ValueError(f"{len(texts)} texts but {len(out_paths)} output paths")
    return speak_many([(t, speaker, Path(p)) for t, p in zip(texts, out_paths)], jobs=jobs,
                      skip_existing=skip_existing)


def jobs_option() -> Any:
    """The ``--jobs`` option of the commands that speak with espeak-ng (``data synth``,
    ``data bench build``, ``data bench spot-the-word``, ``data word-alignments``)."""
    return arg(2, help="espeak-ng processes in parallel")


def speak_many(items: Sequence[tuple[str, Speaker, Path]], *, jobs: int = 1,
               skip_existing: bool = True, desc: str = "speaking") -> list[Path]:
    """Like :func:`speak` with a speaker per item, ``jobs`` espeak-ng processes at a time."""
    binary = espeak_binary()
    todo = [it for it in items if not (skip_existing and Path(it[2]).exists())]

    def one(item: tuple[str, Speaker, Path]) -> None:
        text, speaker, path = item
        wav = synthesize(text, speaker, binary)
        save_wav(path, wav, SAMPLE_RATE)

    with progress(total=len(todo), desc=desc, unit="utt") as bar, \
            ThreadPoolExecutor(max(1, jobs)) as pool:
        for _ in pool.map(one, todo):
            bar.update(1)
    return [Path(p) for _, _, p in items]


def synthesize(text: str, speaker: Speaker, binary: str | None = None,
               pad: float = PAD_S) -> np.ndarray:
    """espeak-ng audio of ``text`` as float32 (T,) at 16 kHz, with ``pad`` s of silence at
    each end (espeak-ng's own final pause, -z, is dropped: 0.3 s of silence per file)."""
    cmd = [binary or espeak_binary(), "--stdout", "-z", *speaker.espeak_args()]
    proc = subprocess.run(cmd, input=text.encode(), capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise InputError(f"espeak-ng failed on {text!r} with voice {speaker.voice}: "
                         f"{proc.stderr.decode(errors='replace').strip()}; check "
                         f"`espeak-ng --voices=en`")
    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    wav = resample(data.mean(axis=1), sr, SAMPLE_RATE)
    n_pad = int(round(pad * SAMPLE_RATE))
    wav = np.pad(wav, (n_pad, n_pad))
    try:
        validate_audio(wav, f"<espeak-ng {speaker.voice}: {text!r}>")
    except AudioError as e:
        raise InputError(f"{e}; the text may have nothing to speak") from e
    return wav
