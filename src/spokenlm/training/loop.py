"""The one training loop of every spokenlm trainer.

A trainer builds its model and data into a :class:`Recipe` (hooks for what differs: the
shards of each global batch, the loss, the evaluation, extra modules with their own
optimizers such as a GAN's discriminators) and calls :func:`fit` with its
:class:`~spokenlm.training.options.TrainerOptions`. The loop owns the rest, once: the
optimizer and the schedule fitted to the budget (steps, tokens or hours), gradient
accumulation, clipping, autocast, ``torch.compile``, DDP or FSDP2 under ``torchrun``
(:mod:`.distributed`), metrics averaged over micro-batches and processes, ``log.jsonl``,
``options.json``, an optional weight average (``--ema``, :mod:`.averaging`), atomic
checkpoints every ``save_every`` steps and at the end, and exact resume from the newest
intact one (:mod:`.checkpoints`).

Run dir: ``checkpoints/step_XXXXXXXX/`` + ``checkpoints/latest``, ``log.jsonl`` (one row every
``log_every`` steps: ``step``, the mean of each metric since the last row, ``lr``,
throughput, the recipe's extra columns, validation metrics when evaluated), ``options.json``.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common.checkpoints import load_checkpoint
from ..common.errors import InputError
from ..common.files import iter_jsonl, json_line, write_json, write_jsonl
from ..common.paths import stored_fields
from ..common.progress import progress
from .averaging import WeightAverage
from .checkpoints import RunCheckpoints
from .distributed import Engine, Env, wrap_ddp
from .options import TrainerOptions
from .schedule import Budget, build_optimizer, lr_factor


class Recipe:
    """What a trainer gives :func:`fit`. Subclasses set :attr:`model` and implement
    :meth:`batches` and :meth:`loss`; the other hooks have defaults."""

    #: progress bar and log prefix ("lm train")
    name: str = "train"
    #: the trained model; ``write_files(dir)`` writes a checkpoint's model files
    model: nn.Module
    #: tokens (or frames) per optimizer step over all processes; 0: not counted, so
    #: ``--max-tokens`` is refused
    step_tokens: int = 0
    #: what :attr:`step_tokens` counts, for the ``<token_name>_per_s`` column of the log
    token_name: str = "tokens"
    #: whether ``--distributed fsdp`` may shard the model (large models: the LMs)
    shardable: bool = False
    #: some parameters get no gradient in some steps (DDP ``find_unused_parameters``)
    unused_parameters: bool = False
    #: ``model.train()`` while training (False: dropout off, as DPO trains)
    train_mode: bool = True
    #: :meth:`evaluate` runs on every process (it splits the data and all-reduces); else it
    #: runs on rank 0 alone
    collective_eval: bool = False
    #: the loop's :class:`Extra` of each module of :meth:`extra_modules`, set by :func:`fit`
    extras: dict[str, Extra]

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        """This process's shards (``shards`` of ``n_shards``: one per micro-step) of the
        global batch of optimizer step ``step`` (0-based), advancing the data position."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any, step: int) -> dict[str, Any]:
        """``{"loss": scalar tensor, <metric>: tensor or float, ...}`` of one shard; runs
        inside the (DDP/FSDP-wrapped) forward, so ``model`` may be used through any method.
        Every process must return the same keys."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, step: int | None) -> dict[str, float]:
        """Validation metrics (logged as they are named) every ``eval_every`` steps and at
        the end (``step`` None); {} when there is nothing to evaluate."""
        return {}

    def extra_modules(self) -> dict[str, nn.Module]:
        """Modules trained beside the model with their own optimizer (a GAN's
        discriminators), used in :meth:`loss` through ``self.extras[name]``."""
        return {}

    def shard_units(self) -> Sequence[nn.Module]:
        """Blocks FSDP shards one by one before the root (transformer layers)."""
        return ()

    def write_files(self, path: Path) -> None:
        """Write a checkpoint's model files into dir ``path`` (a loadable model dir)."""
        self.model.write_files(path)  # type: ignore[operator]

    def read_checkpoint(self, path: Path) -> dict[str, Any]:
        """Load checkpoint ``path``'s model files into :attr:`model` and return its trainer
        state (see :func:`spokenlm.common.checkpoints.load_checkpoint`)."""
        return load_checkpoint(path, self.model)

    def state_dict(self) -> dict[str, Any]:
        """The data position (whatever :meth:`batches` needs to go on exactly)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def epoch(self) -> int:
        """Epochs of the data done (``--lr-schedule exponential`` decays on it)."""
        return 0

    def default_steps(self) -> int:
        """Optimizer steps when ``--max-steps`` is None (e.g. one epoch)."""
        raise InputError(f"{self.name}: pass --max-steps")

    def describe(self) -> str:
        """What is trained on what, for the first log line."""
        return ""

    def log_extras(self, elapsed_s: float) -> dict[str, Any]:
        """More columns of a log row (e.g. the data mixture's shares); ``elapsed_s``: the
        run's wall-clock seconds so far, over every resume."""
        return {}

    def run_info(self) -> dict[str, Any]:
        """More entries of ``options.json`` (e.g. the sequence length used)."""
        return {}


class Extra:
    """A module of :meth:`Recipe.extra_modules` with its optimizer (the run's optimizer
    options and schedule), under DDP when there are several processes."""

    def __init__(self, module: nn.Module, env: Env, opts: TrainerOptions, factor: Any) -> None:
        self.raw = module.to(env.device)
        self.module = wrap_ddp(self.raw, env)
        self.optimizer = build_optimizer(self.raw, opts, env.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def update(self, loss: torch.Tensor) -> None:
        """One optimizer step of this module on ``loss`` (its own backward)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.raw.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.raw.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


@dataclass
class Result:
    """What a run did: counters, the last step's and last log window's metrics, the final
    evaluation, and (under FSDP, on rank 0) the full model state dict for ``final/``."""

    steps: int
    tokens: int
    time_s: float
    wall_s: float
    stopped_by: str
    parameters: int
    last: dict[str, float]
    window: dict[str, float]
    valid: dict[str, float]
    full_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


def fresh_state() -> dict[str, Any]:
    """The loop's counters at step 0 (checkpointed with every save)."""
    return {"step": 0, "tokens": 0, "time_s": 0.0, "wall_s": 0.0, "last": {},
            "window": {"sums": {}, "counts": {}, "tokens": 0}, "logged": {}}


def fit(recipe: Recipe, opts: TrainerOptions, env: Env, run: Path,
        record: Any = None) -> Result:
    """Train ``recipe`` under ``opts`` into run dir ``run``; ``record`` (the command's
    options) goes to ``options.json``. Every process calls it."""
    run = Path(run)
    _check(recipe, opts, env)
    steps = opts.max_steps if opts.max_steps is not None else recipe.default_steps()
    budget = Budget(steps, recipe.step_tokens, opts.max_tokens, opts.max_hours)
    engine = Engine(recipe.model, recipe.loss, env, opts, unused_parameters=recipe.unused_parameters,
                    shard_units=recipe.shard_units() if env.world > 1 else ())
    optimizer = build_optimizer(engine.model, opts, env.device)
    clock = _Clock()
    factor = lr_factor(opts, budget, clock.elapsed, recipe.epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    recipe.extras = {k: Extra(m, env, opts, factor) for k, m in recipe.extra_modules().items()}
    ckpts = RunCheckpoints(run, env, engine, optimizer, scheduler, recipe.extras, recipe,
                           opts.keep_checkpoints)
    state, resumed = fresh_state(), ckpts.resume(opts.resume)
    if resumed is not None:
        state = resumed[1]
        clock.base, clock.since = float(state["wall_s"]), time.perf_counter()
    average = _average(recipe, opts, env, state, resumed)
    log_path = run / "log.jsonl"
    n_params = engine.parameters()
    if env.main:
        rows = ([r for r in iter_jsonl(log_path) if r["step"] <= state["step"]]
                if resumed is not None and log_path.exists() else [])
        write_jsonl(log_path, rows)  # drops lines logged after the checkpoint
        write_json(run / "options.json", {
            **(stored_fields(record, run / "options.json") if record is not None else {}),
            **recipe.run_info(), "world_size": env.world, "parameters": n_params})
        start = (f"resuming from {resumed[0].name}, continuing {run} from step {state['step']}"
                 if resumed is not None else f"training into {run}")
        procs = (f"{env.world} processes ({'fsdp' if engine.sharded else 'ddp'})"
                 if env.world > 1 else "1 process")
        env.log(f"{recipe.name}: {start}; {recipe.describe()}{', ' if recipe.describe() else ''}"
                f"{n_params / 1e6:.2f}M params, {env.device}, {env.amp or torch.float32}, "
                f"{procs}, budget {budget.describe()}")

    last_saved, t_window = state["step"], time.perf_counter()
    bar = progress(desc=recipe.name, total=budget.steps, unit="step") if env.main else None
    if bar is not None:
        bar.update(state["step"])
    recipe.model.train(recipe.train_mode)
    shards = range(env.rank * opts.grad_accum, (env.rank + 1) * opts.grad_accum)
    while (stopped_by := _stop(budget, state["step"], clock.elapsed(), env)) is None:
        t0 = time.perf_counter()
        step = state["step"]
        metrics = _step(recipe, engine, opts, env, step, shards)
        engine.clip(opts.clip_grad or 0.0)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if average is not None:
            average.update()
        scheduler.step()
        for extra in recipe.extras.values():
            extra.scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        metrics = env.mean_metrics(metrics)
        if not math.isfinite(metrics["loss"]):
            raise InputError(f"{recipe.name}: loss is {metrics['loss']} at step {step + 1}; "
                             f"lower --lr or use --precision fp32")
        step = state["step"] = step + 1
        state["tokens"] += budget.step_tokens
        state["time_s"] += time.perf_counter() - t0
        state["last"] = metrics
        _add(state["window"], metrics, budget.step_tokens)
        evaluated = opts.eval_every > 0 and step % opts.eval_every == 0
        valid = _evaluate(recipe, env, step, average) if evaluated else {}
        recipe.model.train(recipe.train_mode)
        state["wall_s"] = clock.elapsed()
        if step % opts.log_every == 0 or evaluated or budget.exhausted(step, state["wall_s"]):
            now = time.perf_counter()
            row = _row(state, lr, now - t_window, recipe, valid)
            state["logged"] = {k: v for k, v in row.items() if k not in ("step", "lr")}
            if env.main:
                with open(log_path, "a") as f:
                    f.write(json_line(row))
                bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)
            state["window"], t_window = {"sums": {}, "counts": {}, "tokens": 0}, now
        if bar is not None:
            bar.update(1)
        if step % opts.save_every == 0:
            ckpts.save(step, state)
            last_saved = step
    if bar is not None:
        bar.close()
    if state["step"] > last_saved:  # the last step, or a budget that ended mid-interval
        ckpts.save(state["step"], state)
    env.log(f"{recipe.name}: stopped by --{stopped_by.replace('_', '-')} after {state['step']} "
            f"steps, {state['tokens']:,} {recipe.token_name}, {state['wall_s'] / 3600:.3f} h")
    if average is not None:
        average.copy_to_model()  # what final/ gets; the checkpoint keeps both
    valid = _evaluate(recipe, env, None)
    recipe.model.eval()
    return Result(steps=state["step"], tokens=state["tokens"], time_s=state["time_s"],
                  wall_s=state["wall_s"], stopped_by=stopped_by, parameters=n_params,
                  last=state["last"], window=state["logged"], valid=valid,
                  full_state=engine.full_state_dict() if engine.sharded else None)


def _check(recipe: Recipe, opts: TrainerOptions, env: Env) -> None:
    opts.check()
    if opts.lr is None or opts.clip_grad is None:
        raise ValueError(f"{recipe.name}: the recipe must resolve --lr and --clip-grad")
    if env.world > 1 and opts.distributed == "fsdp" and not recipe.shardable:
        raise InputError(f"--distributed fsdp: {recipe.name} does not shard its model; use "
                         f"--distributed ddp")
    if opts.ema > 0 and env.world > 1 and opts.distributed == "fsdp":
        raise InputError("--ema with --distributed fsdp: the average would need sharding; "
                         "use --distributed ddp")
    if opts.max_tokens is not None and not recipe.step_tokens:
        raise InputError(f"--max-tokens: {recipe.name} does not count tokens per step; use "
                         f"--max-steps or --max-hours")
    if opts.grad_accum > 1 and recipe.extra_modules():
        raise InputError(f"--grad-accum {opts.grad_accum}: {recipe.name} updates its extra "
                         f"modules every step; use --grad-accum 1 and a larger --batch-size")


def _step(recipe: Recipe, engine: Engine, opts: TrainerOptions, env: Env, step: int,
          shards: range) -> dict[str, float]:
    """Forward and backward of this process's micro-batches of ``step``; their mean metrics."""
    batches = recipe.batches(step, shards, env.world * opts.grad_accum)
    sums: dict[str, list[float]] = {}
    for i, batch in enumerate(batches):
        seed_shard(opts.seed, step, shards[i])
        autocast = (torch.autocast(env.device.type, dtype=env.amp) if env.amp is not None
                    else contextlib.nullcontext())
        with engine.sync(i == len(batches) - 1), autocast:
            out = engine.forward(batch, step)
            (out["loss"] / len(batches)).backward()
        for k, v in out.items():
            x = float(v.detach()) if torch.is_tensor(v) else float(v)
            s = sums.setdefault(k, [0.0, 0.0])
            if x == x:  # NaN (a metric with nothing to measure) is left out of the mean
                s[0] += x
                s[1] += 1
    return {k: s[0] / s[1] if s[1] else float("nan") for k, s in sums.items()}


def seed_shard(seed: int, step: int, shard: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's RNGs from ``(seed, step, shard)``:
    dropout and any other draw of a micro-batch are then the same whichever process, or
    micro-step of one process, takes the shard, and after a resume."""
    s = np.random.SeedSequence([seed, step, shard]).generate_state(2)
    torch.manual_seed(int(s[0]))
    np.random.seed(int(s[1]))
    random.seed(int(s[1]))


def _evaluate(recipe: Recipe, env: Env, step: int | None,
              average: WeightAverage | None = None) -> dict[str, float]:
    if not (recipe.collective_eval or env.main):
        return {}
    with average.applied() if average is not None else contextlib.nullcontext():
        return recipe.evaluate(recipe.model, step)


def _average(recipe: Recipe, opts: TrainerOptions, env: Env, state: dict[str, Any],
             resumed: tuple[Path, dict[str, Any]] | None) -> WeightAverage | None:
    """The ``--ema`` weight average, in the loop state (so checkpoints carry it); restored
    from the checkpoint a run resumes, started at the current weights otherwise."""
    where = str(resumed[0]) if resumed is not None else ""  # only a resumed state has "ema"
    if opts.ema == 0:
        if "ema" in state:
            env.log(f"{where} holds a weight average (--ema); without --ema it is dropped "
                    f"and final/ gets the trained weights")
            del state["ema"]
        return None
    average = WeightAverage(recipe.model, opts.ema)
    if "ema" in state:
        average.load_state_dict(state["ema"], where)
    elif resumed is not None:
        env.log(f"{resumed[0]} holds no weight average: --ema starts it at step "
                f"{state['step']}")
    state["ema"] = average.state_dict()
    return average


def _add(window: dict[str, Any], metrics: dict[str, float], tokens: int) -> None:
    for k, v in metrics.items():
        if v == v:
            window["sums"][k] = window["sums"].get(k, 0.0) + v
            window["counts"][k] = window["counts"].get(k, 0) + 1
        else:
            window["counts"].setdefault(k, 0)
    window["tokens"] += tokens


def _row(state: dict[str, Any], lr: float, seconds: float, recipe: Recipe,
         valid: dict[str, float]) -> dict[str, Any]:
    w = state["window"]
    row: dict[str, Any] = {"step": state["step"]}
    row.update({k: w["sums"].get(k, 0.0) / n if n else float("nan")
                for k, n in w["counts"].items()})
    row["lr"] = lr
    if w["tokens"]:
        row[f"{recipe.token_name}_per_s"] = round(w["tokens"] / max(seconds, 1e-9), 1)
    row.update(recipe.log_extras(state["wall_s"]))
    row.update(valid)
    return row


def _stop(budget: Budget, step: int, elapsed_s: float, env: Env) -> str | None:
    """Which budget ends the run now (None: go on). With a time budget, rank 0's clock
    decides for every process, so they all stop after the same step."""
    if budget.seconds is not None:
        elapsed_s = env.broadcast(elapsed_s)
    return budget.exhausted(step, elapsed_s)


class _Clock:
    """Wall-clock seconds of the run over every resume (``base``: at the checkpoint)."""

    def __init__(self) -> None:
        self.base, self.since = 0.0, time.perf_counter()

    def elapsed(self) -> float:
        return self.base + time.perf_counter() - self.since
