"""``spokenlm generate``: spoken prompt -> units -> unit LM continuation -> audio.

Defaults follow the slamkit/TWIST convention for generation metrics: a 3 s prompt,
temperature 0.8, top-k 25, 150 new units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.constants import SAMPLE_RATE
from ..audio.load import AudioError, load_audio, save_wav
from ..common.errors import ArtifactError
from ..common.files import write_jsonl
from ..common.options import arg, command
from ..common.progress import log, progress
from ..lm.model import UnitLM
from ..tokenize.tokenizer import SpeechTokenizer
from ..vocoder.base import load_vocoder
from .inputs import audio_inputs


@dataclass
class GenerateOptions:
    prompt: Path = arg(positional=True, help="prompt audio file, folder, or JSONL manifest")
    tokenizer: Path = arg(help="tokenizer directory")
    lm: Path = arg(help="unit LM directory (the `final/` of spokenlm lm train)")
    vocoder: Path | None = arg(None, help="vocoder directory; without it only units are written")
    output: Path = arg(Path("generate"), help="folder for continuations (wav + generations.jsonl)")
    prompt_seconds: float = arg(3.0, help="seconds of each prompt fed to the LM")
    max_new_tokens: int = arg(150, help="units to generate per continuation")
    temperature: float = arg(0.8, help="sampling temperature (0 = greedy)")
    top_k: int = arg(25, help="sample among the k most likely units (0 = off)")
    top_p: float = arg(1.0, help="nucleus sampling mass (1.0 = off)")
    stop_at_eos: bool = arg(True, help="end a continuation when the LM ends the utterance; "
                                       "--no-stop-at-eos always generates max_new_tokens")
    samples_per_prompt: int = arg(1, help="continuations per prompt")
    batch_size: int = arg(16, help="prompts decoded together")
    split: str | None = arg(None, help="with a manifest: only rows of this split")
    limit: int | None = arg(None, help="use at most this many prompts")
    seed: int = arg(0, help="sampling seed")


@command("generate", GenerateOptions)
def generate(opts: GenerateOptions) -> Path:
    """Continue spoken prompts with the unit LM and speak the continuations."""
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    lm = UnitLM.from_pretrained(opts.lm)
    if lm.n_units != tokenizer.n_units:
        raise ArtifactError(f"{opts.lm}: LM has {lm.n_units} units but tokenizer {opts.tokenizer} "
                            f"has {tokenizer.n_units}; train the LM on this tokenizer's units")
    vocoder = load_vocoder(opts.vocoder) if opts.vocoder is not None else None
    rows = audio_inputs(opts.prompt, opts.limit, opts.split)
    prompts: list[dict] = []
    for row in progress(rows, desc="encode prompts", unit="file"):
        try:
            wav = load_audio(row["path"])
        except AudioError as e:
            log(f"skipping {e}")
            continue
        wav = wav[: int(opts.prompt_seconds * SAMPLE_RATE)]
        units = tokenizer.encode(wav, dedup=True)
        for s in range(opts.samples_per_prompt):
            prompts.append({"id": f"{row['id']}" + (f"_s{s}" if opts.samples_per_prompt > 1 else ""),
                            "source": str(row["path"]), "text": row.get("text"),
                            "prompt_units": units.units.tolist(),
                            "prompt_durations": units.durations.tolist()})
    out_rows = []
    bar = progress(desc="generate", total=len(prompts), unit="prompt")
    for start in range(0, len(prompts), opts.batch_size):
        batch = prompts[start:start + opts.batch_size]
        conts = lm.generate([p["prompt_units"] for p in batch], max_new_tokens=opts.max_new_tokens,
                            temperature=opts.temperature, top_k=opts.top_k, top_p=opts.top_p,
                            seed=opts.seed + start, stop_at_eos=opts.stop_at_eos)
        for p, cont in zip(batch, conts):
            row = dict(p, units=list(map(int, cont)))
            if vocoder is not None:
                row.update(_speak(vocoder, p, cont, opts.output))
            out_rows.append(row)
        bar.update(len(batch))
    bar.close()
    write_jsonl(opts.output / "generations.jsonl", out_rows)
    log(f"wrote {len(out_rows)} continuations to {opts.output}")
    return opts.output


def _speak(vocoder, prompt: dict, cont: list[int], out_dir: Path) -> dict:
    """Speak prompt (measured durations) + continuation (predicted durations)."""
    cont_audio = vocoder.synthesize(cont, None) if cont else np.zeros(0, np.float32)
    prompt_audio = vocoder.synthesize(prompt["prompt_units"], prompt["prompt_durations"])
    full = np.concatenate([prompt_audio, cont_audio])
    path = save_wav(out_dir / f"{prompt['id']}.wav", full, vocoder.sample_rate)
    cont_path = save_wav(out_dir / f"{prompt['id']}.continuation.wav",
                         cont_audio if cont_audio.size else np.zeros(1, np.float32),
                         vocoder.sample_rate)
    return {"path": str(path), "continuation_path": str(cont_path),
            "prompt_seconds": len(prompt_audio) / vocoder.sample_rate,
            "continuation_seconds": len(cont_audio) / vocoder.sample_rate}
