"""The demo's steps as plain library calls, and the metrics gathered from their artifacts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio.framing import Framing
from ..common.files import read_json, read_jsonl
from .demo import DemoOptions

Step = tuple[str, Callable[[DemoOptions], object], Path]


class Paths:
    """Where each step of a demo run writes."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.corpus = run / "corpus"
        self.tokenizer = run / "tokenizer"
        self.units = run / "units"
        self.text_lm_run = run / "text_lm"
        self.text_lm = run / "text_lm" / "final"
        self.lm_run = run / "lm"
        self.lm = run / "lm" / "final"
        self.vocoder_run = run / "vocoder"
        self.vocoder = run / "vocoder" / "final"
        self.resynth = run / "resynth"
        self.generate = run / "generate"
        self.bench = run / "bench" / "spot_the_word"
        self.bench_metrics = run / "bench" / "spot_the_word.json"
        self.acceptability = run / "bench" / "acceptability"
        self.acceptability_metrics = run / "bench" / "acceptability.json"

    def units_of(self, split: str) -> Path:
        return self.units / f"{split}.jsonl"


def steps(opts: DemoOptions) -> list[Step]:
    p = Paths(opts.output)
    text_lm: list[Step] = ([("text_lm", lambda o: _text_lm(o, p), p.text_lm / "config.json")]
                           if opts.twist_steps > 0 else [])
    return [
        ("corpus", lambda o: _corpus(o, p),
         p.corpus / ("pairs.jsonl" if opts.voice_pairs else "test.jsonl")),
        ("tokenizer", lambda o: _tokenizer(o, p), p.tokenizer / "config.json"),
        ("tokenize", lambda o: _tokenize(o, p), p.units_of("test")),
        *text_lm,
        ("lm", lambda o: _lm(o, p), p.lm / "spokenlm_lm.json"),
        ("vocoder", lambda o: _vocoder(o, p), p.vocoder / "config.json"),
        ("resynth", lambda o: _resynth(o, p), p.resynth / "resynth.jsonl"),
        ("generate", lambda o: _generate(o, p), p.generate / "generations.jsonl"),
        ("spot_the_word_build", lambda o: _bench(o, p), p.bench / "items.jsonl"),
        ("spot_the_word_eval", lambda o: _bench_eval(o, p), p.bench_metrics),
        ("acceptability_build", lambda o: _acceptability(o, p), p.acceptability / "items.jsonl"),
        ("acceptability_eval", lambda o: _acceptability_eval(o, p), p.acceptability_metrics),
    ]


def _corpus(o: DemoOptions, p: Paths) -> None:
    from ..data.synth import synth_corpus

    synth_corpus(output=p.corpus, n_utterances=o.n_utterances, n_speakers=o.n_speakers,
                 seed=o.seed, jobs=o.jobs, pairs=o.voice_pairs)


def _tokenizer(o: DemoOptions, p: Paths) -> None:
    from ..tokenize.train import train_tokenizer

    train_tokenizer(manifest=p.corpus / "train.jsonl", output=p.tokenizer, encoder=o.encoder,
                    n_units=o.n_units, seed=o.seed, frame_rate=o.frame_rate,
                    unit_filter=o.unit_filter, unit_penalty=o.unit_penalty,
                    encoder_option=["cmn=true"] if o.cmn else [],
                    pairs=p.corpus / "pairs.jsonl" if o.voice_pairs else None)


def _tokenize(o: DemoOptions, p: Paths) -> None:
    from ..tokenize.run import tokenize_manifest

    for split in ("train", "valid", "test"):
        tokenize_manifest(manifest=p.corpus / f"{split}.jsonl", tokenizer=p.tokenizer,
                          output=p.units_of(split))


def _text_lm(o: DemoOptions, p: Paths) -> None:
    from ..lm.text_lm import pretrain_text_lm

    pretrain_text_lm(text=p.corpus, output=p.text_lm_run, size=o.lm_size,
                     max_steps=o.twist_steps, eval_every=o.twist_steps,
                     save_every=o.twist_steps, batch_size=o.lm_batch_size,
                     seq_len=o.lm_seq_len, seed=o.seed)


def _lm(o: DemoOptions, p: Paths) -> None:
    from ..lm.train import train_lm

    train_lm(units=p.units_of("train"), valid_units=p.units_of("valid"), output=p.lm_run,
             size=o.lm_size, max_steps=o.lm_steps, batch_size=o.lm_batch_size,
             seq_len=o.lm_seq_len, lr=o.lm_lr, seed=o.seed, tokenizer=p.tokenizer,
             eval_every=o.lm_eval_every,
             init_from=p.text_lm if o.twist_steps > 0 else None)


def _vocoder(o: DemoOptions, p: Paths) -> None:
    from ..vocoder.train import train_vocoder

    train_vocoder(units=p.units_of("train"), output=p.vocoder_run, type="fast",
                  size=o.vocoder_size, max_steps=o.vocoder_steps, seed=o.seed)


def _resynth(o: DemoOptions, p: Paths) -> None:
    from .resynth import resynth

    resynth(input=p.corpus / "test.jsonl", tokenizer=p.tokenizer, vocoder=p.vocoder,
            output=p.resynth, limit=o.n_resynth)


def _generate(o: DemoOptions, p: Paths) -> None:
    from ..lm.sampling import SamplingOptions
    from .generate import generate

    generate(prompt=p.corpus / "test.jsonl", tokenizer=p.tokenizer, lm=p.lm, vocoder=p.vocoder,
             output=p.generate, limit=o.n_prompts, sampling=SamplingOptions(seed=o.seed),
             prompt_seconds=o.prompt_seconds)


def _bench(o: DemoOptions, p: Paths) -> None:
    from ..data.spoken_benchmark import build_spot_the_word

    build_spot_the_word(corpus=p.corpus, output=p.bench, n_pairs=o.n_pairs, seed=o.seed,
                        jobs=o.jobs)


def _bench_eval(o: DemoOptions, p: Paths) -> None:
    from ..eval.spot_the_word import spot_the_word

    spot_the_word(benchmark=p.bench, tokenizer=p.tokenizer, lm=p.lm, output=p.bench_metrics)


def _acceptability(o: DemoOptions, p: Paths) -> None:
    from ..data.benchmark_builders import build_benchmark

    build_benchmark(generate="acceptability", corpus=p.corpus, output=p.acceptability,
                    n_items=o.n_pairs, seed=o.seed, jobs=o.jobs)


def _acceptability_eval(o: DemoOptions, p: Paths) -> None:
    from ..eval.acceptability import evaluate_acceptability

    evaluate_acceptability(benchmark=p.acceptability, tokenizer=p.tokenizer, lm=p.lm,
                           output=p.acceptability_metrics)


def collect_metrics(o: DemoOptions, timings: dict[str, float]) -> dict:
    """The numbers a person checks first, read back from each step's artifacts."""
    p = Paths(o.output)
    lm_metrics = read_json(p.lm_run / "metrics.json")
    train_units = read_jsonl(p.units_of("train"))
    n_tokens = sum(len(r["units"]) for r in train_units)
    n_frames = sum(r["n_frames"] for r in train_units)
    used = np.unique(np.concatenate([np.asarray(r["units"]) for r in train_units]))
    gens = read_jsonl(p.generate / "generations.jsonl")
    resyn = read_jsonl(p.resynth / "resynth.jsonl")
    swuggy = read_json(p.bench_metrics)
    blimp = read_json(p.acceptability_metrics)
    tok_cfg = read_json(p.tokenizer / "config.json")
    rate = Framing.from_json(tok_cfg, str(p.tokenizer)).frame_rate
    return {
        "corpus": {"utterances": {s: len(read_jsonl(p.corpus / f"{s}.jsonl"))
                                  for s in ("train", "valid", "test")},
                   "train_hours": n_frames / rate / 3600},
        "tokenizer": {"encoder": tok_cfg["encoder"]["name"], "n_units": tok_cfg["n_units"],
                      "units_used": int(used.size), "frame_rate_hz": rate,
                      "dedup_units_per_second": n_tokens / (n_frames / rate),
                      "train_tokens": n_tokens},
        "lm": {k: lm_metrics.get(k) for k in ("valid_loss", "valid_perplexity", "train_loss",
                                              "steps", "tokens", "parameters")},
        "spot_the_word": {k: swuggy[k] for k in ("accuracy_sum", "accuracy_mean", "n_items")},
        "acceptability": {k: blimp[k] for k in ("accuracy_sum", "accuracy_mean", "n_items")},
        "generation": {"n": len(gens),
                       "continuation_seconds_mean": float(np.mean(
                           [g.get("continuation_seconds", 0.0) for g in gens])) if gens else 0.0,
                       "new_units_mean": float(np.mean([len(g["units"]) for g in gens]))
                       if gens else 0.0},
        "resynthesis": {"n": len(resyn)},
        "timings_s": timings,
        "total_s": round(sum(timings.values()), 1),
    }
