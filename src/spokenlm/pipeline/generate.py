"""``spokenlm generate``: spoken prompt -> units -> unit LM continuation -> audio.

Defaults follow the slamkit/TWIST convention for generation metrics: a 3 s prompt and
the sampling defaults of :class:`~spokenlm.lm.sampling.SamplingOptions` (its fields are the
``--temperature``, ``--top-k``, ... flags).

A prompt file of any length is fine: of a recording longer than
:data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` only the prompt's seconds are decoded, and
speech longer than that is synthesised chunk by chunk and written as it comes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio.chunking import AudioStream, is_long, write_wav_blocks
from ..audio.constants import SAMPLE_RATE
from ..audio.framing import check_same_framing
from ..audio.load import AudioError, load_row, save_wav
from ..common.errors import ArtifactError
from ..common.options import arg, command, to_dict
from ..common.paths import unique_names
from ..common.progress import log, progress
from ..lm.model import UnitLM
from ..lm.sampling import SamplingOptions
from ..tokenize.tokenizer import SpeechTokenizer, Units
from ..vocoder.base import load_vocoder
from .index import RowIndex, artifact_stamp
from .inputs import audio_inputs


@dataclass
class GenerateOptions:
    prompt: Path = arg(positional=True, scanned=True,
                       help="prompt audio file, folder, or JSONL manifest")
    tokenizer: Path = arg(help="tokenizer directory")
    lm: Path = arg(help="unit LM directory (the `final/` of spokenlm lm train)")
    vocoder: Path | None = arg(None, help="vocoder directory; without it only units are written")
    output: Path = arg(Path("generate"), help="folder for continuations (wav + generations.jsonl)")
    prompt_seconds: float = arg(3.0, help="seconds of each prompt fed to the LM")
    sampling: SamplingOptions = arg(SamplingOptions(), help="how continuations are drawn")
    samples_per_prompt: int = arg(1, help="continuations per prompt")
    batch_size: int = arg(16, help="prompts decoded together")
    split: str | None = arg(None, help="with a manifest: only rows of this split")
    limit: int | None = arg(None, help="use at most this many prompts")


@command("generate", GenerateOptions)
def generate(opts: GenerateOptions) -> Path:
    """Continue spoken prompts with the unit LM and speak the continuations.

    Each continuation's row is added to ``generations.jsonl`` as soon as its wavs are
    written; a rerun with the same settings resumes (see :class:`RowIndex`). Batches are
    formed as in an uninterrupted run, so resumed continuations are the same.
    """
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    lm = UnitLM.from_pretrained(opts.lm)
    if lm.n_units != tokenizer.n_units:
        raise ArtifactError(f"{opts.lm}: LM has {lm.n_units} units but tokenizer {opts.tokenizer} "
                            f"has {tokenizer.n_units}; train the LM on this tokenizer's units")
    check_same_framing(lm.framing, f"LM {opts.lm}", tokenizer.framing,
                       f"tokenizer {opts.tokenizer}")
    vocoder = load_vocoder(opts.vocoder) if opts.vocoder is not None else None
    if vocoder is not None:
        check_same_framing(tokenizer.framing, f"tokenizer {opts.tokenizer}", vocoder.framing,
                           f"vocoder {opts.vocoder}")
    rows = audio_inputs(opts.prompt, opts.limit, opts.split)
    samples = {row["id"]: [f"{row['id']}" + (f"_s{s}" if opts.samples_per_prompt > 1 else "")
                           for s in range(opts.samples_per_prompt)] for row in rows}
    names = unique_names(sid for sids in samples.values() for sid in sids)
    settings = {k: v for k, v in to_dict(opts).items()
                if k not in ("prompt", "output", "split", "limit")}
    if opts.sampling.repetition_penalty == 1.0:  # off: runs from before the option resume
        settings.pop("repetition_penalty")
    settings.update(tokenizer=artifact_stamp(opts.tokenizer), lm=artifact_stamp(opts.lm),
                    vocoder=artifact_stamp(opts.vocoder))
    file_keys = ("path", "continuation_path") if vocoder is not None else ()
    with RowIndex(opts.output / "generations.jsonl", settings, file_keys) as index:
        prompts = _prompts(opts, tokenizer, rows, samples, names, index,
                           speak=vocoder is not None)
        bar = progress(desc="generate", total=len(prompts), unit="prompt")
        for start in range(0, len(prompts), opts.batch_size):
            batch = prompts[start:start + opts.batch_size]
            if not all(p["done"] for p in batch):  # decoded whole: samples as in a full run
                # each batch its own seed, so a resumed run draws what a whole one does
                sampling = opts.sampling.replace(seed=opts.sampling.seed + start)
                conts = lm.generate([p["prompt_units"] for p in batch], sampling)
                for p, cont in zip(batch, conts):
                    if p["done"]:
                        continue
                    row = dict(p["row"], units=list(map(int, cont)))
                    if vocoder is not None:
                        row.update(_speak(vocoder, row, cont, opts.output / p["name"]))
                    index.add(row)
            bar.update(len(batch))
        bar.close()
        done = index.finish(p["row"]["id"] for p in prompts)
    log(f"wrote {len(done)} continuations to {opts.output}")
    return opts.output


def _prompts(opts: GenerateOptions, tokenizer: SpeechTokenizer, rows: list[dict],
             samples: dict[str, list[str]], names: dict[str, str], index: RowIndex, *,
             speak: bool) -> list[dict]:
    """One entry per sample to generate: ``row`` (the index row so far), its file ``name``,
    ``prompt_units`` and whether it is ``done`` (its prompt is then not encoded again)."""
    prompts: list[dict] = []
    for row in progress(rows, desc="encode prompts", unit="file"):
        previous = [index.done(sid, source=str(row["path"]), **(
            {"path": str(opts.output / f"{names[sid]}.wav")} if speak else {}))
            for sid in samples[row["id"]]]
        if all(previous):
            prompts += [{"row": p, "name": names[p["id"]], "prompt_units": p["prompt_units"],
                         "done": True} for p in previous]
            continue
        try:
            units = _prompt_units(tokenizer, row, opts.prompt_seconds)
        except AudioError as e:
            log(f"skipping {e}")
            continue
        for sid, prev in zip(samples[row["id"]], previous):
            new = {"id": sid, "source": str(row["path"]), "text": row.get("text"),
                   "prompt_units": units.units.tolist(),
                   "prompt_durations": units.durations.tolist()}
            prompts.append({"row": prev or new, "name": names[sid],
                            "prompt_units": new["prompt_units"], "done": prev is not None})
    return prompts


def _prompt_units(tokenizer: SpeechTokenizer, row: dict, seconds: float) -> Units:
    """Units of the first ``seconds`` of a row's audio. A long recording (over
    :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S`) is never decoded whole: only its
    first ``seconds`` + 1 s (the resampler's look-ahead, so the prompt has the samples a
    whole-file read gives), streamed chunk by chunk when the prompt itself is long."""
    stream = AudioStream.from_row(row)
    n = stream.expected_samples()
    if not is_long(n):
        return tokenizer.encode(load_row(row)[: int(seconds * SAMPLE_RATE)], dedup=True)
    start = stream.start or 0.0
    if is_long(int(seconds * SAMPLE_RATE)):
        head = AudioStream(stream.path, start=start, duration=min(n / SAMPLE_RATE, seconds))
        return tokenizer.encode_stream(lambda: head, dedup=True)
    head_row = {**row, "start": start, "duration": min(n / SAMPLE_RATE, seconds + 1.0)}
    return tokenizer.encode(load_row(head_row)[: int(seconds * SAMPLE_RATE)], dedup=True)


def _speak(vocoder, prompt: dict, cont: list[int], stem: Path) -> dict:
    """Speak prompt (measured durations) + continuation (predicted durations) into
    ``<stem>.wav`` and ``<stem>.continuation.wav``; speech longer than
    :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` is synthesised chunk by chunk and
    written as it comes (:func:`_speak_long`)."""
    with torch.inference_mode():  # the continuation's predicted length
        n_cont = vocoder.frame_units(cont)[0].shape[1] if cont else 0
    if is_long(vocoder.framing.samples(sum(prompt["prompt_durations"]) + n_cont),
               vocoder.sample_rate):
        return _speak_long(vocoder, prompt, cont, stem)
    cont_audio = vocoder.synthesize(cont, None) if cont else np.zeros(0, np.float32)
    prompt_audio = vocoder.synthesize(prompt["prompt_units"], prompt["prompt_durations"])
    full = np.concatenate([prompt_audio, cont_audio])
    path = save_wav(stem.with_name(f"{stem.name}.wav"), full, vocoder.sample_rate)
    cont_path = save_wav(stem.with_name(f"{stem.name}.continuation.wav"),
                         cont_audio if cont_audio.size else np.zeros(1, np.float32),
                         vocoder.sample_rate)
    return {"path": str(path), "continuation_path": str(cont_path),
            "prompt_seconds": len(prompt_audio) / vocoder.sample_rate,
            "continuation_seconds": len(cont_audio) / vocoder.sample_rate}


def _speak_long(vocoder, prompt: dict, cont: list[int], stem: Path) -> dict:
    """:func:`_speak` in bounded memory: the continuation is written block by block, then
    the full wav from the prompt's blocks and the continuation file's samples (16-bit as
    written, so both files hold the samples one-piece synthesis would write)."""
    cont_path = stem.with_name(f"{stem.name}.continuation.wav")
    if cont:
        n_cont = vocoder.synthesize_to_wav(cont_path, cont, None)
    else:  # nothing generated: a one-sample file, as _speak writes
        write_wav_blocks(cont_path, [np.zeros(1, np.float32)], vocoder.sample_rate)
        n_cont = 0
    n_prompt = vocoder.framing.samples(sum(prompt["prompt_durations"]))

    def pieces() -> Iterator[np.ndarray]:
        yield from vocoder.synthesize_stream(prompt["prompt_units"], prompt["prompt_durations"])
        if cont:
            with sf.SoundFile(os.fsencode(cont_path)) as f:
                yield from f.blocks(1 << 18, dtype="int16")

    path = stem.with_name(f"{stem.name}.wav")
    write_wav_blocks(path, pieces(), vocoder.sample_rate)
    return {"path": str(path), "continuation_path": str(cont_path),
            "prompt_seconds": n_prompt / vocoder.sample_rate,
            "continuation_seconds": n_cont / vocoder.sample_rate}
