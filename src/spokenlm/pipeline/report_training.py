"""The report's training, units and run sections: training curves of every run found
(unit LM: loss, learning rate, tokens/s; vocoder: its losses), the unit histogram with the
silence unit marked, k-means statistics, the run's options, versions, device and timings,
and the loss curves of several runs overlaid."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence

from .report_collect import Run, TrainingRun, config_of, kmeans_stats, load_json
from .report_html import Page, details, esc, figure, fmt, kv_table, missing, table
from .report_metrics import loss_keys, unit_stats_of
from .report_plots import bar_chart, overlaid_losses, training_curves, unit_histogram

VERSIONED = ("spokenlm", "torch", "transformers", "numpy", "matplotlib", "faiss-cpu")


def training_section(run: Run, page: Page) -> str:
    out = ["<h3>unit LM</h3>"]
    lm_runs = run.training_of("unit LM")
    for t in lm_runs:
        out.append(_lm_block(run, t, page))
    trained = {t.final for t in run.training}
    imported = [lm for lm in run.lms if lm not in trained]
    if not lm_runs:
        if imported:
            out.append(missing("unit LM training curves", f"{run.rel(imported[0])} has no "
                               "training log (imported, or trained elsewhere)"))
        else:
            out.append(missing("unit LM training", "no unit LM in this run", _lm_command(run)))
    out.append("<h3>vocoder</h3>")
    voc_runs = run.training_of("vocoder")
    for t in voc_runs:
        out.append(_vocoder_block(run, t))
    if not voc_runs:
        imported = [v for v in run.vocoders if v not in trained]
        if imported:
            out.append(missing("vocoder losses", f"{run.rel(imported[0])} (type "
                               f"{config_of(imported[0]).get('type', '?')}) has no training "
                               "log (imported, or trained elsewhere)"))
        else:
            out.append(missing("vocoder losses", "no vocoder in this run", _vocoder_command(run)))
    for t in run.training:
        if t.kind not in ("unit LM", "vocoder"):
            out.append(f"<h3>{esc(t.kind)}: {esc(run.rel(t.path))}</h3>" + _generic_block(t))
    return "".join(out)


def _lm_block(run: Run, t: TrainingRun, page: Page) -> str:
    if not t.log:
        return missing("training log", f"{run.rel(t.path / 'log.jsonl')} is empty or unreadable")
    panels = [("loss (nats / token)", ["loss", "valid_loss"]), ("learning rate", ["lr"]),
              ("tokens / s", ["tokens_per_s"])]
    png = training_curves(t.log, [p for p in panels if any(k in r for r in t.log for k in p[1])])
    m = t.metrics
    pairs = [(k, m.get(k)) for k in ("steps", "tokens", "parameters", "train_loss",
                                     "valid_loss", "valid_perplexity", "time_s", "tokens_per_s")
             if m.get(k) is not None]
    o = t.options
    pairs += [(k, o.get(k)) for k in ("size", "seq_len", "batch_size", "lr", "warmup_steps",
                                      "init_from", "device", "precision") if k in o]
    own = t.path / "loss.png"  # the plot `lm train` writes itself
    link = (f" (its own plot: <a href='{page.link(own)}'>{esc(run.rel(own))}</a>)"
            if own.exists() else "")
    return (f"<p class='note'>{esc(run.rel(t.path))}{link}</p>"
            + figure(png, "unit LM training curves", "train loss every logged step, valid "
                     "loss at each evaluation; learning rate; training throughput")
            + kv_table(pairs))


def _vocoder_block(run: Run, t: TrainingRun) -> str:
    if not t.log:
        return missing("training log", f"{run.rel(t.path / 'log.jsonl')} is empty or unreadable")
    keys = loss_keys(t.log)[:5]
    panels = [(k, [k]) for k in keys] + ([("learning rate", ["lr"])]
                                         if any("lr" in r for r in t.log) else [])
    png = training_curves(t.log, panels, width=min(3.0 * len(panels), 14.0))
    cfg = config_of(t.final)
    pairs = [("type", cfg.get("type", t.options.get("type"))), ("size", t.options.get("size")),
             ("steps", t.log[-1].get("step")), ("elapsed (s)", t.log[-1].get("elapsed_s"))]
    pairs += [(f"final {k}", t.log[-1].get(k)) for k in keys]
    return (f"<p class='note'>{esc(run.rel(t.path))}</p>"
            + figure(png, "vocoder losses", "each loss of the vocoder's log against step")
            + kv_table(pairs))


def _generic_block(t: TrainingRun) -> str:
    keys = loss_keys(t.log)[:4]
    if not keys:
        return "<p class='note'>no numeric series in its log</p>"
    return figure(training_curves(t.log, [(k, [k]) for k in keys], width=3.0 * len(keys) + 1),
                  f"{t.kind} training curves")


def units_section(run: Run) -> str:
    out = []
    us = unit_stats_of(run)
    if us is None:
        out.append(missing("unit histogram", "no units JSONL in this run", _tokenize_command(run)))
    else:
        path, s = us
        title = f"{run.rel(path)}: {s.used} of {s.n_units} units used"
        sil = (f"silence unit (red): {s.silence}, the unit that starts or ends "
               f"{100 * s.silence_share:.0f} % of the utterances" if s.silence is not None else
               f"no silence unit: no unit starts or ends most utterances (the most common "
               f"edge unit covers {100 * s.silence_share:.0f} %)")
        out.append(figure(unit_histogram(s.tokens, s.silence, title=title), "unit histogram",
                          f"tokens per unit after deduplication; {esc(sil)}"))
        out.append("<h4>unit usage</h4>" + kv_table(s.summary().items()))
    out.append("<h3>k-means</h3>")
    stats = kmeans_stats(run.tokenizer)
    if stats:
        keys = ("n_units", "dim", "n_frames", "n_files", "audio_hours", "inertia",
                "inertia_per_frame", "seconds_features", "seconds_kmeans", "seconds_total")
        out.append(kv_table((k, stats.get(k)) for k in keys if k in stats))
    elif run.tokenizer is not None:
        conv = load_json(run.tokenizer / "spokenlm_conversion.json")
        why = f"{run.rel(run.tokenizer)} has no kmeans_stats.json (imported or older tokenizer)"
        out.append(missing("k-means statistics", why))
        if isinstance(conv, dict):
            out.append(kv_table((k, v) for k, v in conv.items()
                                if isinstance(v, (str, int, float))))
    else:
        out.append(missing("k-means statistics", "no tokenizer in this run",
                           "spokenlm tokenize train <manifest.jsonl> --output "
                           f"{run.root / 'tokenizer'} --n-units 100"))
    return "".join(out)


def run_section(run: Run) -> str:
    out = ["<h3>options</h3>"]
    if run.demo_options:
        out.append("<h4>spokenlm demo</h4>" + kv_table(run.demo_options.items()))
    for t in run.training:
        if t.options:
            out.append(details(f"{t.kind} options: {run.rel(t.path / 'options.json')}",
                               kv_table(t.options.items())))
    for tok in run.tokenizers:
        out.append(details(f"tokenizer config: {run.rel(tok / 'config.json')}",
                           kv_table(_flat(config_of(tok)))))
    if not run.demo_options and not any(t.options for t in run.training):
        out.append(missing("options", "no options.json or demo_options.json in this run"))
    out.append("<h3>versions and device</h3>" + _versions(run))
    out.append("<h3>timings</h3>" + _timings(run))
    return "".join(out)


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v if not isinstance(v, list) else str(v)))
    return out


def _versions(run: Run) -> str:
    recorded = []
    for folder in [*run.tokenizers, *run.lms, *run.vocoders]:
        for name in ("config.json", "spokenlm_lm.json"):
            data = load_json(folder / name)
            if isinstance(data, dict):
                for key in ("spokenlm_version", "transformers_version", "torch_version"):
                    if key in data:
                        recorded.append((run.rel(folder / name), key, data[key]))
    opts = [(run.rel(t.path), t.options.get("device"), t.options.get("precision"))
            for t in run.training if "device" in t.options]
    out = ""
    if recorded:
        out += "<h4>recorded in the run's artifacts</h4>" + table(
            ["artifact", "field", "version"], recorded)
    else:
        out += missing("versions of the run", "no artifact records the versions it was made "
                       "with")
    if opts:
        out += "<h4>device asked for by each training run</h4>" + table(
            ["run", "device", "precision"], opts)
    here = [(name, _version(name)) for name in VERSIONED]
    here += [("python", platform.python_version()), ("platform", platform.platform()),
             ("CPU cores", os.cpu_count()), ("accelerator", _accelerator())]
    return out + "<h4>environment writing this report</h4>" + kv_table(here)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _accelerator() -> str:
    """The GPUs this machine has: from torch when it is loaded, else from ``nvidia-smi``
    (importing torch only to ask would double the report's time)."""
    torch = sys.modules.get("torch")
    if torch is None:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return "no NVIDIA GPU (no nvidia-smi)"
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return "nvidia-smi failed"
        return "; ".join(out.stdout.split("\n")[:4]).strip("; ") or "no NVIDIA GPU"
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    mps = getattr(torch.backends, "mps", None)
    return "MPS" if mps is not None and mps.is_available() else "none (CPU only)"


def _timings(run: Run) -> str:
    if run.timings:
        values = {k: float(v) for k, v in run.timings.items() if isinstance(v, (int, float))}
        total = sum(values.values())
        return figure(bar_chart(values, xlabel="seconds"), "per-step timings",
                      f"wall time of each demo step (timings.json), total {fmt(total)} s")
    derived = {}
    stats = kmeans_stats(run.tokenizer)
    if stats and isinstance(stats.get("seconds_total"), (int, float)):
        derived["tokenizer (features + k-means)"] = float(stats["seconds_total"])
    for t in run.training:
        secs = t.metrics.get("time_s") or (t.log[-1].get("elapsed_s") if t.log else None)
        if isinstance(secs, (int, float)):
            derived[f"{t.kind} ({run.rel(t.path)})"] = float(secs)
    note = missing("per-step timings", "no timings.json (written by `spokenlm demo`)")
    if not derived:
        return note
    return note + figure(bar_chart(derived, xlabel="seconds"), "timings from artifacts",
                         "training times recorded by each stage's own files")


def overlay_section(runs: Sequence[Run]) -> str:
    """Unit LM loss curves of several runs on one plot."""
    curves = [(f"{run.label}" + (f" {run.rel(t.path)}" if len(run.training_of('unit LM')) > 1
                                 else ""), t.log)
              for run in runs for t in run.training_of("unit LM") if t.log]
    if not curves:
        return missing("overlaid loss curves", "none of these runs has a unit LM training log")
    return figure(overlaid_losses(curves, ["loss", "valid_loss"]), "overlaid unit LM losses",
                  "train (solid) and valid (dashed, dots) loss of each run")


def _lm_command(run: Run) -> str:
    train = run.units_of("train") or "<units/train.jsonl>"
    valid = run.units_of("valid")
    return (f"spokenlm lm train {train}" + (f" --valid-units {valid}" if valid else "")
            + f" --output {run.root / 'lm'}")


def _vocoder_command(run: Run) -> str:
    train = run.units_of("train") or "<units/train.jsonl>"
    return f"spokenlm vocoder train {train} --output {run.root / 'vocoder'} --type fast"


def _tokenize_command(run: Run) -> str:
    manifest = run.corpus / "train.jsonl" if run.corpus else "<manifest.jsonl>"
    tok = run.tokenizer or "<tokenizer dir>"
    return (f"spokenlm tokenize run {manifest} --tokenizer {tok} "
            f"--output {run.root / 'units' / 'train.jsonl'}")
