"""Every trainer family under ``torchrun`` (2 gloo processes) against one process with the same
global batch: the shards of each step are the same rows whether two processes or two
micro-batches of one process take them, so the loss curves and the final weights agree to
float tolerance. And an FSDP2 run of ``lm train`` killed after a sharded checkpoint resumes
to the result of an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from spokenlm.common.files import read_jsonl

#: runs the jobs of a JSON file in every process; a job with ``kill_after`` dies (raises,
#: caught: nothing after it runs) at its first checkpoint after that step
RUNNER = """
import importlib, json, sys, torch
torch.set_num_threads(1)
import spokenlm.training.checkpoints as C

class Killed(BaseException):
    pass

real = C.RunCheckpoints.save
for job in json.load(open(sys.argv[1])):
    def save(self, step, state, _kill=job.get("kill_after")):
        if _kill is not None and step > _kill:
            raise Killed
        return real(self, step, state)
    C.RunCheckpoints.save = save
    module, name = job["fn"].split(":")
    try:
        getattr(importlib.import_module(module), name)(**job["kwargs"])
    except Killed:
        pass
"""


def torchrun(tmp: Path, jobs: list[dict[str, Any]], nproc: int = 2) -> None:
    """Run ``jobs`` ({"fn": "module:function", "kwargs": {...}}) under torchrun."""
    (tmp / "runner.py").write_text(textwrap.dedent(RUNNER))
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "SPOKENLM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(nproc), str(tmp / "runner.py"),
                           str(tmp / "jobs.json")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]


def job(fn: str, **kwargs: Any) -> dict[str, Any]:
    return {"fn": fn, "kwargs": {k: str(v) if isinstance(v, Path) else v
                                 for k, v in kwargs.items()}}


def assert_same_run(one: Path, two: Path, tol: float = 1e-5) -> None:
    """Same steps and losses in log.jsonl, same final weights (``final/``)."""
    a, b = read_jsonl(one / "log.jsonl"), read_jsonl(two / "log.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [r["loss"] for r in b] == pytest.approx([r["loss"] for r in a], rel=tol, abs=tol)
    wa = load_file(str(one / "final" / "model.safetensors"))
    wb = load_file(str(two / "final" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=tol, atol=tol, msg=k)


# ---- the families ------------------------------------------------------------------------

def _lm_units(tmp: Path) -> Path:
    from spokenlm.testing.lm import repetitive_corpus, write_packed_units

    return write_packed_units(tmp / "units", repetitive_corpus(40, n_units=12), 12)


LM = dict(size="tiny", seq_len=32, lr=3e-3, warmup_steps=2, log_every=1, eval_every=3,
          eval_batches=2, max_steps=6, save_every=3, device="cpu", precision="fp32")


def _manifest(tmp: Path, phonemes: bool = False) -> Path:
    from spokenlm.testing.audio import write_test_manifest, write_wav_folder

    wavs = write_wav_folder(tmp / "wavs", n=8, seed=1, seconds=(0.6, 1.0))
    if not phonemes:
        return write_test_manifest(tmp / "train.jsonl", wavs)
    return write_test_manifest(tmp / "train.jsonl", wavs, text=["a b"] * 8,
                               phonemes=["ɐ | b iː", "k æ t", "d ɑː ɡ", "b ɪ ɡ"] * 2)


SSL = dict(n_clusters=4, batch_size=4, max_seconds=0.6, max_steps=4, warmup_steps=1,
           save_every=2, log_every=1, device="cpu", layers=1)
T2U = dict(hidden=16, layers=1, max_steps=4, batch_size=4, warmup_steps=1, device="cpu",
           log_every=1, save_every=2)  # dropout 0.1: drawn per (seed, step, shard)
VOCODER = dict(type="fast", size="tiny", batch_size=4, segment_frames=16, log_every=1,
               save_every=2, max_steps=4, seed=1, device="cpu")


def _t2u_inputs(tmp: Path) -> tuple[Path, Path]:
    from spokenlm.ssl.targets import TargetSpec, make_targets

    manifest = _manifest(tmp, phonemes=True)
    _, (units,) = make_targets([manifest], tmp / "targets",
                               TargetSpec("mfcc", n_clusters=5, device="cpu"))
    return manifest, units


@pytest.mark.slow
def test_two_processes_train_a_joint_recipe_as_one_with_two_micro_batches(tmp_path) -> None:
    """t2u (joint): 2 processes x 1 micro-batch == 1 process x 2 (~20 s: two interpreters
    importing torch; the in-process split is checked by tests/training/test_loop.py)."""
    from spokenlm.joint.t2u_train import train_t2u

    manifest, units = _t2u_inputs(tmp_path)
    train_t2u(manifest=manifest, units=units, output=tmp_path / "one", grad_accum=2, **T2U)
    torchrun(tmp_path, [job("spokenlm.joint.t2u_train:train_t2u", manifest=manifest,
                            units=units, output=tmp_path / "two", **T2U)])
    assert_same_run(tmp_path / "one", tmp_path / "two")
    options = json.loads((tmp_path / "two" / "options.json").read_text())
    assert options["world_size"] == 2 and options["lr"] == 1e-3  # flat, as the CLI flags


@pytest.mark.slow
def test_every_family_under_ddp_matches_one_process(tmp_path) -> None:
    """LM, SSL and a vocoder (and the joint recipe above): one torchrun launch for all."""
    from spokenlm.lm.train import train_lm
    from spokenlm.ssl.train import train_ssl
    from spokenlm.testing.vocoder import write_units_corpus
    from spokenlm.vocoder.train import train_vocoder

    units = _lm_units(tmp_path)
    manifest = _manifest(tmp_path / "ssl")
    voc_units = write_units_corpus(tmp_path / "voc", n_utts=4, n_units=8, n_frames=50)
    # one process: the global batch in two micro-batches (lm: --batch-size is per micro-batch)
    train_lm(units=units, output=tmp_path / "lm1", batch_size=2, grad_accum=2, **LM)
    train_ssl(manifest=manifest, output=tmp_path / "ssl1", grad_accum=2, **SSL)
    train_vocoder(units=voc_units, output=tmp_path / "voc1", grad_accum=2, **VOCODER)
    torchrun(tmp_path, [
        job("spokenlm.lm.train:train_lm", units=units, output=tmp_path / "lm2", batch_size=4,
            **LM),
        job("spokenlm.ssl.train:train_ssl", manifest=manifest, output=tmp_path / "ssl2", **SSL),
        job("spokenlm.vocoder.train:train_vocoder", units=voc_units,
            output=tmp_path / "voc2", **VOCODER)])
    for name in ("lm", "ssl", "voc"):
        assert_same_run(tmp_path / f"{name}1", tmp_path / f"{name}2")
    a = read_jsonl(tmp_path / "lm1" / "log.jsonl")
    b = read_jsonl(tmp_path / "lm2" / "log.jsonl")
    assert [r["valid_loss"] for r in a if "valid_loss" in r] == pytest.approx(
        [r["valid_loss"] for r in b if "valid_loss" in r], rel=1e-5)
    assert json.loads((tmp_path / "voc2" / "options.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_fsdp_lm_train_resumes_from_its_sharded_checkpoint(tmp_path) -> None:
    """FSDP2: straight 6 steps; the same run killed after its step-3 checkpoint and
    restarted; both equal DDP's run and one process with two micro-batches."""
    from spokenlm.lm.train import train_lm

    units = _lm_units(tmp_path)
    fsdp = dict(units=units, batch_size=4, distributed="fsdp", **LM)
    killed = job("spokenlm.lm.train:train_lm", output=tmp_path / "cut", **fsdp)
    torchrun(tmp_path, [job("spokenlm.lm.train:train_lm", output=tmp_path / "straight", **fsdp),
                        {**killed, "kill_after": 3}, killed])
    ckpt = tmp_path / "cut" / "checkpoints" / "step_00000006"
    assert (ckpt / ".metadata").is_file() and (ckpt / "__1_0.distcp").is_file()
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    assert state["layout"] == "sharded" and len(state["rngs"]) == 2
    assert_same_run(tmp_path / "straight", tmp_path / "cut", tol=0)  # bit-exact resume
    train_lm(units=units, output=tmp_path / "one", batch_size=2, grad_accum=2, **LM)
    assert_same_run(tmp_path / "one", tmp_path / "straight")
    m = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert m["steps"] == 6 and m["valid_loss"] == json.loads(
        (tmp_path / "straight" / "metrics.json").read_text())["valid_loss"]
