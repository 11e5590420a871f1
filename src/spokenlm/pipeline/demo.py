"""``spokenlm demo``: every stage of the GSLM pipeline at laptop scale, on a corpus it makes.

Steps (each writes an artifact into the run directory, is skipped when that artifact
already exists, and can be re-run on its own with the printed CLI command):

1. ``corpus/``      synthetic multi-speaker corpus (espeak-ng), held-out test speakers
2. ``tokenizer/``   encoder + k-means
3. ``units/``       train/valid/test units (JSONL + packed memmap)
4. ``lm/``          unit LM training run (``lm/final`` is the model)
5. ``vocoder/``     fast CPU vocoder (unit -> mel -> Griffin-Lim)
6. ``resynth/``     held-out utterances resynthesised through units
7. ``generate/``    spoken continuations of held-out prompts
8. ``bench/``       spot-the-word and acceptability pairs spoken by held-out voices, scored
                    by the LM (``bench/spot_the_word.json``, ``bench/acceptability.json``)
9. ``metrics.json`` and ``report.html``
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.files import read_json, write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log


@dataclass
class DemoOptions:
    output: Path = arg(Path("runs/demo"), help="run directory (re-running resumes it)")
    n_utterances: int = arg(5000, help="utterances in the synthetic corpus")
    n_speakers: int = arg(24, help="synthetic speakers (voice x pitch x rate); more voices, less speaker overfitting")
    encoder: str = arg("mfcc", help="speech encoder for the tokenizer (mfcc, logmel, hubert, wav2vec2)")
    frame_rate: float | None = arg(None, help="frames per second of an mfcc/logmel encoder "
                                   "(its default 50 when unset; 25 halves the units)")
    cmn: bool = arg(False, help="mfcc: per-utterance cepstral mean normalisation before k-means")
    voice_pairs: int = arg(1000, help="training sentences spoken again by another training "
                           "voice; the tokenizer learns speaker-invariant features from these "
                           "pairs (a correspondence autoencoder, tokenize train --pairs) before "
                           "k-means; 0: k-means on the encoder's own features")
    n_units: int = arg(100, help="k-means clusters (unit vocabulary size)")
    unit_filter: int = arg(5, help="odd width (frames) of the tokenizer's mode filter over "
                           "frame units before dedup (5: the lever benchmarks/demo_sweep.py "
                           "found; 1: none, as GSLM)")
    unit_penalty: float = arg(0.0, help="> 0: duration-penalised units (tokenize train "
                              "--unit-penalty): each change of unit costs this many mean "
                              "frame-to-centroid distances")
    lm_size: str = arg("small", help="unit LM size preset (tiny, small, base, ...)")
    lm_steps: int = arg(500, help="unit LM training steps")
    lm_lr: float = arg(1.5e-3, help="unit LM peak learning rate (1.5e-3: the lever "
                       "benchmarks/demo_sweep.py found; lm train's 5e-4 leaves this small LM "
                       "undertrained in 500 steps)")
    lm_batch_size: int = arg(16, help="unit LM sequences per step")
    lm_seq_len: int = arg(256, help="unit LM training sequence length")
    lm_eval_every: int = arg(100, help="steps between validation losses (the report's curve)")
    twist_steps: int = arg(0, help="> 0: first train a text LM of the unit LM's size this many "
                           "steps on the corpus's training sentences and warm-start the unit LM "
                           "from it (TWIST); 0: cold start")
    vocoder_steps: int = arg(800, help="fast vocoder training steps")
    vocoder_size: str = arg("base", help="fast vocoder size preset (tiny, base)")
    n_prompts: int = arg(8, help="held-out prompts to continue")
    prompt_seconds: float = arg(1.0, help="seconds of each held-out utterance used as prompt "
                                "(synthetic utterances last ~2.5 s)")
    n_resynth: int = arg(8, help="held-out utterances to resynthesise")
    n_pairs: int = arg(200, help="pairs of each benchmark (spot-the-word, acceptability)")
    seed: int = arg(0, help="seed for every step")
    jobs: int = arg(2, help="parallel espeak-ng processes")


@command("demo", DemoOptions)
def demo(opts: DemoOptions) -> Path:
    """Run the whole pipeline on a synthetic corpus and write metrics.json + report.html."""
    from . import demo_steps

    run = opts.output
    run.mkdir(parents=True, exist_ok=True)
    write_json(run / "demo_options.json", stored_fields(opts, run / "demo_options.json"))
    timings_path = run / "timings.json"
    timings: dict[str, float] = read_json(timings_path) if timings_path.exists() else {}
    steps: list[tuple[str, Callable[[DemoOptions], object], Path]] = demo_steps.steps(opts)
    for i, (name, fn, done_marker) in enumerate(steps, 1):
        if done_marker.exists():
            log(f"step {i}/{len(steps)} {name}: already done ({done_marker}), skipping")
            continue
        log(f"step {i}/{len(steps)} {name}")
        t0 = time.perf_counter()
        fn(opts)
        timings[name] = round(time.perf_counter() - t0, 2)
        write_json(timings_path, timings)
    metrics = demo_steps.collect_metrics(opts, timings)
    write_json(run / "metrics.json", metrics)
    from .report import write_report

    write_report(run, metrics)
    log(f"done: {run / 'metrics.json'} and {run / 'report.html'}")
    return run / "metrics.json"
