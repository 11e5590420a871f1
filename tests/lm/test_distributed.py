from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from spokenlm.lm.train import train_lm
from spokenlm.testing.lm import repetitive_corpus, write_packed_units

OPTS = dict(size="tiny", seq_len=32, batch_size=4, lr=3e-3, warmup_steps=2, log_every=2,
            eval_every=4, eval_batches=2, max_steps=6, save_every=3)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path) -> None:
    """torchrun with 2 gloo processes: each takes half of every global batch, so the run
    tracks the single-process one (up to per-rank loss weighting and summation order)."""
    units = write_packed_units(tmp_path / "train", repetitive_corpus(40, n_units=12), 12)
    train_lm(units=units, output=tmp_path / "one", **OPTS)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import torch
        torch.set_num_threads(1)
        from spokenlm.lm.train import train_lm
        train_lm(units={str(units)!r}, output={str(tmp_path / 'two')!r}, **{OPTS!r})
    """))
    env = {**os.environ, "SPOKENLM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["steps"] == one["steps"] and two["tokens"] == one["tokens"]
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-2)
    assert (tmp_path / "two" / "checkpoints" / "latest").read_text().strip() == "step_00000006"
    assert (tmp_path / "two" / "final" / "spokenlm_lm.json").exists()
