"""``spokenlm report``: one HTML page where a run is judged, by reading and by listening.

``spokenlm report RUN [RUN ...] --output report.html`` reads what each run directory holds
(see :mod:`.report_collect`; a demo run, a run built step by step with the CLI, imported
models) and writes one page with, per run:

- metrics, grouped by stage, each beside what to compare it with (:mod:`.report_metrics`);
- every ``eval`` result found, with per-subset tables (:mod:`.report_results`);
- A/B listening of sources and resyntheses, and spoken continuations with the prompt, the
  continuation and the full audio apart (:mod:`.report_listen`);
- training curves, the unit histogram, k-means statistics, options, versions, device and
  timings (:mod:`.report_training`);

and, with several runs, their metrics side by side and their LM loss curves overlaid. A
section whose data the run lacks says what is missing and the command that makes it.

Figures are embedded in the page; audio is linked relative to the page (``--embed`` puts it
in the page too, for a file that can be sent on its own). ``spokenlm demo`` writes
``RUN/report.html`` with this command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..common.errors import InputError
from ..common.files import atomic_path
from ..common.options import arg, command
from ..common.paths import check_output
from ..common.progress import log
from .report_collect import Run, collect_run
from .report_html import GENERATOR, Page, page, section
from .report_listen import ab_section, continuations_section
from .report_results import comparison_section, evals_section, metrics_section
from .report_training import overlay_section, run_section, training_section, units_section

#: (anchor, title) of each run's sections, in page order
SECTIONS = [("metrics", "metrics"), ("evals", "evaluations"), ("ab", "A/B listening"),
            ("continuations", "continuations"), ("training", "training"),
            ("units", "units"), ("run", "run")]


@dataclass
class ReportOptions:
    runs: list[Path] = arg(positional=True, help="run directories; several are compared")
    output: Path | None = arg(None, help="HTML file to write (default: RUN/report.html for "
                              "one run; needed with several)")
    embed: bool = arg(False, help="embed the audio in the page (one portable file) instead "
                      "of linking the run's wav files relative to the page")
    max_examples: int = arg(8, help="A/B pairs and continuations shown per folder")


@command("report", ReportOptions)
def report(opts: ReportOptions) -> Path:
    """Write one HTML page with the metrics, evaluations, audio and training of runs."""
    t0 = time.perf_counter()
    runs = [Path(r) for r in opts.runs]
    if not runs:
        raise InputError("no run directory given; pass the --output folder of `spokenlm demo`"
                         " (or of your own stages)")
    for r in runs:
        if not r.is_dir():
            raise InputError(f"{r}: not a directory; pass a run directory (the --output of "
                             f"`spokenlm demo`, or the folder holding your tokenizer, LM, ...)")
    if opts.max_examples < 0:
        raise InputError(f"--max-examples {opts.max_examples}: must be >= 0")
    output = _output(opts.output, runs)
    collected = [collect_run(r, label) for r, label in zip(runs, _labels(runs))]
    html = render(collected, Page(output, embed=opts.embed), opts.max_examples)
    with atomic_path(output) as tmp:
        tmp.write_text(html, encoding="utf-8")
    log(f"report written to {output} ({time.perf_counter() - t0:.1f} s)")
    return output


def write_report(run: Path, metrics: dict | None = None) -> Path:
    """``RUN/report.html`` of one run: what ``spokenlm demo`` calls once its steps are done.
    ``metrics`` (the demo's summary) is read back from ``RUN/metrics.json`` with the rest of
    the run, so it is not needed here."""
    return report(runs=[Path(run)], output=Path(run) / "report.html")


def _output(output: Path | None, runs: list[Path]) -> Path:
    if output is None:
        if len(runs) > 1:
            raise InputError(f"{len(runs)} runs given but no --output; pass --output "
                             f"compare.html (a page outside the runs, or in one of them)")
        output = runs[0] / "report.html"
    output = Path(output)
    check_output(output, runs)
    if output.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--output {output}: not an .html file; name the page report.html")
    if output.is_dir():
        raise InputError(f"--output {output}: is a folder; pass a file name such as "
                         f"{output / 'report.html'}")
    if output.exists():
        with open(output, encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
        if first != GENERATOR:
            raise InputError(f"--output {output}: exists and is not a spokenlm report; "
                             f"choose another file name so it is not overwritten")
    return output


def _labels(runs: list[Path]) -> list[str]:
    """Short distinct names: the folder name, with its parent where names clash."""
    names = [r.resolve().name or str(r) for r in runs]
    out = []
    for r, n in zip(runs, names):
        out.append(f"{r.resolve().parent.name}/{n}" if names.count(n) > 1 else n)
    if len(set(out)) < len(out):
        out = [f"{i + 1}: {n}" for i, n in enumerate(out)]
    return out


def run_sections(run: Run, page_: Page, max_examples: int, prefix: str = "") -> list[str]:
    """The sections of one run (anchors prefixed for multi-run pages)."""
    bodies = {"metrics": lambda: metrics_section(run), "evals": lambda: evals_section(run),
              "ab": lambda: ab_section(run, page_, max_examples),
              "continuations": lambda: continuations_section(run, page_, max_examples),
              "training": lambda: training_section(run, page_), "units": lambda: units_section(run),
              "run": lambda: run_section(run)}
    title = f"{run.label}: " if prefix else ""
    return [section(f"{prefix}{anchor}", f"{title}{name}", bodies[anchor]())
            for anchor, name in SECTIONS]


def render(runs: list[Run], page_: Page, max_examples: int = 8) -> str:
    """The whole page for ``runs`` (one run: its sections; several: the comparison first)."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    if len(runs) == 1:
        run = runs[0]
        body = "".join(run_sections(run, page_, max_examples))
        return page(f"spokenlm run: {run.label}", f"{run.root.resolve()} · report written "
                    f"{stamp}", [(a, t) for a, t in SECTIONS], body)
    parts = [section("compare", "comparison: metrics side by side", comparison_section(runs)),
             section("losses", "comparison: unit LM loss curves", overlay_section(runs))]
    nav = [("compare", "comparison"), ("losses", "loss curves")]
    for i, run in enumerate(runs):
        parts += run_sections(run, page_, max_examples, prefix=f"r{i}-")
        nav.append((f"r{i}-metrics", run.label))
    subtitle = " · ".join(str(r.root.resolve()) for r in runs) + f" · written {stamp}"
    return page(f"spokenlm runs compared: {', '.join(r.label for r in runs)}", subtitle, nav,
                "".join(parts))
