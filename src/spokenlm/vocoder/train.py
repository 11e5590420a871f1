"""``spokenlm vocoder train``: fit a unit-to-speech vocoder on units JSONL + audio.

Run directory layout (same as the LM trainer's)::

    <output>/options.json                 the options of the run
    <output>/log.jsonl                    step, losses, lr, epoch, elapsed_s, frames_per_s
    <output>/checkpoints/step_XXXXXXXX/   vocoder dir + trainer_state.pt
    <output>/checkpoints/latest           name of the last complete checkpoint
                                          (see :mod:`spokenlm.common.checkpoints`)
    <output>/final/                       the trained vocoder dir (``load_vocoder``)

Trained by the one training loop (:mod:`spokenlm.training.loop`; the discriminators of
HiFi-GAN are its extra modules, with their own optimizer). A killed run started again with
the same ``output`` resumes from ``checkpoints/latest`` (model, discriminators, optimizers,
data position and RNG), or from the newest intact checkpoint before it when that one is
damaged. Runs under ``torchrun`` as DDP, each process taking its share of every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from ..audio.framing import units_framing
from ..common.errors import InputError
from ..common.files import iter_jsonl, read_json
from ..common.options import arg, command
from ..common.packed import packed_files, prefix_of
from ..common.progress import log
from ..training import Env, Recipe, TrainerOptions, fit, init, take
from .base import VocoderModel
from .data import Batch, SegmentSampler, load_utterances
from .tasks import TASKS, Task

#: HiFi-GAN's optimizer (AdamW, betas (0.8, 0.99), decay 0.01, lr x 0.999 every epoch);
#: lr and clipping depend on --type (None: the type's default)
VOCODER_TRAINER = TrainerOptions(lr=None, beta1=0.8, beta2=0.99, weight_decay=0.01,
                                 lr_schedule="exponential", lr_decay=0.999, warmup_steps=0,
                                 max_steps=2000, clip_grad=None, save_every=500, log_every=50,
                                 eval_every=0)


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
    batch_size: int = arg(16, help="segments per step, over all processes")
    speaker_embedding: bool = arg(True, help="condition on speaker when the units name "
                                             "more than one")
    duration_predictor: bool = arg(True, help="train a duration predictor so deduplicated "
                                              "units can be spoken without durations")
    n_units: int | None = arg(None, help="unit vocabulary size; None: from "
                                         "<units>.meta.json, else max unit + 1")
    trainer: TrainerOptions = arg(VOCODER_TRAINER, help="training loop options; --lr None: "
                                  "2e-4 for hifigan, 1e-3 for fast; --clip-grad None: 1.0 "
                                  "for fast, none for hifigan")


class VocoderRecipe(Recipe):
    """Segments of the units' audio; the task's loss (and discriminators)."""

    token_name = "frames"

    def __init__(self, task: Task, sampler: SegmentSampler, env: Env, name: str,
                 about: str) -> None:
        self.task, self.model, self.sampler, self.env = task, task.model, sampler, env
        self.name, self.about = name, about
        self.step_tokens = sampler.batch_size * sampler.segment

    def extra_modules(self) -> dict[str, nn.Module]:
        return self.task.extra_modules()

    def batches(self, step: int, shards: range, n_shards: int) -> list[Batch]:
        rows = self.sampler.next_rows()
        return [self.sampler.collate(take(rows, s, n_shards), self.env.device) for s in shards]

    def loss(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Any]:
        assert isinstance(model, VocoderModel)
        return self.task.loss(model, batch, self.extras)

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])

    def epoch(self) -> int:
        return self.sampler.epoch

    def log_extras(self, elapsed_s: float) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "elapsed_s": round(elapsed_s, 2)}

    def describe(self) -> str:
        return self.about


@command("vocoder train", VocoderTrainOptions)
def train_vocoder(opts: VocoderTrainOptions) -> Path:
    """Train a vocoder (units -> 16 kHz audio) and return its directory ``<output>/final``."""
    import torch

    if opts.type not in TASKS:
        raise InputError(f"--type {opts.type!r}: choose one of {sorted(TASKS)}")
    task_cls = TASKS[opts.type]
    if opts.size not in task_cls.sizes:
        raise InputError(f"--size {opts.size!r} is not a {opts.type} size; choose one of "
                         f"{sorted(task_cls.sizes)}")
    if opts.batch_size < 1:
        raise InputError("--batch-size must be >= 1")
    t = opts.trainer
    t = t.replace(lr=task_cls.default_lr if t.lr is None else t.lr,
                  clip_grad=task_cls.default_clip_grad if t.clip_grad is None else t.clip_grad)
    run = opts.output
    _check_run(run, opts)
    env = init(t)
    torch.manual_seed(t.seed)
    utts = load_utterances(opts.units)
    names = sorted({u.speaker for u in utts})
    speakers = names if opts.speaker_embedding and len(names) > 1 else []
    n_units = opts.n_units or _n_units(opts.units, max(int(u.units.max()) for u in utts) + 1)
    framing = units_framing(iter_jsonl(opts.units), opts.units)
    model = task_cls.model_cls.build(opts.size, n_units, speakers, opts.duration_predictor,
                                     hop_length=framing.hop_length)
    task = task_cls(model.to(env.device))
    segment = opts.segment_frames or task_cls.default_segment_frames
    sampler = SegmentSampler(utts, opts.batch_size, segment, speakers, seed=t.seed,
                             hop_length=framing.hop_length)
    about = (f"{opts.type}/{opts.size}, {len(utts)} utterances, {n_units} units at "
             f"{framing.describe()}, {len(speakers)} speakers")
    recipe = VocoderRecipe(task, sampler, env, f"vocoder train ({opts.type})", about)
    fit(recipe, t, env, run, record=opts)
    final = run / "final"
    if env.main:
        task.model.save_pretrained(final)
    env.barrier()
    return final


def _n_units(units_path: Path, observed: int) -> int:
    meta = packed_files(prefix_of(units_path))[".meta.json"]
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
