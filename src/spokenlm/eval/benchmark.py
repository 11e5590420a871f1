"""Spoken likelihood benchmarks: a directory of wavs plus items that say which is right.

Layout of a spokenlm benchmark directory::

    manifest.jsonl   audio manifest: one row per wav (id, path, duration, speaker, text)
    items.jsonl      one row per item: {"id", "subset", "candidates": [audio ids],
                     "answer": index of the right candidate, "prompt": audio id or null}
    config.json      {"kind": "spot_the_word" | "acceptability" | "cloze", ...}

Spot-the-word (sWUGGY) and acceptability (sBLIMP) items are pairs with no prompt; story
cloze items have a spoken prompt and several endings, scored by the likelihood of each
ending given the prompt. An item is right when the answer's log-likelihood is the
strictly highest; a tie counts half.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import read_json, read_jsonl
from ..common.options import arg
from ..common.paths import store_path
from ..lm.model import UnitLM
from ..tokenize.encode_rows import encode_audio  # noqa: F401  (re-exported)
from ..tokenize.tokenizer import SpeechTokenizer
from .skips import Skips


@dataclass
class Benchmark:
    root: Path
    kind: str
    audio: dict[str, dict]  # audio id -> manifest row
    items: list[dict]

    @classmethod
    def load(cls, root: Path) -> Benchmark:
        root = Path(root)
        from .releases import load_release

        release = load_release(root)  # a released layout: sLM21 / ProsAudit, sSC/tSC, SALMon
        if release is not None:
            return cls(root, release.kind, release.audio, release.items)
        for name in ("manifest.jsonl", "items.jsonl"):
            if not (root / name).exists():
                raise InputError(f"{root}: no {name}; build the benchmark with "
                                 f"`spokenlm data bench build` or check the path")
        config = read_json(root / "config.json") if (root / "config.json").exists() else {}
        audio = {r["id"]: r for r in read_manifest(root / "manifest.jsonl")}
        items = read_jsonl(root / "items.jsonl")
        for item in items:
            missing = [a for a in item["candidates"] + [item.get("prompt")] if a and a not in audio]
            if missing:
                raise InputError(f"{root / 'items.jsonl'}: item {item['id']} names audio "
                                 f"{missing} absent from manifest.jsonl")
        return cls(root, config.get("kind", "pairs"), audio, items)


def score_items(bench: Benchmark, units: dict[str, list[int]], lm: UnitLM,
                batch_tokens: int | None = None, share_prefix: bool = True) -> list[dict]:
    """Log-likelihood (sum and per-token mean) of every candidate of every item.

    With a prompt, a candidate's score is the log-likelihood of its units given the prompt's.
    With ``share_prefix``, what the sequences of an item share -- the prompt and the units
    all its candidates begin with -- is run once and each candidate is scored from its KV
    cache (:func:`~spokenlm.lm.score.log_likelihood_grouped`); the numbers are those of
    scoring every prompt + candidate whole (to float rounding). Everything else goes
    through the LM in length-sorted batches of whole sequences.
    """
    from ..lm.score import log_likelihood_grouped

    usable, groups = [], []
    for i, item in enumerate(bench.items):
        needed = item["candidates"] + ([item["prompt"]] if item.get("prompt") else [])
        if any(a not in units for a in needed):
            continue
        usable.append(i)
        prompt = units[item["prompt"]] if item.get("prompt") else []
        groups.append([prompt + units[aid] for aid in item["candidates"]])
    if share_prefix:
        lls = log_likelihood_grouped(lm, groups, batch_tokens=batch_tokens)
    else:
        flat = iter(lm.log_likelihood([s for g in groups for s in g], batch_tokens=batch_tokens))
        lls = [[next(flat) for _ in g] for g in groups]
    out = []
    for i, item_lls in zip(usable, lls):
        item = bench.items[i]
        sums, means = [], []
        for aid, ll in zip(item["candidates"], item_lls):
            n_cand = len(units[aid])
            cand_lp = np.asarray(ll.per_token)[-n_cand:] if n_cand else np.zeros(0)
            sums.append(float(cand_lp.sum()))
            means.append(float(cand_lp.mean()) if n_cand else float("-inf"))
        out.append({"id": item["id"], "subset": item.get("subset", "all"),
                    "answer": item.get("answer", 0), "ll_sum": sums, "ll_mean": means})
    return out


def _correct(values: list[float], answer: int) -> float:
    best = max(values)
    winners = [j for j, v in enumerate(values) if v == best]
    return (1.0 / len(winners)) if answer in winners else 0.0


def accuracy(scored: list[dict]) -> dict:
    """Accuracy with summed and length-normalised log-likelihood, overall and per subset."""
    def acc(rows: list[dict], key: str) -> float:
        return float(np.mean([_correct(r[key], r["answer"]) for r in rows])) if rows else float("nan")

    subsets: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        subsets[r["subset"]].append(r)
    return {
        "n_items": len(scored),
        "accuracy_sum": acc(scored, "ll_sum"),
        "accuracy_mean": acc(scored, "ll_mean"),
        "subsets": {name: {"n_items": len(rows), "accuracy_sum": acc(rows, "ll_sum"),
                           "accuracy_mean": acc(rows, "ll_mean")}
                    for name, rows in sorted(subsets.items())},
    }


@dataclass(kw_only=True)
class UnitLMBenchOptions:
    """The tokenizer and unit LM a spokenlm likelihood benchmark scores, and the LM's token
    budget (``eval acceptability``, ``eval story-cloze``, ``eval spot-the-word``)."""

    tokenizer: Path = arg(help="tokenizer directory")
    lm: Path = arg(help="unit LM directory")
    batch_tokens: int | None = arg(None, help="token budget per LM forward (default: 2048 "
                                   "on CPU, 16384 on GPU)")


def evaluate_benchmark(bench_dir: Path, tokenizer_dir: Path, lm_dir: Path,
                       batch_tokens: int | None = None, output: Path | None = None,
                       share_prefix: bool = True) -> tuple[dict, list[dict]]:
    """Load, tokenize and score a benchmark; return (metrics, per-item scores). The inputs
    are recorded relative to ``output``, the metrics file to be written (see
    :func:`~spokenlm.common.paths.store_path`; absolute without one). ``share_prefix``: see
    :func:`score_items`."""
    bench = Benchmark.load(bench_dir)
    tokenizer = SpeechTokenizer.from_pretrained(tokenizer_dir)
    lm = UnitLM.from_pretrained(lm_dir)
    lm.check_tokenizer(tokenizer.n_units)
    failed: dict[str, str] = {}
    units = encode_audio(bench.audio, tokenizer, desc=f"tokenize {bench.root.name}",
                         failed=failed)
    skips = Skips(bench.kind, "items")
    for item in bench.items:
        absent = [a for a in item["candidates"] + [item.get("prompt")] if a and a not in units]
        if absent:
            skips.add("unreadable audio", failed.get(absent[0], absent[0]))
    skips.require(len(bench.items) - skips.total, bench.root)
    scored = score_items(bench, units, lm, batch_tokens, share_prefix=share_prefix)
    metrics = {"metric": bench.kind, **accuracy(scored),
               "n_items_skipped": len(bench.items) - len(scored), **skips.report(),
               "inputs": {k: str(Path(v).resolve()) if output is None else
                          store_path(v, output) for k, v in
                          (("benchmark", bench_dir), ("tokenizer", tokenizer_dir),
                           ("lm", lm_dir))}}
    return metrics, scored
