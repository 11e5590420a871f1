"""The run report: one HTML page with the numbers, plots and audio players of a demo run."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

from ..common.files import atomic_path, json_safe, read_jsonl


def unit_histogram(units_jsonl: Path, n_units: int, out_png: Path) -> Path:
    """Bar plot of unit frequencies (deduplicated) over a units JSONL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.zeros(n_units, dtype=np.int64)
    for row in read_jsonl(units_jsonl):
        counts += np.bincount(np.asarray(row["units"], dtype=np.int64), minlength=n_units)[:n_units]
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.bar(np.arange(n_units), counts, width=1.0)
    ax.set_xlabel("unit")
    ax.set_ylabel("count")
    ax.set_title(f"unit histogram ({units_jsonl.name}, {int((counts > 0).sum())}/{n_units} used)")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out_png


def _audio_rows(rows: list[dict], run: Path, key: str, label: str) -> str:
    cells = []
    for r in rows:
        path = r.get(key)
        if not path:
            continue
        rel = os.path.relpath(path, run)
        text = html.escape(r.get("text") or "")
        cells.append(f"<tr><td>{html.escape(r['id'])}</td><td>{text}</td>"
                     f"<td><audio controls preload='none' src='{html.escape(rel)}'></audio></td></tr>")
    return (f"<h2>{label}</h2><table><tr><th>id</th><th>prompt / source text</th><th>audio</th></tr>"
            + "".join(cells) + "</table>")


def write_report(run: Path, metrics: dict) -> Path:
    """Write ``run/report.html`` with metrics, the LM loss curve, a unit histogram and audio."""
    run = Path(run)
    parts = ["<html><head><meta charset='utf-8'><title>spokenlm run</title><style>"
             "body{font-family:sans-serif;max-width:1000px;margin:auto}"
             "td,th{padding:2px 8px;text-align:left}pre{background:#f4f4f4;padding:8px}"
             "</style></head><body>", f"<h1>spokenlm run: {html.escape(str(run))}</h1>"]
    parts.append("<h2>metrics</h2><pre>" + html.escape(json.dumps(json_safe(metrics), indent=2, default=str)) + "</pre>")
    loss_png = run / "lm" / "loss.png"
    if loss_png.exists():
        parts.append("<h2>unit LM loss</h2><img src='lm/loss.png' width='700'>")
    n_units = metrics.get("tokenizer", {}).get("n_units")
    if n_units and (run / "units" / "train.jsonl").exists():
        unit_histogram(run / "units" / "train.jsonl", n_units, run / "unit_histogram.png")
        parts.append("<h2>units</h2><img src='unit_histogram.png' width='800'>")
    for sub, key, label in (("generate/generations.jsonl", "path", "spoken continuations "
                             "(prompt + continuation)"),
                            ("resynth/resynth.jsonl", "path", "resynthesis (audio -> units -> audio)")):
        if (run / sub).exists():
            parts.append(_audio_rows(read_jsonl(run / sub), run, key, label))
    parts.append("</body></html>")
    with atomic_path(run / "report.html") as tmp:
        tmp.write_text("\n".join(parts))
    return run / "report.html"
