"""Score a released benchmark the way its reference scorer does.

Every file is scored on its own, as slamkit's ``SpeechLM.log_likelihood`` /
``UnitLM.log_likelihood`` (``slamkit/model/``, ``slamkit/utils/calculation_utils.py``)
scores it: its deduplicated units as the token sequence ``BOS u_1 ... u_n EOS`` (slamkit's
``UnitTokeniser`` template ``<S> $0 <S>``), every token after BOS predicted from the ones
before it. The file's score is the sum of those ``n + 1`` log-probabilities (``--no-eos``:
``n``, the units only), and its length-normalised score that sum over the number of scored
tokens (slamkit's ``mean_nll=True``, its default). An LM with another convention keeps it:
a released TWIST LM (offset units, no BOS) is scored on its units alone, the first one as
context, with no EOS, as SALMon's ``baselines/inference.py`` (``SLMInferenceModel``)
scores TWIST (:func:`resolve_eos`).

A pair is 1 when the right file scores strictly higher, 0.5 on a tie, 0 otherwise; each
format aggregates the decisions as its tool reports them (:attr:`Release.aggregate`). For
sLM21 / ProsAudit the per-file scores are what a submission's ``dev.txt`` holds, and the
aggregation is the ZeroSpeech tools'.

Identical unit sequences are scored once, so two files with the same units tie exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common.device import resolve_device
from ...common.files import write_json, write_jsonl
from ...common.paths import store_path
from ...common.progress import log
from ...lm.model import UnitLM
from ...tokenize.tokenizer import SpeechTokenizer
from ..benchmark import encode_audio
from ..skips import Skips, fmt
from .base import Release, decide


@dataclass(frozen=True)
class FileScore:
    """Log-likelihood of one file: ``sum`` over ``n`` scored tokens (units, then EOS)."""

    sum: float
    n: int

    @property
    def mean(self) -> float:
        """``sum / n`` (NaN for nothing scored, which compares false both ways)."""
        return self.sum / self.n if self.n else float("nan")


def resolve_eos(lm: UnitLM, eos: bool | None) -> bool:
    """Whether EOS is scored: as asked, else (None) unless ``lm`` is a released TWIST LM,
    whose sequences carry no BOS / EOS."""
    if eos is not None:
        return bool(eos)
    return getattr(lm, "release", None) != "twist"


def scoring_convention(lm: UnitLM, eos: bool) -> dict:
    """What :func:`score_units` scores with ``lm``, for the metrics JSON."""
    bos = bool(getattr(lm, "add_bos", True))
    first = "every unit after BOS" if bos else "every unit after the first (no BOS)"
    return {"bos": bos, "eos": bool(eos),
            "scored_tokens": first + (", then EOS" if eos else ""),
            "mean": "sum / number of scored tokens"}


def score_units(units: dict[str, list[int]], lm: UnitLM, *, eos: bool = True,
                batch_tokens: int | None = None) -> dict[str, FileScore]:
    """:class:`FileScore` of each audio id's units (``BOS`` + units [+ ``EOS``])."""
    distinct = list(dict.fromkeys(tuple(u) for u in units.values()))
    lls = lm.log_likelihood([list(s) for s in distinct], batch_tokens=batch_tokens,
                            add_bos=True, add_eos=eos)
    by_seq = {s: FileScore(float(ll.sum), int(ll.n)) for s, ll in zip(distinct, lls)}
    return {aid: by_seq[tuple(u)] for aid, u in units.items()}


def pair_rows(items: Sequence[dict], scores: dict[str, FileScore]) -> list[dict]:
    """Per item: both files' scores (right first) and the sum / mean decisions."""
    rows = []
    for item in items:
        right, wrong = (scores[a] for a in item["candidates"][:2])
        rows.append({"id": item["id"], "subset": item.get("subset", "all"), "answer": 0,
                     "candidates": item["candidates"][:2],
                     "ll_sum": [right.sum, wrong.sum], "ll_mean": [right.mean, wrong.mean],
                     "n_tokens": [right.n, wrong.n],
                     "decision_sum": decide(right.sum, wrong.sum),
                     "decision_mean": decide(right.mean, wrong.mean)})
    return rows


def pair_accuracy(rows: Sequence[dict]) -> dict:
    """Mean decision with summed and length-normalised scores, overall and per subset."""
    def block(rs: Sequence[dict]) -> dict:
        return {"n_items": len(rs),
                "accuracy_sum": float(np.mean([r["decision_sum"] for r in rs])),
                "accuracy_mean": float(np.mean([r["decision_mean"] for r in rs]))}

    subsets: dict[str, list[dict]] = {}
    for r in rows:
        subsets.setdefault(r["subset"], []).append(r)
    return {**block(rows), "subsets": {k: block(v) for k, v in sorted(subsets.items())}}


def evaluate_release(release: Release, tokenizer_dir: Path, lm_dir: Path, *,
                     eos: bool | None = None,
                     batch_tokens: int | None = None, device: str = "auto",
                     output: Path | None = None) -> tuple[dict, list[dict]]:
    """Tokenize and score ``release``; return (metrics, per-item rows).

    The metrics hold the pair accuracy (``accuracy_sum`` / ``accuracy_mean``, overall and per
    ``subsets``: slamkit's number) and ``official``: the reference tool's report for summed
    and for length-normalised scores. Items with unreadable audio are left out and counted.
    """
    tokenizer = SpeechTokenizer.from_pretrained(tokenizer_dir, device=device)
    lm = UnitLM.from_pretrained(lm_dir, device=resolve_device(device))
    lm.check_tokenizer(tokenizer.n_units)
    eos = resolve_eos(lm, eos)
    failed: dict[str, str] = {}
    units = encode_audio(release.audio, tokenizer, desc=f"tokenize {release.name}",
                         failed=failed)
    skips = Skips(release.kind, "items")
    kept = []
    for item in release.items:
        absent = [a for a in item["candidates"] if a not in units]
        if absent:
            skips.add("unreadable audio", failed.get(absent[0], absent[0]))
        else:
            kept.append(item)
    skips.require(len(kept), release.root)
    scores = score_units({a: units[a] for item in kept for a in item["candidates"]}, lm,
                         eos=eos, batch_tokens=batch_tokens)
    rows = pair_rows(kept, scores)
    inputs = (("benchmark", release.root), ("tokenizer", tokenizer_dir), ("lm", lm_dir))
    metrics = {"metric": release.kind, "benchmark": release.name,
               "reference": release.reference, "scoring": scoring_convention(lm, eos),
               **pair_accuracy(rows),
               "official": {key: release.aggregate(kept, [r[f"decision_{key}"] for r in rows])
                            for key in ("sum", "mean")},
               "n_items_skipped": len(release.items) - len(kept), **skips.report(),
               "inputs": {k: str(Path(v).resolve()) if output is None else store_path(v, output)
                          for k, v in inputs}}
    return metrics, rows


def headline(metrics: dict, key: str) -> float | None:
    """The reference tool's headline number of ``metrics`` for ``sum`` / ``mean`` scores."""
    value = metrics["official"][key].get("score")
    return None if value is None or not math.isfinite(value) else value


def run_release(release: Release, *, tokenizer: Path, lm: Path, output: Path,
                eos: bool | None = None,
                batch_tokens: int | None = None, device: str = "auto") -> dict:
    """:func:`evaluate_release`, then write ``output`` (metrics JSON) and
    ``<output>.items.jsonl`` (per-item scores) and log the reference tool's numbers."""
    metrics, rows = evaluate_release(release, tokenizer, lm, eos=eos, batch_tokens=batch_tokens,
                                     device=device, output=output)
    write_json(output, metrics)
    write_jsonl(Path(output).with_suffix(".items.jsonl"), rows)
    official = metrics["official"]
    log(f"{release.name} ({release.reference.split(':')[0]} aggregation): "
        f"{fmt(headline(metrics, 'sum'))} (sum), {fmt(headline(metrics, 'mean'))} (mean) over "
        f"{metrics['n_items']} pairs")
    for name, table in (("part", official["mean"].get("by_part")),
                        ("type", official["mean"].get("by_type"))):
        for key, row in (table or {}).items():
            log(f"  {name} {key}: {fmt(official['sum'][f'by_{name}'][key]['score'])} (sum), "
                f"{fmt(row['score'])} (mean), n={row['n']}")
    if "in_vocab" in official["mean"]:
        log(f"  in-vocabulary: {fmt(official['sum']['in_vocab'])} (sum), "
            f"{fmt(official['mean']['in_vocab'])} (mean); oov: "
            f"{fmt(official['sum']['oov'])} (sum), {fmt(official['mean']['oov'])} (mean)")
    return metrics
