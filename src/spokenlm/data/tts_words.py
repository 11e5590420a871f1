"""``spokenlm data word-alignments``: word timings of a synthetic corpus, from espeak-ng.

A corpus spoken by espeak-ng (``spokenlm data synth``) needs no aligner: espeak-ng's
library reports where each word starts while it synthesises. This replays each utterance
through ``libespeak-ng`` (ctypes, synchronous mode, a fresh process per synthesis) with the
same voice, pitch, rate and flags as :func:`spokenlm.data.tts.synthesize` (the CLI's ``-z``),
checks that the library's audio has exactly the length of the wav on disk (so the timings
are of that audio), and writes the labels JSONL that
:func:`~spokenlm.data.alignments.read_alignments` reads::

    {"id": ..., "intervals": [[0.0, 0.1, "SIL"], [0.1, 0.223, "the"], ...]}

A word runs from its start to the next word's start (the last one to the end of the speech);
the padding :data:`~spokenlm.data.tts.PAD_S` at each end is silence. espeak-ng speaks some
function words as one with the next ("that the"): they get one interval, labelled with
both. Labels are the words of the manifest's ``text`` (the text the wav speaks, as the TTS
read it with a final "." or "?"); a row whose audio cannot be reproduced is listed in
``<output>.skipped.jsonl``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.constants import SAMPLE_RATE
from ..audio.load import AudioError, audio_info, resample
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import read_json, write_jsonl
from ..common.options import arg, command
from ..common.progress import log, progress
from .alignments import SILENCE
from .tts import PAD_S, Speaker, jobs_option

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER = 1
_CHARS_AUTO, _PHONEMES = 0, 0x100  # synth flags: the CLI's, less ENDPAUSE (its -z)
_EVENT_END, _EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` of speak_lib.h (a voice chosen by its properties)."""

    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


def _synth_events(text: str, voice: str, pitch: int, rate: int
                  ) -> tuple[int, int, list[tuple[int, int]]]:
    """(sample rate, samples, [(character index, start sample)] per word) of one synthesis
    by a freshly initialised libespeak-ng, set up as the espeak-ng CLI sets it up (voice by
    name, else by language as ``-v`` falls back to; ``-p``, ``-s``; ``-z`` flags).

    espeak-ng carries state from one synthesis to the next (a second run of the same text
    in one process comes out longer), and it cannot be re-initialised in a process, so each
    call must run in a process of its own: :func:`espeak_word_events`.
    """
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    lib = ctypes.CDLL(name)
    sample_rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0))
    if sample_rate <= 0:
        raise InputError("libespeak-ng failed to initialise (no espeak-ng-data?); "
                         "reinstall espeak-ng")
    samples, words = [0], []

    def on_audio(wav: object, n: int, events: object) -> int:
        samples[0] += max(0, int(n))
        i = 0
        while events[i].type != _EVENT_END:
            if events[i].type == _EVENT_WORD:
                words.append((events[i].text_position - 1, events[i].sample))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        spec = _Voice(None, voice.encode(), None, 0, 0, 0, 0, 0, None)
        if lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != 0:
            raise InputError(f"espeak-ng has no voice {voice!r}; list them with "
                             f"`espeak-ng --voices=en`")
    lib.espeak_SetParameter(_RATE, int(rate), 0)
    lib.espeak_SetParameter(_PITCH, int(pitch), 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_AUTO | _PHONEMES,
                     None, None)
    lib.espeak_Synchronize()
    return sample_rate, samples[0], words


def espeak_word_events(jobs: list[tuple[str, Speaker]], processes: int = 2
                       ) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """:func:`_synth_events` of each (text, speaker), each in a fresh forked process."""
    if not jobs:
        return []
    ctx = multiprocessing.get_context("fork")
    args = [(text, spk.voice, spk.pitch, spk.rate) for text, spk in jobs]
    with ctx.Pool(max(1, processes), maxtasksperchild=1) as pool:
        return pool.starmap(_synth_events, args, chunksize=1)


def resampled_length(n: int, sample_rate: int) -> int:
    """Samples of ``n`` samples at ``sample_rate`` resampled to 16 kHz (as the TTS does)."""
    return len(resample(np.zeros(n, dtype=np.float32), sample_rate, SAMPLE_RATE))


#: how the TTS may have read a transcript: with a final "." (statements), "?" (questions)
READINGS = (".", "?", "")


def intervals_from_events(text: str, sample_rate: int, n: int,
                          words: list[tuple[int, int]]) -> list[list] | None:
    """``[[start_s, end_s, label], ...]`` (silences ``SIL``) of ``text`` from the word
    events of its synthesis (``n`` samples at ``sample_rate``); None without a word."""
    starts = [(c, s) for c, s in words if 0 <= c < len(text)]
    if not starts:
        return None
    out = [[0.0, PAD_S, SILENCE]]
    for k, (c, s) in enumerate(starts):
        end_c = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        end_s = starts[k + 1][1] if k + 1 < len(starts) else n
        label = " ".join(text[c:end_c].split())
        if label:
            out.append([PAD_S + s / sample_rate, PAD_S + end_s / sample_rate, label])
    out.append([PAD_S + n / sample_rate, 2 * PAD_S + n / sample_rate, SILENCE])
    return [[round(a, 5), round(b, 5), lab] for a, b, lab in out if b > a]


def word_intervals(rows: list[tuple[str, Speaker, int | None]], processes: int = 2
                   ) -> list[list[list] | None]:
    """Word intervals of each (transcript, speaker, 16 kHz wav length or None): the first
    reading of :data:`READINGS` whose synthesis has the wav's length (any, without one);
    None when none does."""
    pad = int(round(PAD_S * SAMPLE_RATE))
    out: list[list[list] | None] = [None] * len(rows)
    todo = list(range(len(rows)))
    for ending in READINGS:
        if not todo:
            break
        events = espeak_word_events([(rows[i][0] + ending, rows[i][1]) for i in todo],
                                    processes)
        left = []
        for i, (sr, n, words) in zip(todo, events):
            want = rows[i][2]
            if want is not None and resampled_length(n, sr) + 2 * pad != want:
                left.append(i)
                continue
            out[i] = intervals_from_events(rows[i][0], sr, n, words)
        todo = left
    return out


@dataclass
class WordAlignmentsOptions:
    corpus: Path = arg(positional=True, help="corpus spoken by espeak-ng: a `spokenlm data "
                       "synth` folder (speakers.json and its manifests)")
    output: Path = arg(Path("words.jsonl"), help="labels JSONL to write ({id, intervals})")
    manifest: str = arg("all.jsonl", help="manifest of the corpus folder to align")
    jobs: int = jobs_option()


@command("data word-alignments", WordAlignmentsOptions)
def word_alignments(opts: WordAlignmentsOptions) -> Path:
    """Word intervals of an espeak-ng corpus from espeak-ng's own word events.

    No aligner is needed: the timings are those of the synthesis that made the wavs."""
    speakers_path = opts.corpus / "speakers.json"
    if not speakers_path.is_file():
        raise InputError(f"{opts.corpus}: no speakers.json; pass a folder made by `spokenlm "
                         f"data synth` (other corpora need an aligner: `spokenlm asr align`, MFA)")
    speakers = {r["id"]: Speaker(r["id"], r["voice"], int(r["pitch"]), int(r["rate"]),
                                 r.get("gender", "")) for r in read_json(speakers_path)}
    rows = read_manifest(opts.corpus / opts.manifest)
    todo, skipped = [], []
    for row in rows:
        spk = speakers.get(row.get("speaker"))
        if spk is None or not (row.get("text") or "").strip():
            skipped.append({"id": row["id"], "reason": "no speaker of speakers.json" if spk
                            is None else "no text"})
            continue
        try:
            n = audio_info(row["path"], max_duration=None).frames
        except AudioError as e:
            skipped.append({"id": row["id"], "reason": str(e)})
            continue
        todo.append((row, spk, n))
    out = []
    chunk = 64 * max(1, opts.jobs)
    with progress(total=len(todo), desc="word alignments", unit="utt") as bar:
        for k in range(0, len(todo), chunk):
            part = todo[k: k + chunk]
            found = word_intervals([(r["text"].strip(), spk, n) for r, spk, n in part],
                                   opts.jobs)
            for (row, _, _), intervals in zip(part, found):
                if intervals is None:
                    skipped.append({"id": row["id"], "reason": "espeak-ng does not reproduce "
                                    "the wav from its text (another espeak-ng version, or "
                                    "edited audio)"})
                else:
                    out.append({"id": row["id"], "intervals": intervals})
            bar.update(len(part))
    if not out:
        first = skipped[0]["reason"] if skipped else "empty manifest"
        raise InputError(f"{opts.corpus / opts.manifest}: no utterance aligned ({first})")
    write_jsonl(opts.output, out)
    if skipped:
        write_jsonl(Path(opts.output).with_suffix(".skipped.jsonl"), skipped)
    log(f"{opts.output}: word intervals of {len(out)} utterances ({len(skipped)} skipped)")
    return opts.output
