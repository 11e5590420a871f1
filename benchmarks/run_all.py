"""Run every stage benchmark (each in its own process), append each JSON line to
``benchmarks/results.jsonl`` (with the time, the git commit and the flags), then print a
markdown table of the run.

    python benchmarks/run_all.py                 # reduced sizes (~1 min each on 2 cores)
    python benchmarks/run_all.py --full          # the issue's sizes (long on a CPU)
    python benchmarks/run_all.py --device cuda --only tokenize,scoring
    python benchmarks/run_all.py --table         # table of the last recorded run only

``make bench`` runs the first form.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("tokenize", "kmeans", "lm_train", "scoring", "generation", "vocoder", "demo",
          "scale", "scale_audio")
#: stages whose script is not bench_<name>.py, and the flags they add (the cost-curve
#: scripts print one row per curve and record nothing themselves when run from here)
SCRIPTS = {"scale": ("scale.py", ["--no-record"]),
           "scale_audio": ("scale_audio.py", ["--no-record"])}
RESULTS = HERE / "results.jsonl"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE, capture_output=True,
                               text=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def run_stage(name: str, flags: list[str]) -> list[dict]:
    script, extra = SCRIPTS.get(name, (f"bench_{name}.py", []))
    if name in SCRIPTS:  # their default is the full curves; --reduced is what make bench runs
        extra = extra + ([] if "--full" in flags else ["--reduced"])
        flags = [f for f in flags if f != "--full"]
    cmd = [sys.executable, str(HERE / script), *flags, *extra]
    print(f"== {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return [{"bench": name, "error": f"exit code {proc.returncode}; see stderr above",
                 "script_s": round(elapsed, 1)}]
    rows = [json.loads(ln) for ln in (lines if name in SCRIPTS else lines[-1:])]
    for row in rows:
        row["script_s"] = round(elapsed, 1)
    return rows


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def summary(row: dict) -> tuple[str, str, str]:
    """(spokenlm, baseline, ratio) cells of one stage."""
    s, b, r = row.get("spokenlm") or {}, row.get("baseline") or {}, row.get("ratio")
    name = row["bench"]
    if name == "tokenize":
        bf = s.get("bf16")
        return (f"{_fmt(s['x_realtime'])}x real time, {_fmt(s['fraction_of_peak_fp32_matmul'])}"
                f" of peak fp32 matmul; bf16: "
                f"{'n/a' if isinstance(bf, str) else _fmt(bf['speedup_vs_fp32']) + 'x'}",
                f"(a) {_fmt(b['a_slamkit_hf']['x_realtime'])}x, "
                f"(b) {_fmt(b['b_fairseq_textlesslib']['x_realtime'])}x real time",
                f"(a) {_fmt(r['vs_a_slamkit_hf'])}x, (b) {_fmt(r['vs_b_fairseq'])}x")
    if name == "kmeans":
        return (f"{_fmt(s['seconds'])} s, held-out inertia {_fmt(s['heldout_inertia_per_frame'], 5)}",
                f"{_fmt(b['seconds'])} s, held-out inertia {_fmt(b['heldout_inertia_per_frame'], 5)}",
                f"{_fmt(r)}x")
    if name == "lm_train":
        pad, pack = b["hf_trainer_padding"], b["hf_trainer_packing"]
        v = s.get("variants") or {}
        parts = [f"{k} {_fmt(x.get('steady_tokens_per_s') or x['tokens_per_s'])} tok/s "
                 f"(whole loop {_fmt(x['tokens_per_s'])})" for k, x in v.items()]
        return ("; ".join(parts) + f", loss {_fmt(s['heldout_loss'], 4)}" if parts else
                f"{_fmt(s['tokens_per_s'])} tok/s, loss {_fmt(s['heldout_loss'], 4)}",
                f"padding {_fmt(pad['tokens_per_s'])} tok/s (loss {_fmt(pad['heldout_loss'], 4)}); "
                f"packing {_fmt(pack['tokens_per_s'])} tok/s (loss {_fmt(pack['heldout_loss'], 4)})",
                f"{_fmt(r)}x")
    if name == "scoring":
        return (f"{_fmt(s['pairs_per_s'])} pairs/s", f"{_fmt(b['pairs_per_s'])} pairs/s",
                f"{_fmt(r)}x")
    if name == "generation":
        return (f"{_fmt(s['new_tokens_per_s'])} tok/s", f"{_fmt(b['new_tokens_per_s'])} tok/s",
                f"{_fmt(r)}x")
    if name == "vocoder":
        return (f"fast RTF {_fmt(s['fast_rtf'])}", f"HiFi-GAN V1 RTF {_fmt(b['hifigan_v1_rtf'])}",
                f"{_fmt(r)}x")
    if name.startswith("scale"):  # a cost curve: its largest point and growth exponent
        def curve(side: dict) -> str:
            last = (side.get("points") or [{}])[-1]
            at = (f"{last['items']} items" if "items" in last
                  else f"size {last.get('size')}")
            return (f"{_fmt(last.get('seconds'))} s at {at}, "
                    f"time ~ size^{_fmt(side.get('time_exponent'))}")

        if isinstance(r, dict):  # audio curves: time and peak-RSS ratios at one size
            return (curve(s), curve(b), f"time {_fmt(r.get('time'))}x, peak RSS "
                    f"{_fmt(r.get('peak_rss'))}x at size {r.get('at_size')}")
        return curve(s), curve(b), f"{_fmt(r)}x"
    if name == "demo":
        return (f"total {_fmt(s['total_s'], 4)} s (slowest: {s.get('slowest_step')})", "-", "-")
    return ("-", "-", _fmt(r))


def table(rows: list[dict]) -> str:
    out = ["| stage | spokenlm | baseline | ratio | outputs agree | bar | meets bar |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if "error" in row:
            out.append(f"| {row['bench']} | error: {row['error']} | | | | | |")
            continue
        try:
            ours, base, ratio = summary(row)
        except (KeyError, TypeError) as e:
            ours, base, ratio = f"(unreadable row: {e})", "-", _fmt(row.get("ratio"))
        out.append(f"| {row['bench']} | {ours} | {base} | {ratio} | "
                   f"{_fmt(row.get('outputs_agree'))} | {row.get('bar', '-')} | "
                   f"{_fmt(row.get('meets_bar'))} |")
    first = next((r for r in rows if "device" in r), None)
    if first:
        d = first["device"]
        out.append("")
        out.append(f"device: {d.get('name') or d.get('cpu')} ({d['type']}, {d['threads']} "
                   f"threads, bf16 native: {d['bf16_native']}); sizes: "
                   f"{'full' if first['size'].get('full') else 'reduced'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the issue's sizes")
    p.add_argument("--device", default=None, help="passed to every stage (cpu, cuda, ...)")
    p.add_argument("--threads", type=int, default=None, help="passed to every stage")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--demo-dir", default=None, help="demo run dir bench_demo reads")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--table", action="store_true",
                   help="print the table of the last run in --results and exit")
    args = p.parse_args(argv)

    if args.table:
        rows = [json.loads(ln) for ln in args.results.read_text().splitlines() if ln.strip()]
        last = rows[-1].get("run_id") if rows else None
        print(table([r for r in rows if r.get("run_id") == last]))
        return
    stages = args.only.split(",") if args.only else list(STAGES)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        p.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    flags = (["--full"] if args.full else []) + \
        (["--device", args.device] if args.device else []) + \
        (["--threads", str(args.threads)] if args.threads else [])
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    meta = {"run_id": run_id, "git_commit": git_commit(), "flags": flags}
    rows = []
    for name in stages:
        extra = ["--dir", args.demo_dir] if name == "demo" and args.demo_dir else []
        for row in run_stage(name, flags + extra):
            row = {**row, **meta}
            rows.append(row)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
