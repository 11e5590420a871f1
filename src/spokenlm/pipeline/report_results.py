"""The report's numeric sections: the metrics table grouped by stage, every ``eval``
result found in the run with its per-subset tables, and the side-by-side table of
several runs."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from .report_collect import Result, Run
from .report_html import esc, fmt, missing, table
from .report_metrics import (STAGES, MetricRow, benchmark_scale, is_benchmark, label_of,
                             metric_rows)

#: what ``eval all`` (or another command) produces, by result kind: (title, kinds, step
#: name in eval/all.json)
EXPECTED = [
    ("ABX", ("abx",), "abx_phone"), ("PNMI", ("pnmi",), "pnmi"),
    ("spot-the-word", ("spot_the_word",), "spot_the_word"),
    ("acceptability", ("acceptability",), "acceptability"),
    ("story cloze", ("story_cloze", "cloze"), "story_cloze"),
    ("SALMon", ("salmon",), None),
    ("generation", ("generation",), "generation"),
    ("resynthesis WER / CER, speaker similarity", ("resynthesis",), "resynthesis"),
]


def _metrics_table(rows: Sequence[MetricRow]) -> str:
    body, stage = [], None
    for r in rows:
        if r.stage != stage:
            stage = r.stage
            body.append(f"<tr class='stage'><td colspan='4'>{esc(stage)}</td></tr>")
        body.append(f"<tr><td>{esc(r.name)}</td><td class='num'>{esc(fmt(r.value))}</td>"
                    f"<td>{esc(r.reference)}</td><td class='note'>{esc(r.source)}</td></tr>")
    return ("<table><thead><tr><th>metric</th><th>value</th><th>compare with</th>"
            "<th>from</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>")


def metrics_section(run: Run) -> str:
    rows = metric_rows(run)
    if not rows:
        return missing("metrics", f"{run.root} holds no artifact spokenlm recognises",
                       f"spokenlm demo --output {run.root}")
    note = ("<p class='note'>Every number found in the run, grouped by stage. Benchmark "
            "accuracies: chance from the scored items and the 95 % interval of the accuracy; "
            "results scored on a released benchmark also show published figures.</p>")
    return note + _metrics_table(rows)


def evals_section(run: Run) -> str:
    out, absent = [], []
    steps = (run.eval_all.data.get("results") or {}) if run.eval_all else {}
    shown: set[int] = set()
    for title, kinds, step in EXPECTED:
        found = [r for r in run.results if r.metric in kinds or (
            "salmon" in kinds and r.metric.startswith("salmon"))]
        for result in found:
            out.append(result_block(run, result))
            shown.add(id(result))
        if not found:
            reason = (steps.get(step) or {}).get("skipped") if step else None
            why = f"`eval all` skipped it: {reason}" if reason else "no result file in the run"
            absent.append((title, why, _eval_command(run, title)))
    for result in run.results:
        if id(result) not in shown:
            out.append(result_block(run, result))
    if absent:
        rows = "".join(f"<tr><td>{esc(t)}</td><td>{esc(w)}</td><td><code>{esc(c)}</code></td>"
                       f"</tr>" for t, w, c in absent)
        out.append("<h3>not evaluated</h3><div class='missing'><table><thead><tr><th>metric"
                   "</th><th>why</th><th>command that produces it</th></tr></thead><tbody>"
                   f"{rows}</tbody></table></div>")
    return "".join(out)


def _eval_command(run: Run, title: str) -> str:
    tok, lm = run.tokenizer or "<tokenizer>", run.lm or "<unit LM>"
    if title == "SALMon":
        if importlib.util.find_spec("spokenlm.eval.salmon") is None:
            return "(spokenlm has no SALMon scorer in this version)"
        return (f"spokenlm eval salmon <SALMon folder> --tokenizer {tok} --lm {lm} "
                f"--output {run.root / 'eval' / 'salmon.json'}")
    return f"spokenlm eval all {run.root}"


def result_block(run: Run, result: Result) -> str:
    """One ``eval`` result: its headline numbers and its per-subset table."""
    d = result.data
    head = f"<h3>{esc(label_of(result))} <span class='note'>{esc(run.rel(result.path))}</span></h3>"
    if is_benchmark(result):
        return head + _benchmark_block(result)
    if result.metric == "abx":
        reps = [(k, v) for k, v in d.items() if isinstance(v, dict) and "within" in v]
        body = table(["representation", "distance", "within speaker", "across speaker"],
                     [(k, v.get("distance"), v.get("within"), v.get("across")) for k, v in reps])
        return head + (f"<p class='note'>{esc(d.get('mode'))} ABX error over "
                       f"{fmt(d.get('n_items'))} tokens (chance 0.5, lower is better)</p>" + body
                       + _skipped(d))
    if result.metric == "pnmi":
        keys = ("pnmi", "phone_purity", "cluster_purity", "mutual_information_nats",
                "phone_entropy_nats", "n_frames", "n_phones", "n_units_used", "n_utterances")
        return head + table(["", ""], [(k, d.get(k)) for k in keys if k in d], cls="kv") \
            + _skipped(d)
    if result.metric == "resynthesis":
        return head + _resynthesis_block(d)
    if result.metric == "generation":
        return head + _generation_block(d)
    flat = [(k, v) for k, v in d.items() if isinstance(v, (int, float, str)) and k != "metric"]
    return head + table(["", ""], flat, cls="kv")


def _benchmark_block(result: Result) -> str:
    d = result.data
    rows = [("all", d.get("n_items"), d.get("accuracy_sum"), d.get("accuracy_mean"),
             benchmark_scale(result))]
    for name, sub in sorted((d.get("subsets") or {}).items()):
        if isinstance(sub, dict):
            rows.append((name, sub.get("n_items"), sub.get("accuracy_sum"),
                         sub.get("accuracy_mean"), benchmark_scale(result, name)))
    inputs = d.get("inputs") or {}
    src = f"<p class='note'>benchmark {esc(inputs.get('benchmark', '?'))}, LM " \
          f"{esc(inputs.get('lm', '?'))}; sum / mean: summed or length-normalised " \
          f"log-likelihood</p>"
    return src + table(["subset", "items", "accuracy (sum)", "accuracy (mean)",
                        "compare with"], rows) + _skipped(d)


def _resynthesis_block(d: dict) -> str:
    pairs = [("ASR", d.get("asr")), ("utterances", d.get("n_utterances")),
             ("WER", d.get("wer")), ("CER", d.get("cer")),
             ("source audio WER (same ASR)", d.get("source_wer")),
             ("source audio CER (same ASR)", d.get("source_cer"))]
    if "per" in d:
        pairs += [("PER", d.get("per")), ("phone ASR", d.get("phone_asr"))]
    out = table(["", ""], pairs, cls="kv")
    sim = d.get("speaker_similarity") or {}
    if isinstance(sim, dict) and sim.get("mean") is not None:
        out += "<h4>speaker similarity (source vs resynthesis, cosine)</h4>" + table(
            ["", ""], [("encoder", sim.get("encoder")), ("mean", sim.get("mean")),
                       ("std", sim.get("std")), ("pairs", sim.get("n"))], cls="kv")
    else:
        out += missing("speaker similarity", sim.get("skipped", "not measured"),
                       "spokenlm eval resynthesis RESYNTH_DIR --speaker-encoder "
                       "<x-vector model dir> --output eval/resynthesis.json")
    return out + _skipped(d)


def _generation_block(d: dict) -> str:
    u, t = d.get("units") or {}, d.get("transcripts") or {}
    keys = [k for k in ("auto_bleu2", "self_bleu2", "vert", "distinct_1", "distinct_2",
                        "distinct_3", "entropy_bits", "entropy_normalised", "mean_length")
            if k in u or k in t]
    out = table(["", "units", f"transcripts (ASR {d.get('asr', '-')})"],
                [(k, u.get(k), t.get(k) if isinstance(t, dict) else None) for k in keys])
    extra = [(k, d.get(k)) for k in ("n_samples", "unit_perplexity", "ppx", "gen_ppl") if k in d]
    out += table(["", ""], extra, cls="kv")
    if isinstance(t, dict) and t.get("skipped"):
        out += missing("transcript metrics", t["skipped"])
    elif not t:
        out += missing("transcript metrics", "generation was evaluated without an ASR",
                       "spokenlm eval generation GENERATE_DIR --asr pocketsphinx --output "
                       "eval/generation.json")
    return out + _skipped(d)


def _skipped(d: dict) -> str:
    """The items a metric left out and why (``n_skipped`` / ``skipped_reasons``)."""
    n = d.get("n_skipped") or 0
    reasons = d.get("skipped_reasons") or {}
    if not n or not isinstance(reasons, dict):
        return ""
    parts = [f"{r} ({v.get('count')}, e.g. {v.get('first')})" if isinstance(v, dict) else str(r)
             for r, v in reasons.items()]
    return f"<p class='note'>left out: {esc(fmt(n))}: {esc('; '.join(parts))}</p>"


def _keyed(rows: Sequence[MetricRow]) -> dict[tuple[str, str, int], MetricRow]:
    """Rows by (stage, name, occurrence): the n-th row of a name in one run lines up with
    the n-th of the same name in another, whatever its folders are called."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for r in rows:
        n = seen.get((r.stage, r.name), 0)
        seen[(r.stage, r.name)] = n + 1
        out[(r.stage, r.name, n)] = r
    return out


def comparison_section(runs: Sequence[Run]) -> str:
    """The metrics of several runs side by side (rows in the first run's order)."""
    per_run = [_keyed(metric_rows(run)) for run in runs]
    keys: list[tuple[str, str, int]] = []
    for rows in per_run:
        keys += [k for k in rows if k not in keys]
    order = {s: i for i, s in enumerate(STAGES)}
    keys.sort(key=lambda k: order.get(k[0], len(STAGES)))
    head = "".join(f"<th>{esc(run.label)}</th>" for run in runs)
    body, stage = [], None
    for key in keys:
        if key[0] != stage:
            stage = key[0]
            body.append(f"<tr class='stage'><td colspan='{len(runs) + 2}'>{esc(stage)}</td></tr>")
        first = next(rows[key] for rows in per_run if key in rows)
        cells = "".join(f"<td class='num' title='{esc(rows[key].source) if key in rows else ''}'>"
                        f"{esc(fmt(rows[key].value)) if key in rows else '-'}</td>"
                        for rows in per_run)
        body.append(f"<tr><td>{esc(key[1])} <span class='note'>{esc(first.source)}</span></td>"
                    f"{cells}<td class='note'>{esc(first.reference)}</td></tr>")
    return ("<p class='note'>One column per run; a dash where a run lacks the number. The "
            "reference column is the first run's.</p>"
            f"<table><thead><tr><th>metric</th>{head}<th>compare with</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
