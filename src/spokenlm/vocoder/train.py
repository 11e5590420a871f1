"""``spokenlm vocoder train``: fit a unit-to-speech vocoder on units JSONL + audio.

Run directory layout (same as the LM trainer's)::

    <output>/options.json                 the options of the run
    <output>/log.jsonl                    step, losses, lr, epoch, elapsed_s, frames_per_s
    <output>/checkpoints/step_XXXXXXXX/   vocoder dir + trainer_state.pt
    <output>/checkpoints/latest           name of the last complete checkpoint
                                          (see :mod:`spokenlm.common.checkpoints`)
    <output>/final/                       the trained vocoder dir (``load_vocoder``)

A killed run started again with the same ``output`` resumes from ``checkpoints/latest``
(model, discriminators, optimizers, data position and RNG), or from the newest intact
checkpoint before it when that one is damaged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from ..audio.framing import units_framing
from ..common.checkpoints import load_checkpoint, resume_checkpoint, save_checkpoint
from ..common.device import resolve_device
from ..common.errors import ArtifactError, InputError
from ..common.files import iter_jsonl, json_line, read_json, write_json, write_jsonl
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log, progress
from .data import SegmentSampler, load_utterances
from .tasks import TASKS, Task

KEEP_CHECKPOINTS = 2


@dataclass
class VocoderTrainOptions:
    units: Path = arg(positional=True, help="units JSONL with durations and audio paths "
                                            "(from `spokenlm tokenize run`)")
    output: Path = arg(Path("runs/vocoder"), help="run directory (checkpoints, log.jsonl, "
                                                  "final/); an existing run resumes")
    type: Literal["fast", "hifigan"] = arg("fast", help="fast: mel regression + Griffin-Lim "
                                                        "(CPU demo); hifigan: unit HiFi-GAN")
    size: str = arg("base", help="model size: tiny|base (fast); tiny|small|v1 (hifigan; "
                                 "base = v1)")
    segment_frames: int | None = arg(None, help="unit frames per training segment; "
                                                "None: 32 (10240 samples) for hifigan, "
                                                "64 for fast")
    batch_size: int = arg(16, help="segments per step")
    lr: float | None = arg(None, help="AdamW learning rate, betas (0.8, 0.99); "
                                      "None: 2e-4 for hifigan, 1e-3 for fast")
    lr_decay: float = arg(0.999, help="learning rate multiplied by this every epoch")
    max_steps: int = arg(2000, help="training steps")
    save_every: int = arg(500, help="checkpoint every N steps (and at the end)")
    log_every: int = arg(50, help="append losses to log.jsonl every N steps")
    speaker_embedding: bool = arg(True, help="condition on speaker when the units name "
                                             "more than one")
    duration_predictor: bool = arg(True, help="train a duration predictor so deduplicated "
                                              "units can be spoken without durations")
    n_units: int | None = arg(None, help="unit vocabulary size; None: from "
                                         "<units>.meta.json, else max unit + 1")
    seed: int = arg(0, help="random seed")
    device: str = arg("auto", help="auto, cpu, cuda, cuda:1, ...")


@command("vocoder train", VocoderTrainOptions)
def train_vocoder(opts: VocoderTrainOptions) -> Path:
    """Train a vocoder (units -> 16 kHz audio) and return its directory ``<output>/final``."""
    if opts.type not in TASKS:
        raise InputError(f"--type {opts.type!r}: choose one of {sorted(TASKS)}")
    task_cls = TASKS[opts.type]
    if opts.size not in task_cls.sizes:
        raise InputError(f"--size {opts.size!r} is not a {opts.type} size; choose one of "
                         f"{sorted(task_cls.sizes)}")
    for name in ("batch_size", "max_steps", "save_every", "log_every"):
        if getattr(opts, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1")
    run = opts.output
    _check_run(run, opts)
    torch.manual_seed(opts.seed)
    device = resolve_device(opts.device)
    utts = load_utterances(opts.units)
    names = sorted({u.speaker for u in utts})
    speakers = names if opts.speaker_embedding and len(names) > 1 else []
    n_units = opts.n_units or _n_units(opts.units, max(int(u.units.max()) for u in utts) + 1)
    framing = units_framing(iter_jsonl(opts.units), opts.units)
    model = task_cls.model_cls.build(opts.size, n_units, speakers, opts.duration_predictor,
                                     hop_length=framing.hop_length)
    lr = opts.lr if opts.lr is not None else task_cls.default_lr
    task = task_cls(model.to(device), lr)
    segment = opts.segment_frames or task_cls.default_segment_frames
    sampler = SegmentSampler(utts, opts.batch_size, segment, speakers, seed=opts.seed,
                             hop_length=framing.hop_length)
    step = _resume(run, task, sampler)
    write_json(run / "options.json", stored_fields(opts, run / "options.json"))
    log(f"vocoder: {opts.type}/{opts.size}, {sum(p.numel() for p in model.parameters()):,} "
        f"params, {len(utts)} utterances, {n_units} units at {framing.describe()}, "
        f"{len(speakers)} speakers, "
        f"step {step}/{opts.max_steps}")

    bar = progress(desc=f"vocoder train ({opts.type})", total=opts.max_steps, unit="step")
    bar.update(step)
    task.train()
    t0, frames_done = time.time(), 0
    while step < opts.max_steps:
        task.set_lr(lr * opts.lr_decay ** sampler.epoch)
        batch = sampler.next_batch(device)
        losses = task.step(batch)
        step += 1
        frames_done += batch.frames.numel()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in list(losses.items())[:3]})
        if step % opts.log_every == 0 or step == opts.max_steps:
            elapsed = time.time() - t0
            _append_log(run / "log.jsonl", {
                "step": step, **losses, "lr": lr * opts.lr_decay ** sampler.epoch,
                "epoch": sampler.epoch, "elapsed_s": round(elapsed, 2),
                "frames_per_s": round(frames_done / max(elapsed, 1e-9), 1)})
        if step % opts.save_every == 0 or step == opts.max_steps:
            _save_checkpoint(run, step, task, sampler)
    bar.close()
    return task.model.save_pretrained(run / "final")


def _n_units(units_path: Path, observed: int) -> int:
    meta = units_path.with_name(units_path.name.removesuffix(".jsonl") + ".meta.json")
    if meta.exists():
        return int(read_json(meta)["n_units"])
    log(f"vocoder: {meta} not found; n_units = max unit + 1 = {observed} (pass --n-units "
        f"to match the tokenizer)")
    return observed


def _check_run(run: Path, opts: VocoderTrainOptions) -> None:
    """An existing run dir must hold a run of the same type and size."""
    path = run / "options.json"
    if not path.exists():
        return
    old = read_json(path)
    for key in ("type", "size"):
        if old.get(key) != getattr(opts, key):
            raise InputError(f"{path}: run has {key}={old.get(key)!r} but "
                             f"{key}={getattr(opts, key)!r} was asked; use another --output "
                             f"or delete {run}")


def _append_log(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json_line(row))


def _save_checkpoint(run: Path, step: int, task: Task, sampler: SegmentSampler) -> Path:
    state = {"aux": {k: m.state_dict() for k, m in task.aux.items()},
             "optimizers": {k: o.state_dict() for k, o in task.optimizers.items()},
             "sampler": sampler.state_dict(),
             "torch_rng": torch.get_rng_state()}
    return save_checkpoint(run / "checkpoints", step, task.model, state, KEEP_CHECKPOINTS)


def _resume(run: Path, task: Task, sampler: SegmentSampler) -> int:
    """Load ``checkpoints/latest`` (or the newest intact one before it) into the task;
    return its step (0 when starting fresh)."""
    ckpts = run / "checkpoints"
    path, state = resume_checkpoint(ckpts, lambda p: load_checkpoint(p, task.model)) \
        or (None, None)
    if path is None:
        if (run / "log.jsonl").exists():
            (run / "log.jsonl").unlink()
        return 0
    try:
        for k, m in task.aux.items():
            m.load_state_dict(state["aux"][k])
        for k, o in task.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
    except (RuntimeError, KeyError, ValueError) as e:
        raise ArtifactError(f"{path}: cannot resume from this checkpoint ({e}); delete "
                            f"{ckpts} to start over") from e
    sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    step = int(state["step"])
    log_path = run / "log.jsonl"
    if log_path.exists():
        write_jsonl(log_path, [r for r in iter_jsonl(log_path) if r.get("step", 0) <= step])
    log(f"vocoder: resuming {run} from step {step} ({path.name})")
    return step
