"""The report's metrics table: every number a run holds, one row each, grouped by stage,
with what to compare it to (chance level, the source audio, published figures).

Rows come from the artifacts themselves (corpus manifests, tokenizer and training files,
``eval`` results), so a run made step by step with the CLI gets the same table as a demo
run. :func:`metric_rows` is also what the comparison of several runs lines up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .report_collect import Result, Run, config_of, kmeans_stats, read_rows
from .report_html import short
from .report_stats import UnitStats, binomial_ci95, chance_level, unit_stats

STAGES = ("data", "tokenizer", "unit LM", "vocoder", "generation", "other results", "time")

#: published accuracies on the released benchmarks (percent), for scale: shown beside a
#: result scored on a release (``benchmark`` names it), matched by words of that name
PUBLISHED = [
    (("syntactic",), "sBLIMP: TWIST-1.3B 57.0, TWIST-7B 59.0 (Hassid et al. 2023), "
                     "Slam 58.86 (Maimon et al. 2025)"),
    (("storycloze", "tsc"), "tSC: TWIST-1.3B 70.6, TWIST-7B 74.1, Slam 82.04"),
    (("storycloze", "topic"), "tSC: TWIST-1.3B 70.6, TWIST-7B 74.1, Slam 82.04"),
    (("storycloze", "ssc"), "sSC: TWIST-1.3B 52.4, TWIST-7B 55.3, Slam 58.04"),
    (("storycloze", "spoken"), "sSC: TWIST-1.3B 52.4, TWIST-7B 55.3, Slam 58.04"),
]
#: benchmark kinds whose items are pairs (chance 1/2 even without the items file)
PAIRS = ("spot_the_word", "acceptability", "salmon")
LABELS = {"spot_the_word": "spot-the-word", "acceptability": "acceptability",
          "story_cloze": "story cloze", "cloze": "story cloze", "salmon": "SALMon",
          "prosaudit": "ProsAudit", "abx": "ABX", "pnmi": "PNMI",
          "resynthesis": "resynthesis", "generation": "generation"}


@dataclass
class MetricRow:
    stage: str
    name: str
    value: object
    reference: str = ""
    source: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.stage, self.name, self.source


#: result kinds scored as likelihood benchmarks (accuracy of preferring the right candidate)
BENCHMARKS = ("spot_the_word", "acceptability", "story_cloze", "cloze", "salmon", "prosaudit")


def is_benchmark(result: Result) -> bool:
    return isinstance(result.data.get("accuracy_sum"), (int, float)) or \
        result.metric.split(":")[0] in BENCHMARKS


def label_of(result: Result) -> str:
    base = result.metric.split(":")[0]
    return LABELS.get(base, LABELS.get(base.split("_")[0], base.replace("_", " ")))


def unit_stats_of(run: Run) -> tuple[Path, UnitStats] | None:
    """Unit usage of the LM's training units (else of any units file), computed once."""
    if "unit_stats" not in run.cache:
        path = run.units_of("train") or (run.units[0] if run.units else None)
        n_units = config_of(run.tokenizer).get("n_units")
        run.cache["unit_stats"] = (path, unit_stats(path, n_units)) if path else None
    return run.cache["unit_stats"]


def benchmark_scale(result: Result, subset: str | None = None) -> str:
    """Chance level (from the scored items), 95 % interval, and the published figure."""
    data = result.data if subset is None else result.data.get("subsets", {}).get(subset, {})
    items = result.cache_items()
    if subset is not None:
        items = [r for r in items if r.get("subset") == subset]
    chance = chance_level(items)
    if chance is None and result.metric in PAIRS:
        chance = 0.5
    parts = [f"chance {chance:.3f}" if chance is not None else "chance unknown (no items file)"]
    ci = binomial_ci95(data.get("accuracy_sum"), int(data.get("n_items") or 0))
    if ci is not None:
        parts.append(f"95 % interval {ci[0]:.3f}-{ci[1]:.3f} ({int(data['n_items'])} items)")
    published = published_figure(result) if subset is None else None
    if published:
        parts.append(f"published: {published}")
    official = (result.data.get("official") or {}).get("sum") or {}
    if subset is None and isinstance(official.get("score"), (int, float)):
        parts.append(f"as the reference tool reports it: {official['score']:.3f}")
    return "; ".join(parts)


def published_figure(result: Result) -> str | None:
    """Published accuracies of the released benchmark ``result`` was scored on (results of
    ``eval zerospeech / story-cloze / salmon`` on a release name it in ``benchmark``);
    None for spokenlm's own synthetic benchmarks, which no paper reports."""
    name = result.data.get("benchmark")
    if not isinstance(name, str):
        return None
    words = name.lower().replace(" ", "").replace("_", "")
    for keys, figure in PUBLISHED:
        if all(k in words for k in keys):
            return figure
    return None


def metric_rows(run: Run) -> list[MetricRow]:
    """Every number of the run, in :data:`STAGES` order."""
    rows: list[MetricRow] = []
    rows += _data_rows(run)
    rows += _tokenizer_rows(run)
    rows += _lm_rows(run)
    rows += _vocoder_rows(run)
    for result in run.results:
        rows += _result_rows(run, result)
    rows += _time_rows(run)
    order = {s: i for i, s in enumerate(STAGES)}
    return sorted(rows, key=lambda r: order.get(r.stage, len(STAGES)))


def _data_rows(run: Run) -> list[MetricRow]:
    rows = []
    if run.corpus is not None:
        src = run.rel(run.corpus)
        for split in ("train", "valid", "test"):
            manifest = run.corpus / f"{split}.jsonl"
            if manifest.exists():
                lines = read_rows(manifest)
                hours = sum(float(r.get("duration") or 0) for r in lines) / 3600
                rows.append(MetricRow("data", f"{split} utterances", len(lines), "", src))
                rows.append(MetricRow("data", f"{split} hours", hours, "", src))
        speakers = run.corpus / "speakers.json"
        if speakers.exists():
            from ..common.files import read_json

            rows.append(MetricRow("data", "speakers", len(read_json(speakers)), "", src))
    return rows


def _tokenizer_rows(run: Run) -> list[MetricRow]:
    tok = run.tokenizer
    if tok is None:
        return []
    cfg, src = config_of(tok), run.rel(tok)
    enc = cfg.get("encoder", {})
    name = enc.get("name", "?") if isinstance(enc, dict) else str(enc)
    extra = [f"{k} {enc[k]}" for k in ("layer", "path") if isinstance(enc, dict) and enc.get(k)]
    rows = [MetricRow("tokenizer", "encoder", " ".join([name, *extra]), "", src),
            MetricRow("tokenizer", "units (k-means k)", cfg.get("n_units"), "", src)]
    if cfg.get("frame_rate") is not None:
        rows.append(MetricRow("tokenizer", "frame rate (Hz)", cfg["frame_rate"], "", src))
    stats = kmeans_stats(tok)
    tf = cfg.get("transform")
    if isinstance(tf, dict):
        rows.append(MetricRow(
            "tokenizer", "features", f"correspondence autoencoder, {tf.get('dims')} dims",
            f"learnt from {(stats or {}).get('n_pairs', '?')} pairs of voices", src))
    if stats:
        rows.append(MetricRow("tokenizer", "k-means inertia / frame",
                              stats.get("inertia_per_frame"),
                              "lower = tighter clusters (same features only)", src))
    us = unit_stats_of(run)
    if us is not None:
        path, s = us
        k = s.n_units
        rows.append(MetricRow("tokenizer", "units used", s.used, f"of {k}", run.rel(path)))
        h = s.entropy_bits()
        rows.append(MetricRow("tokenizer", "unit entropy (bits / token)", h,
                              f"uniform over {k} units: {math.log2(max(k, 2)):.3f}", run.rel(path)))
        rate = cfg.get("frame_rate")
        if rate:
            per_s = s.tokens.sum() / (s.frames.sum() / float(rate)) if s.frames.sum() else None
            rows.append(MetricRow("tokenizer", "deduplicated units / s", per_s,
                                  f"frame rate {rate} Hz before deduplication", run.rel(path)))
    return rows


def _lm_rows(run: Run) -> list[MetricRow]:
    rows = []
    us = unit_stats_of(run)
    for t in run.training_of("unit LM"):
        m, src = t.metrics, run.rel(t.path)
        for key, label in (("parameters", "parameters"), ("steps", "steps"),
                           ("tokens", "training tokens"), ("tokens_per_s", "tokens / s"),
                           ("train_loss", "train loss (nats / token)")):
            if m.get(key) is not None:
                rows.append(MetricRow("unit LM", label, m[key], "", src))
        if m.get("valid_loss") is not None:
            ref = ""
            if us is not None:
                s = us[1]
                ref = (f"unigram entropy {s.entropy_bits() * math.log(2):.3f}, uniform "
                       f"ln {s.n_units} = {math.log(s.n_units):.3f}")
            rows.append(MetricRow("unit LM", "valid loss (nats / token)", m["valid_loss"], ref,
                                  src))
            rows.append(MetricRow("unit LM", "valid perplexity", m.get("valid_perplexity"),
                                  f"uniform: {us[1].n_units}" if us else "", src))
    return rows


def _vocoder_rows(run: Run) -> list[MetricRow]:
    rows = []
    for t in run.training_of("vocoder"):
        src = run.rel(t.path)
        cfg = config_of(t.final)
        rows.append(MetricRow("vocoder", "type / size", f"{cfg.get('type', t.options.get('type'))}"
                              f" / {t.options.get('size', '?')}", "", src))
        if t.log:
            last = t.log[-1]
            rows.append(MetricRow("vocoder", "steps", last.get("step"), "", src))
            for key in loss_keys(t.log):
                name = f"final {key}" + ("" if "loss" in key else " loss")
                rows.append(MetricRow("vocoder", name, last.get(key), "", src))
    return rows


def loss_keys(log: list[dict]) -> list[str]:
    """Keys of a training log that are losses (numbers other than step, lr, throughput)."""
    skip = {"step", "lr", "epoch", "elapsed_s", "tokens_per_s", "frames_per_s", "time_s",
            "grad_norm", "valid_loss"}
    keys: list[str] = []
    for r in log:
        for k, v in r.items():
            if k not in skip and not k.endswith("_per_s") and isinstance(v, (int, float)) \
                    and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    return keys


def _result_rows(run: Run, result: Result) -> list[MetricRow]:
    d, src = result.data, run.rel(result.path)
    if is_benchmark(result):
        label = label_of(result)
        rows = [MetricRow("unit LM", f"{label} accuracy (sum)", d.get("accuracy_sum"),
                          benchmark_scale(result), src),
                MetricRow("unit LM", f"{label} accuracy (mean)", d.get("accuracy_mean"), "", src)]
        subsets = d.get("subsets") or {}
        if label == "story cloze":
            for name, shown in (("ssc", "sSC"), ("tsc", "tSC")):
                if name in subsets:
                    rows.append(MetricRow("unit LM", f"story cloze {shown} accuracy (sum)",
                                          subsets[name].get("accuracy_sum"),
                                          benchmark_scale(result, name), src))
        return rows
    if result.metric == "pnmi":
        ref = "0 = units independent of phones, 1 = units determine them"
        return [MetricRow("tokenizer", "PNMI", d.get("pnmi"), ref, src),
                MetricRow("tokenizer", "phone purity", d.get("phone_purity"), "", src),
                MetricRow("tokenizer", "cluster purity", d.get("cluster_purity"), "", src)]
    if result.metric == "abx":
        rows = []
        mode = d.get("mode", "?")
        for rep, block in d.items():
            if isinstance(block, dict) and ("within" in block or "across" in block):
                for m in ("within", "across"):
                    if block.get(m) is not None:
                        rows.append(MetricRow("tokenizer", f"ABX {m} speaker, {rep} ({mode}s)",
                                              block[m], "chance 0.5; error, lower is better", src))
        return rows
    if result.metric == "resynthesis":
        asr = short(d.get("asr", "?"))
        rows = [MetricRow("vocoder", f"resynthesis WER (ASR: {asr})", d.get("wer"),
                          f"source audio, same ASR: {_num(d.get('source_wer'))}", src),
                MetricRow("vocoder", f"resynthesis CER (ASR: {asr})", d.get("cer"),
                          f"source audio, same ASR: {_num(d.get('source_cer'))}", src)]
        if d.get("per") is not None:
            rows.append(MetricRow("vocoder", "resynthesis PER", d["per"],
                                  f"phone ASR: {d.get('phone_asr', '?')}", src))
        sim = d.get("speaker_similarity") or {}
        if isinstance(sim, dict) and sim.get("mean") is not None:
            rows.append(MetricRow("vocoder", "speaker similarity (cosine)", sim["mean"],
                                  f"1 = same voice; encoder {short(sim.get('encoder', '?'))}",
                                  src))
        return rows
    if result.metric == "generation":
        u, t = d.get("units") or {}, d.get("transcripts") or {}
        rows = [MetricRow("generation", "continuations", d.get("n_samples"), "", src)]
        if d.get("unit_perplexity") is not None:
            k = config_of(run.tokenizer).get("n_units")
            rows.append(MetricRow("generation", "unit perplexity (reference LM)",
                                  d["unit_perplexity"], f"uniform: {k}" if k else "", src))
        for key, label in (("auto_bleu2", "auto-BLEU2"), ("self_bleu2", "self-BLEU2"),
                           ("vert", "VERT")):
            if u.get(key) is not None:
                rows.append(MetricRow("generation", f"unit {label}", u[key],
                                      "lower = more diverse" if key == "vert" else "", src))
            if isinstance(t, dict) and t.get(key) is not None:
                rows.append(MetricRow("generation", f"transcript {label} (ASR: "
                                      f"{short(d.get('asr', '?'))})", t[key], "", src))
        for key, label in (("ppx", "PPX (text LM)"), ("gen_ppl", "GenPPL (text LM)")):
            if d.get(key) is not None:
                rows.append(MetricRow("generation", label, d[key], "lower = more fluent", src))
        return rows
    return [MetricRow("other results", f"{result.metric} {k}", v, "", src)
            for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _time_rows(run: Run) -> list[MetricRow]:
    if run.timings:
        total = sum(v for v in run.timings.values() if isinstance(v, (int, float)))
        return [MetricRow("time", "demo steps, total (s)", total, "", "timings.json")]
    return []


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "not measured"
