"""What the joint recipes (``joint t2u train``, ``joint speechlm train``, ``joint slam train``)
share on top of the one training loop (:mod:`spokenlm.training.loop`).

Their batches, masks and random draws are a function of ``(seed, step, shard)`` only
(:func:`step_generator`), so a run needs no data position to resume exactly, and a shard is
the same rows whether one process takes it or another. Run dir::

    checkpoints/step_XXXXXXXX/  model files (``model.write_files``) + trainer_state.pt
    log.jsonl                   step, lr and the mean of each metric since the last line
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..asr.text import Vocab
from ..common.files import write_json
from ..common.paths import stored_fields
from ..ssl.data import CropBatches
from ..ssl.masking import span_mask
from ..training import Env, Recipe, Result, TrainerOptions, shard_slice
from .data import TextBatches, speech_batch

#: the joint recipes' encoders train as HuBERT's: the defaults and clip 10
JOINT_TRAINER = TrainerOptions(clip_grad=10.0, eval_every=0)


class JointRecipe(Recipe):
    """A stateless joint recipe: subclasses give :meth:`shard` (the batch of one shard)."""

    def __init__(self, name: str, model: torch.nn.Module, env: Env) -> None:
        self.name, self.model, self.env = name, model, env

    def batches(self, step: int, shards: range, n_shards: int) -> list[Any]:
        return [self.shard(step, s, n_shards) for s in shards]

    def shard(self, step: int, shard: int, n_shards: int) -> Any:
        raise NotImplementedError


def speech_shard(speech: CropBatches, step: int, shard: int, n_shards: int, mask_prob: float,
                 mask_length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This shard of the crop batch of ``step``: wav (b, T), labels (b, F), span mask (b, F)
    (drawn for the whole batch, seeded by (seed, 7, step))."""
    part = shard_slice(speech.batch_size, shard, n_shards)
    wav, lab = speech_batch(speech, step, part)
    mask = span_mask([lab.shape[1]] * speech.batch_size, mask_prob, mask_length,
                     seed=(seed, 7, step))[part]
    return wav, lab, mask


def text_shard(text: TextBatches, step: int, shard: int, n_shards: int, mask_prob: float,
               span: int, seed: int, min_masks: int = 2
               ) -> tuple[torch.Tensor, torch.Tensor, list[list[int]], torch.Tensor]:
    """This shard of the text batch of ``step``: ids (b, L), lengths (b,), char targets, span
    mask (b, L) (drawn for the whole batch, seeded by (seed, 8, step))."""
    part = shard_slice(text.batch_size, shard, n_shards, "--text-batch-size")
    ids, lens, chars = text.batch(step, part)
    every = text.lengths(step)
    mask = span_mask(every.tolist(), mask_prob, span, min_masks=min_masks,
                     seed=(seed, 8, step), max_frames=int(every.max()))
    return ids, lens, chars, mask[part, :ids.shape[1]]


def write_final(model: Any, result: Result, opts: Any, env: Env, metric: str,
                vocab: Vocab | None = None) -> Path:
    """Rank 0 writes ``<output>/final`` (+ ``vocab.json``) and ``metrics.json`` (the last
    log window's metrics, steps, train_seconds, options); returns ``final``."""
    final = opts.output / "final"
    if env.main:
        model.cpu().save_pretrained(final)
        if vocab is not None:
            vocab.save(final / "vocab.json")
        write_json(opts.output / "metrics.json", {
            "metric": metric, **result.window, "steps": result.steps,
            "train_seconds": result.time_s,
            "options": stored_fields(opts, opts.output / "metrics.json")})
    env.barrier()
    return final


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, stream, step): masks and draws of one step (of one
    shard: ``stream`` = the shard)."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, stream, step]).generate_state(1)[0]))
    return g
