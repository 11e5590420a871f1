"""The laptop-scale Slam recipe table (issue 16): one token budget, five unit LMs, 3 seeds.

On the cached synthetic corpus (``--corpus``: train/valid/test manifests, test = held-out
voices), everything else is built once under ``--output`` and reused on a re-run (each
step resumes or is skipped when its output exists):

- tokenizer (MFCC + k-means) on the train split, units of train / valid / test;
- synthetic spoken stories (``data synth --stories``) and their units, for the mixture;
- preference pairs (``data bench build --generate preference``, train voices) for DPO;
- word alignments (``data word-alignments``) and interleaved sequences
  (``lm interleave-data``) for the speech-text row;
- a text LM (``lm pretrain-text``) on the corpus's and the stories' sentences (TWIST);
- benchmarks spoken by the held-out test voices: spot-the-word, acceptability and the
  story cloze (subsets ``ssc`` and ``tsc``).

Rows, each trained with the same ``lm train --max-tokens`` budget: cold start; TWIST warm
start; + stories in the mixture (``--mix``); + DPO (a short phase after the mixture row; its
tokens are reported beside the budget); interleaved speech-text (``--interleave``). Columns:
accuracies by summed log-likelihood and the validation loss (held-out voices), mean +- sd
over the seeds. Prints the markdown table to stderr and appends one JSON line per row to
``benchmarks/results.jsonl`` (bench ``recipe``).

    python benchmarks/recipe.py --threads 1                  # ~45 min on one core
    python benchmarks/recipe.py --full                       # bigger LM, 4x the budget
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROWS = ("cold", "twist", "mix", "dpo", "interleaved")
LABELS = {"cold": "cold start", "twist": "TWIST warm start", "mix": "+ synthetic stories (mix)",
          "dpo": "+ DPO", "interleaved": "interleaved speech-text"}
METRICS = ("spot_the_word", "acceptability", "ssc", "tsc", "valid_loss")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path,
                   default=Path("runs/sweep/corpus_u5000_k24_s0/corpus"))
    p.add_argument("--output", type=Path, default=Path("runs/recipe"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/results.jsonl"),
                   help="JSONL the rows are appended to ('' : none)")
    p.add_argument("--full", action="store_true", help="base-size LM, 4x budget, more data")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    p.add_argument("--size", default=None, help="LM preset (default: small; --full: base)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="training tokens of every row (default 400k; --full 1.6M)")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-units", type=int, default=100)
    p.add_argument("--max-frames", type=int, default=100_000, help="k-means frames")
    p.add_argument("--stories", type=int, default=None, help="spoken stories (default 600)")
    p.add_argument("--stories-weight", type=float, default=0.3, help="their mixture weight")
    p.add_argument("--pairs", type=int, default=None, help="DPO pairs (default 300)")
    p.add_argument("--dpo-steps", type=int, default=None, help="default: one epoch")
    p.add_argument("--text-steps", type=int, default=300)
    p.add_argument("--n-items", type=int, default=200, help="items of each benchmark")
    p.add_argument("--max-utterances", type=int, default=None,
                   help="train utterances used (default: all; the test uses a few)")
    p.add_argument("--jobs", type=int, default=2, help="espeak-ng processes")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    scale = 4 if args.full else 1
    args.size = args.size or ("base" if args.full else "small")
    args.max_tokens = args.max_tokens or 400_000 * scale
    args.stories = args.stories if args.stories is not None else 600 * scale
    args.pairs = args.pairs if args.pairs is not None else 300 * scale
    return args


def log(msg: str) -> None:
    print(f"[recipe] {msg}", file=sys.stderr, flush=True)


def _subset_manifest(src: Path, dst: Path, n: int | None) -> Path:
    """``src`` itself, or its first ``n`` rows in ``dst`` (written once)."""
    if n is None:
        return src
    if not dst.exists():
        from spokenlm.common.files import read_jsonl, write_jsonl

        write_jsonl(dst, read_jsonl(src)[:n])
    return dst


def build_data(args: argparse.Namespace) -> dict[str, Path]:
    """Tokenizer, units, stories, pairs, alignments and benchmarks (each made once)."""
    from spokenlm.data.benchmark_builders import build_benchmark
    from spokenlm.data.spoken_benchmark import build_spot_the_word
    from spokenlm.data.synth import synth_corpus
    from spokenlm.data.tts_words import word_alignments
    from spokenlm.tokenize.run import tokenize_manifest
    from spokenlm.tokenize.train import train_tokenizer

    out, corpus = args.output, args.corpus
    if not (corpus / "test.jsonl").exists():
        sys.exit(f"[recipe] {corpus}: no test.jsonl; make the corpus with `spokenlm data "
                 f"synth {corpus} --n-utterances 5000 --n-speakers 24`")
    out.mkdir(parents=True, exist_ok=True)
    n = args.max_utterances
    train_manifest = _subset_manifest(corpus / "train.jsonl", out / "train_subset.jsonl", n)
    p: dict[str, Path] = {"tokenizer": out / "tokenizer"}
    if not (p["tokenizer"] / "config.json").exists():
        log("tokenizer")
        train_tokenizer(manifest=train_manifest, output=p["tokenizer"], n_units=args.n_units,
                        max_frames=args.max_frames, device=args.device, overwrite=True)

    def units(manifest: Path, name: str) -> Path:
        dst = out / "units" / f"{name}.jsonl"
        if not dst.with_suffix(".meta.json").exists():
            log(f"units {name}")
            tokenize_manifest(manifest=manifest, tokenizer=p["tokenizer"], output=dst,
                              device=args.device)
        return dst

    p["train"] = units(train_manifest, "train")
    p["valid"] = units(_subset_manifest(corpus / "valid.jsonl", out / "valid_subset.jsonl",
                                        n and max(n // 10, 8)), "valid")
    stories = out / "stories"
    if not (stories / "train.jsonl").exists():
        log(f"{args.stories} spoken stories")
        synth_corpus(output=stories, stories=args.stories, n_speakers=24, seed=0,
                     jobs=args.jobs)
    p["stories"] = units(stories / "train.jsonl", "stories")
    p["pairs"] = out / "bench" / "preference"
    if not (p["pairs"] / "pairs.jsonl").exists():
        log(f"{args.pairs} preference pairs")
        build_benchmark(generate="preference", corpus=corpus, output=p["pairs"],
                        n_items=args.pairs, seed=1, jobs=args.jobs,
                        rejected=["other_story", "shuffled", "ungrammatical"])
    p["words"] = out / "words.jsonl"
    if not p["words"].exists():
        log("word alignments")
        word_alignments(corpus=corpus, output=p["words"], manifest=train_manifest.name
                        if n is None else "train.jsonl", jobs=args.jobs)
    benches = out / "bench"
    p["spot_the_word"] = benches / "spot_the_word"
    if not (p["spot_the_word"] / "items.jsonl").exists():
        build_spot_the_word(corpus=corpus, output=p["spot_the_word"], n_pairs=args.n_items,
                            seed=0, jobs=args.jobs)
    for name, seed in (("acceptability", 0), ("story_cloze", 2)):
        p[name] = benches / name
        if not (p[name] / "items.jsonl").exists():
            log(f"benchmark {name}")
            build_benchmark(generate=name, corpus=corpus, output=p[name],
                            n_items=args.n_items, seed=seed, jobs=args.jobs)
    return p


def text_lm(args: argparse.Namespace, p: dict[str, Path]) -> Path:
    """The TWIST text LM: corpus training sentences + the stories' text (word level)."""
    from spokenlm.common.files import iter_jsonl
    from spokenlm.lm.text_lm import pretrain_text_lm

    out = args.output / "text_lm"
    if (out / "final" / "config.json").exists():
        return out / "final"
    lines = [r["text"] for r in iter_jsonl(args.corpus / "train.jsonl") if r.get("text")]
    lines += [r["text"] for r in iter_jsonl(args.output / "stories" / "train.jsonl")
              if r.get("text")]
    text = args.output / "text_lm_sentences.txt"
    text.write_text("\n".join(lines) + "\n")
    log(f"text LM on {len(lines)} lines")
    return pretrain_text_lm(text=text, output=out, level="word", size=args.size,
                            seq_len=args.seq_len, batch_size=args.batch_size,
                            max_steps=args.text_steps, eval_every=args.text_steps,
                            seed=0, device=args.device)


def train_row(row: str, seed: int, args: argparse.Namespace, p: dict[str, Path],
              text: Path) -> tuple[Path, dict]:
    """Train one row's LM (resumable); (final dir, facts)."""
    from spokenlm.common.files import read_json
    from spokenlm.lm.dpo import train_dpo
    from spokenlm.lm.interleave_data import interleave_data
    from spokenlm.lm.train import train_lm

    run = args.output / "runs" / f"{row}_s{seed}"
    common = dict(size=args.size, seq_len=args.seq_len, batch_size=args.batch_size,
                  max_tokens=args.max_tokens, max_steps=10 ** 9,  # the token budget ends it
                  seed=seed, device=args.device,
                  eval_every=0, save_every=100, tokenizer=p["tokenizer"])
    facts: dict = {}
    if row == "dpo":
        base, facts = train_row("mix", seed, args, p, text)
        if not (run / "final" / "config.json").exists():
            extra = {"max_steps": args.dpo_steps} if args.dpo_steps else {}
            train_dpo(pairs=p["pairs"], lm=base, output=run, tokenizer=p["tokenizer"],
                      seed=seed, device=args.device, **extra)
        m = read_json(run / "metrics.json")
        facts = {**facts, "dpo_metrics": {k: v for k, v in m.items()
                                          if isinstance(v, (int, float))}}
        return run / "final", facts
    if row == "interleaved":
        prefix = args.output / "inter" / "train"
        if not Path(f"{prefix}.meta.json").exists():
            interleave_data(units=p["train"], alignments=p["words"], text_lm=text,
                            tokenizer=p["tokenizer"], output=prefix, seed=0)
        data = dict(units=prefix, interleave=True, init_from=text)
    else:
        data = dict(units=p["train"], valid_units=p["valid"])
        if row in ("twist", "mix"):
            data["init_from"] = text
        if row == "mix":
            data.update(mix=[f"{p['stories']}:{args.stories_weight}"],
                        units_weight=1 - args.stories_weight)
    if not (run / "final" / "config.json").exists():
        train_lm(output=run, **data, **common)
    m = read_json(run / "metrics.json")
    facts.update({k: m.get(k) for k in ("valid_loss", "tokens", "steps", "time_s",
                                        "stopped_by") if k in m})
    return run / "final", facts


def score(lm_dir: Path, benches: dict, device: str) -> dict[str, float]:
    """Summed-log-likelihood accuracy on each benchmark (story cloze by subset)."""
    from spokenlm.eval.benchmark import accuracy, score_items
    from spokenlm.lm import UnitLM
    from spokenlm.lm.interleaved_model import InterleavedLM, is_interleaved_lm_dir

    cls = InterleavedLM if is_interleaved_lm_dir(lm_dir) else UnitLM
    lm = cls.from_pretrained(lm_dir, device=device)
    out: dict[str, float] = {}
    for name, (bench, units) in benches.items():
        acc = accuracy(score_items(bench, units, lm))
        if name == "story_cloze":
            for s in ("ssc", "tsc"):
                out[s] = acc["subsets"][s]["accuracy_sum"]
        else:
            out[name] = acc["accuracy_sum"]
    return out


def mean_sd(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def table(rows: dict[str, list[dict]], args: argparse.Namespace) -> str:
    head = ["row", "spot-the-word", "acceptability", "sSC-style", "tSC-style", "valid loss",
            "tokens"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, runs in rows.items():
        cells = [LABELS[row]]
        for k in METRICS:
            m, s = mean_sd([r["metrics"].get(k) for r in runs])
            cells.append("-" if m != m else f"{m:.3f} +- {s:.3f}")
        toks = runs[0]["facts"].get("tokens")
        cells.append(str(toks) if toks is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{args.size} LM, {args.max_tokens} training tokens a row, seeds "
                 f"{args.seeds}, {args.n_items} items a benchmark (held-out voices), "
                 f"accuracy by summed log-likelihood")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import device_info

    from spokenlm.common.device import resolve_device
    from spokenlm.eval.benchmark import Benchmark, encode_audio
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    t0 = time.perf_counter()
    p = build_data(args)
    text = text_lm(args, p)
    tok = SpeechTokenizer.from_pretrained(p["tokenizer"])
    benches = {}
    for name in ("spot_the_word", "acceptability", "story_cloze"):
        bench = Benchmark.load(p[name])
        benches[name] = (bench, encode_audio(bench.audio, tok, desc=f"tokenize {name}"))
    rows: dict[str, list[dict]] = {}
    for row in args.rows:
        for seed in args.seeds:
            t1 = time.perf_counter()
            lm_dir, facts = train_row(row, seed, args, p, text)
            metrics = score(lm_dir, benches, args.device)
            metrics["valid_loss"] = facts.get("valid_loss")
            rows.setdefault(row, []).append({"seed": seed, "metrics": metrics, "facts": facts,
                                             "wall_s": time.perf_counter() - t1})
            log(f"{row} seed {seed}: {json.dumps(metrics)}")
    print(table(rows, args), file=sys.stderr, flush=True)
    device = device_info(resolve_device(args.device))
    lines = []
    for row, runs in rows.items():
        agg = {k: dict(zip(("mean", "sd"), mean_sd([r["metrics"].get(k) for r in runs])))
               for k in METRICS}
        lines.append(json.dumps({"bench": "recipe", "row": row, "label": LABELS[row],
                                 "spokenlm": agg, "seeds": runs, "device": device,
                                 "size": {"lm": args.size, "max_tokens": args.max_tokens,
                                          "n_items": args.n_items, "full": args.full,
                                          "stories": args.stories, "pairs": args.pairs},
                                 "wall_s": time.perf_counter() - t0}))
    for line in lines:
        print(line, flush=True)
    if str(args.results):
        with open(args.results, "a") as f:
            f.write("".join(line + "\n" for line in lines))  # one write
    return rows


if __name__ == "__main__":
    main()
