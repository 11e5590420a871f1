"""``spokenlm eval all``: every metric that the pieces of a run directory allow, one table.

Run directory layout (what ``spokenlm demo`` writes)::

    corpus/ tokenizer/ units/ lm/final vocoder/final resynth/ generate/ bench/spot_the_word

Steps, each skipped with a stated reason when what it needs is missing:

1. phone alignments of test utterances -> ``eval/alignments.jsonl``: pocketsphinx forced
   alignment (ARPAbet), or with ``--aligner`` a spokenlm CTC phoneme model (``asr train
   --unit phonemes``; the corpus's espeak phones), which aligns every utterance where
   pocketsphinx gives up on about half of the synthetic ones
2. PNMI / purity of test units against those alignments
3. phone ABX (item file made from the alignments; features, units, unit embeddings)
4. word ABX on word pairs spoken by several held-out voices (built if missing)
5. spot-the-word, acceptability and story cloze (the last two built from the grammar if missing)
6. generation metrics (units; transcripts and PPX/GenPPL with an ASR and ``--text-lm``)
7. resynthesis WER / CER and speaker similarity (``--speaker-encoder``, default GE2E)

Outputs ``<run>/eval/<metric>.json``, ``<run>/eval/all.json`` and a markdown table. A step
that fails (bad inputs, every item dropped) is reported as skipped with its reason and the
others still run; when no metric at all could be computed the command fails.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import InputError
from ..common.failures import bug_message, debug_enabled, describe_failure
from ..common.files import read_json, write_json
from ..common.options import arg, command
from ..common.paths import store_path, stored_fields
from ..common.progress import log
from .judges import asr_option, speaker_encoder_option, text_lm_option


@dataclass
class EvalAllOptions:
    run: Path = arg(positional=True, help="run directory (spokenlm demo output)")
    asr: str = asr_option()
    text_lm: Path | None = text_lm_option()
    speaker_encoder: str = speaker_encoder_option()
    aligner: Path | None = arg(None, help="CTC phoneme model dir (`spokenlm asr train --unit "
                               "phonemes`) to align with instead of pocketsphinx")
    n_align: int = arg(60, help="test utterances to align for PNMI and phone ABX")
    n_items: int = arg(100, help="items for benchmarks built here (acceptability, cloze, words)")
    voices_per_word: int = arg(3, help="voices speaking each word for word ABX")
    build: bool = arg(True, help="build missing benchmark dirs with espeak-ng")
    jobs: int = arg(2, help="espeak-ng processes")


class Skip(Exception):
    """A step cannot run; the message says why."""


def _need(*paths: Path) -> None:
    for p in paths:
        if not p.exists():
            raise Skip(f"{p} not found")


@command("eval all", EvalAllOptions)
def evaluate_all(opts: EvalAllOptions) -> dict:
    """Run every available metric on a run directory and print one table."""
    run, out = opts.run, opts.run / "eval"
    summary_path = out / "all.json"  # paths in it are relative to it (see store_path)
    out.mkdir(parents=True, exist_ok=True)
    tok, lm, corpus = run / "tokenizer", run / "lm" / "final", run / "corpus"
    results: dict[str, dict] = {}

    def step(name: str, fn: Callable[[], dict]) -> None:
        try:
            results[name] = fn()
        except Skip as e:
            results[name] = {"skipped": str(e)}
        except Exception as e:  # noqa: BLE001 - one metric's failure must not stop the others
            results[name] = {"skipped": describe_failure(e) or bug_message(e)}
            if debug_enabled():
                log(traceback.format_exc())
        if "skipped" in results[name]:
            log(f"eval all: {name} skipped: {results[name]['skipped']}")

    def align() -> dict:
        from ..asr.align import CTC_PREFIX, align_manifest

        _need(corpus / "test.jsonl")
        if opts.aligner is not None:
            _need(opts.aligner)
        aligner = "pocketsphinx" if opts.aligner is None else f"{CTC_PREFIX}{opts.aligner}"
        path = align_manifest(manifest=corpus / "test.jsonl", aligner=aligner,
                              output=out / "alignments.jsonl", max_utterances=opts.n_align)
        return {"alignments": store_path(path, summary_path),
                "aligner": "pocketsphinx" if opts.aligner is None
                else store_path(opts.aligner, summary_path)}

    def pnmi() -> dict:
        from .pnmi import evaluate_pnmi

        _need(out / "alignments.jsonl", run / "units" / "test.jsonl")
        return evaluate_pnmi(units=run / "units" / "test.jsonl", labels=out / "alignments.jsonl",
                             ignore=["SIL", "sil"], output=out / "pnmi.json")

    def abx_phone() -> dict:
        from ..audio.manifest import read_manifest
        from .abx import evaluate_abx
        from .abx_items import write_item_file

        _need(out / "alignments.jsonl", tok)
        audio = {r["id"]: r for r in read_manifest(corpus / "test.jsonl")}
        items = write_item_file(out / "alignments.jsonl", audio, out / "test.item")
        return evaluate_abx(tokenizer=tok, item_file=items, manifest=corpus / "test.jsonl",
                            representations=["features", "units", "unit_embedding"],
                            output=out / "abx_phone.json")

    def bench_dir(name: str, generate: str) -> Path:
        path = run / "bench" / name
        if not (path / "items.jsonl").exists():
            if not opts.build:
                raise Skip(f"{path} not found (and --no-build)")
            from ..data.benchmark_builders import build_benchmark

            _need(corpus / "speakers.json")
            build_benchmark(generate=generate, output=path, n_items=opts.n_items, corpus=corpus,
                            voices_per_item=_voices(corpus, opts.voices_per_word)
                            if name == "abx_words" else 1,
                            jobs=opts.jobs)
        return path

    def abx_word() -> dict:
        from .abx import evaluate_abx

        _need(tok)
        return evaluate_abx(tokenizer=tok, benchmark=bench_dir("abx_words", "spot_the_word"),
                            representations=["features", "units"], output=out / "abx_word.json")

    def likelihood(name: str, generate: str | None) -> Callable[[], dict]:
        def fn() -> dict:
            from .benchmark import evaluate_benchmark

            _need(tok, lm)
            path = run / "bench" / name if generate is None else bench_dir(name, generate)
            _need(path / "items.jsonl")
            metrics, _ = evaluate_benchmark(path, tok, lm, output=out / f"{name}.json")
            metrics["metric"] = name
            write_json(out / f"{name}.json", metrics)
            return metrics
        return fn

    def generation() -> dict:
        from .generation import evaluate_generation

        _need(run / "generate" / "generations.jsonl")
        return evaluate_generation(generations=run / "generate", lm=lm if lm.exists() else None,
                                   asr=opts.asr, text_lm=opts.text_lm,
                                   output=out / "generation.json")

    def resynthesis() -> dict:
        from .resynthesis import evaluate_resynthesis

        _need(run / "resynth" / "resynth.jsonl")
        return evaluate_resynthesis(resynth=run / "resynth", asr=opts.asr,
                                    speaker_encoder=opts.speaker_encoder,
                                    output=out / "resynthesis.json")

    step("alignment", align)
    step("pnmi", pnmi)
    step("abx_phone", abx_phone)
    step("abx_word", abx_word)
    step("spot_the_word", likelihood("spot_the_word", None))
    step("acceptability", likelihood("acceptability", "acceptability"))
    step("story_cloze", likelihood("story_cloze", "story_cloze"))
    step("generation", generation)
    step("resynthesis", resynthesis)
    table = summary_rows(results)
    summary = {"metric": "all", "run": store_path(run, summary_path), "table": table,
               "results": results, "inputs": stored_fields(opts, summary_path)}
    write_json(summary_path, summary)
    print(markdown_table(table))
    if not any("skipped" not in r for name, r in results.items() if name != "alignment"):
        raise InputError(f"{run}: no metric could be computed, every step was skipped (reasons "
                         f"in {out / 'all.json'} and the table above); pass the run directory "
                         f"of `spokenlm demo`, or run the missing stages first")
    return summary


def _get(d: dict, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d if isinstance(d, (int, float)) else None


#: (row name, result key, path inside the result)
ROWS = [
    ("PNMI", "pnmi", ("pnmi",)), ("phone purity", "pnmi", ("phone_purity",)),
    ("cluster purity", "pnmi", ("cluster_purity",)),
    ("ABX within, features (phones)", "abx_phone", ("features", "within")),
    ("ABX across, features (phones)", "abx_phone", ("features", "across")),
    ("ABX within, units (phones)", "abx_phone", ("units", "within")),
    ("ABX across, units (phones)", "abx_phone", ("units", "across")),
    ("ABX across, unit embedding (phones)", "abx_phone", ("unit_embedding", "across")),
    ("ABX across, features (words)", "abx_word", ("features", "across")),
    ("ABX across, units (words)", "abx_word", ("units", "across")),
    ("spot-the-word acc (sum)", "spot_the_word", ("accuracy_sum",)),
    ("spot-the-word acc (mean)", "spot_the_word", ("accuracy_mean",)),
    ("acceptability acc (sum)", "acceptability", ("accuracy_sum",)),
    ("story cloze acc (sum)", "story_cloze", ("accuracy_sum",)),
    ("story cloze tSC acc", "story_cloze", ("subsets", "tsc", "accuracy_sum")),
    ("story cloze sSC acc", "story_cloze", ("subsets", "ssc", "accuracy_sum")),
    ("generation unit PPL", "generation", ("unit_perplexity",)),
    ("generation unit auto-BLEU2", "generation", ("units", "auto_bleu2")),
    ("generation unit self-BLEU2", "generation", ("units", "self_bleu2")),
    ("generation unit VERT", "generation", ("units", "vert")),
    ("generation transcript VERT", "generation", ("transcripts", "vert")),
    ("generation PPX", "generation", ("ppx",)), ("generation GenPPL", "generation", ("gen_ppl",)),
    ("resynthesis WER", "resynthesis", ("wer",)), ("resynthesis CER", "resynthesis", ("cer",)),
    ("source audio WER (same ASR)", "resynthesis", ("source_wer",)),
    ("resynthesis speaker similarity", "resynthesis", ("speaker_similarity", "mean")),
]


def summary_rows(results: dict[str, dict]) -> list[dict]:
    """One row per number: {"metric", "value"} or {"metric", "skipped"}."""
    rows = []
    for name, key, path in ROWS:
        res = results.get(key, {})
        value = _get(res, *path)
        parent = _parent(res, path)
        if value is not None:
            rows.append({"metric": name, "value": value})
        elif "skipped" in res:
            rows.append({"metric": name, "skipped": res["skipped"]})
        elif isinstance(parent, dict) and f"{path[-1]}_reason" in parent:
            rows.append({"metric": name, "skipped": parent[f"{path[-1]}_reason"]})
        elif isinstance(parent, dict) and "skipped" in parent:
            rows.append({"metric": name, "skipped": parent["skipped"]})
    return rows


def _parent(d: dict, path: tuple[str, ...]) -> dict | None:
    """The dict that holds ``path``'s last key (where its ``<key>_reason`` would be)."""
    for k in path[:-1]:
        if not isinstance(d, dict):
            return None
        d = d.get(k)  # type: ignore[assignment]
    return d if isinstance(d, dict) else None


def markdown_table(rows: list[dict]) -> str:
    lines = ["| metric | value |", "| --- | --- |"]
    for r in rows:
        v = r.get("value")
        cell = (f"{v:.4f}" if isinstance(v, float) and not math.isnan(v) else str(v)
                if v is not None else f"skipped: {r['skipped']}")
        lines.append(f"| {r['metric']} | {cell} |")
    return "\n".join(lines)


def load_summary(run: Path) -> dict:
    return read_json(Path(run) / "eval" / "all.json")


def _voices(corpus: Path, wanted: int) -> int:
    """Voices per word for word ABX: as many as asked, at most the held-out test voices."""
    available = sum(1 for s in read_json(corpus / "speakers.json") if s.get("split") == "test")
    if available < wanted:
        log(f"word ABX: {available} held-out test voices, using {available} voices per word "
            f"instead of {wanted}")
    return max(2, min(wanted, available))
