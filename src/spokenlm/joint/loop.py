"""One resumable training loop for the joint recipes (``joint t2u train``, ``joint speechlm
train``, ``joint slam train``), built on the shared checkpoints and the LM optimiser.

A recipe gives ``step_fn(step) -> {"loss": tensor, <metric>: tensor, ...}`` whose batches
and masks are a function of ``(seed, step)`` only, so a run killed at any point resumes
exactly from ``checkpoints/latest`` (weights, optimizer, scheduler, RNG), or from the newest
intact checkpoint before it when that one is damaged. Run dir::

    checkpoints/step_XXXXXXXX/  model files (``model.write_files``) + trainer_state.pt
    log.jsonl                   step, lr and the mean of each metric since the last line
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common.checkpoints import load_checkpoint, resume_training, rng_state, save_checkpoint
from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.files import iter_jsonl, json_line, write_jsonl
from ..common.progress import log, progress
from ..lm.optim import make_optimizer, warmup_cosine

StepFn = Callable[[int], dict[str, torch.Tensor]]


@dataclass
class LoopSettings:
    max_steps: int = 1000
    lr: float = 5e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    clip_grad: float = 10.0
    log_every: int = 10
    save_every: int = 200
    keep_checkpoints: int = 2
    resume: bool = True
    device: str = "auto"


def device_of(settings: LoopSettings) -> torch.device:
    return resolve_device(settings.device)


def train_loop(model: torch.nn.Module, step_fn: StepFn, run: Path, s: LoopSettings,
               desc: str) -> dict[str, float]:
    """Train ``model`` (already on its device) for ``s.max_steps`` steps; returns the mean
    metrics of the last logging window plus ``steps`` and ``train_seconds``."""
    run = Path(run)
    ckpt_dir = run / "checkpoints"
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, s.lr, s.weight_decay, (0.9, 0.98), device)
    warmup = min(s.warmup_steps, max(1, s.max_steps // 5))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup, s.max_steps, 0.0))
    state: dict[str, Any] = {"step": 0, "time_s": 0.0, "last": {}}
    ckpt, saved = resume_training(run, s.resume, lambda path: load_checkpoint(path, model),
                                  optimizer, scheduler)
    if ckpt is not None:
        state = saved["state"]
        log(f"{desc}: resuming from {ckpt}")
    log_path = run / "log.jsonl"
    write_jsonl(log_path, [r for r in iter_jsonl(log_path) if r["step"] <= state["step"]]
                if ckpt is not None and log_path.exists() else [])
    model.train()
    bar = progress(desc=desc, total=s.max_steps, unit="step")
    bar.update(state["step"])
    window: dict[str, list[float]] = {}
    while state["step"] < s.max_steps:
        t0 = time.perf_counter()
        out = step_fn(state["step"])
        out["loss"].backward()
        if s.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_grad)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = state["step"] = state["step"] + 1
        state["time_s"] += time.perf_counter() - t0
        metrics = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
                   for k, v in out.items()}
        if not math.isfinite(metrics["loss"]):
            raise InputError(f"{desc}: loss is {metrics['loss']} at step {step}; lower --lr")
        for k, v in metrics.items():
            window.setdefault(k, []).append(v)
        if step % s.log_every == 0 or step == s.max_steps:
            row = {"step": step, "lr": lr, **{k: float(np.nanmean(v)) if not
                                               all(math.isnan(x) for x in v) else float("nan")
                                               for k, v in window.items()}}
            state["last"] = {k: v for k, v in row.items() if k not in ("step", "lr")}
            with open(log_path, "a") as f:
                f.write(json_line(row))
            bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            window = {}
        bar.update(1)
        if step % s.save_every == 0 or step == s.max_steps:
            save_checkpoint(ckpt_dir, step, model, {
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "state": state}, s.keep_checkpoints)
    bar.close()
    model.eval()
    return {**state["last"], "steps": state["step"], "train_seconds": state["time_s"]}


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, stream, step): masks and draws of one step."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, stream, step]).generate_state(1)[0]))
    return g
