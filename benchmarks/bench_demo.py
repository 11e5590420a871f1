"""The demo end to end: wall seconds of every step of ``spokenlm demo`` and their total,
against the 15-minute bar on 2 CPU cores.

Reads ``<dir>/timings.json`` (written by ``spokenlm demo``: seconds per step, only for the
steps that ran in that directory; a resumed run keeps the earlier steps' times) and
``<dir>/demo_options.json``; or, with ``--run`` (or when ``--dir`` has no timings), runs
``spokenlm demo`` into a temporary directory first, in a subprocess, and also reports the
wall time of the whole command. Without ``--full`` that run uses a reduced configuration
(``REDUCED``: a few hundred utterances, a few steps) that only proves the pipeline runs;
the bar applies to the default options (``--full``, or a read run dir whose options are the
defaults), and ``meets_bar`` is null otherwise. There is no baseline (no other toolkit runs
this pipeline end to end).

    python benchmarks/bench_demo.py [--dir runs/demo] [--run] [--full] [--threads N]
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, setup  # noqa: E402

BAR_S = 15 * 60
#: options of the reduced run (seconds, not minutes; proves every step runs)
REDUCED = {"n_utterances": 240, "n_speakers": 4, "lm_steps": 10, "lm_batch_size": 4,
           "lm_seq_len": 64, "vocoder_steps": 10, "vocoder_size": "tiny", "n_prompts": 2,
           "n_resynth": 2, "n_pairs": 20}


def run_demo(out: Path, options: dict, threads: int) -> float:
    cmd = [str(Path(sys.executable).with_name("spokenlm")), "demo", "--output", str(out)]
    for k, v in options.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    log("running: " + " ".join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=sys.stderr)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--dir", type=Path, default=Path("runs/demo"),
                   help="demo run dir to read (when it has timings.json and --run is not set)")
    p.add_argument("--run", action="store_true", help="run `spokenlm demo` into a temp dir")
    p.add_argument("--keep", type=Path, default=None, help="with --run: run into this dir")
    args = p.parse_args(argv)
    device = setup(args)

    from spokenlm.common.files import read_json
    from spokenlm.pipeline.demo import DemoOptions

    defaults = {k: (str(v) if isinstance(v, Path) else v)
                for k, v in dataclasses.asdict(DemoOptions()).items()}
    wall, tmp = None, None
    run_dir = args.dir
    if args.run or not (args.dir / "timings.json").exists():
        tmp = tempfile.TemporaryDirectory()
        run_dir = args.keep or Path(tmp.name) / "demo"
        wall = run_demo(run_dir, {} if args.full else REDUCED, args.threads)
    timings = read_json(run_dir / "timings.json")
    options = read_json(run_dir / "demo_options.json") \
        if (run_dir / "demo_options.json").exists() else {}
    differs = {k: v for k, v in options.items() if k not in ("output",) and defaults.get(k) != v}
    total = float(sum(timings.values()))
    is_default = bool(options) and not differs
    if tmp is not None:
        tmp.cleanup()
    return emit(
        "demo",
        spokenlm={"total_s": total, "wall_s": wall, "steps_s": timings,
                  "slowest_step": max(timings, key=timings.get) if timings else None},
        baseline=None, ratio=None, outputs_agree=None,
        agreement=None,
        bar=f"total <= {BAR_S} s with the default demo options on 2 CPU cores",
        meets_bar=bool(total <= BAR_S) if is_default else None, device=device,
        size={"run_dir": str(run_dir) if tmp is None else "(temporary)",
              "default_options": is_default,
              "options_differing_from_defaults": {k: [v, defaults.get(k)] for k, v in
                                                  differs.items()},
              "full": args.full})


if __name__ == "__main__":
    main()
