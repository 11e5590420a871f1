"""The defaults table of docs/training.md is the code's defaults (one place states them, the
test keeps the other honest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from spokenlm.training import TrainerOptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _trainer(module: str, options: str) -> TrainerOptions:
    import importlib

    cls = getattr(importlib.import_module(module), options)
    return next(f.default for f in dataclasses.fields(cls) if f.name == "trainer")


RECIPES = {"`lm train`": ("spokenlm.lm.train", "LMTrainOptions"),
           "`lm pretrain-text`": ("spokenlm.lm.text_lm", "TextLMOptions"),
           "`lm dpo`": ("spokenlm.lm.dpo", "DPOOptions"),
           "`ssl train`": ("spokenlm.ssl.train", "SSLTrainOptions"),
           "`asr train`": ("spokenlm.asr.ctc_train", "ASRTrainOptions"),
           "`joint speechlm train`, `joint slam train`": ("spokenlm.joint.speechlm_train",
                                                          "SpeechLMTrainOptions"),
           "`joint t2u train`": ("spokenlm.joint.t2u_train", "T2UTrainOptions")}


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows[cells[0]] = cells[1:]
    return rows


def test_table_states_each_recipes_defaults() -> None:
    rows = _rows()
    for name, (module, options) in RECIPES.items():
        t = _trainer(module, options)
        lr, betas, decay, schedule, steps, clip, precision = rows[name][:7]
        assert float(lr) == t.lr and betas == f"({t.beta1}, {t.beta2})", name
        assert float(decay) == t.weight_decay and float(clip) == t.clip_grad, name
        assert precision == t.precision, name
        assert steps == ("one epoch" if t.max_steps is None else str(t.max_steps)), name
        floor = f"cosine to {t.min_lr_ratio:g}"
        assert schedule == floor or (t.min_lr_ratio == 1.0 and schedule.startswith("constant"))
    assert _trainer("spokenlm.joint.slam_train", "SLAMTrainOptions") == \
        _trainer("spokenlm.joint.speechlm_train", "SpeechLMTrainOptions")


def test_vocoder_row_states_the_types_defaults() -> None:
    from spokenlm.vocoder.tasks import TASKS

    lr, betas, decay, schedule, steps, clip, precision = _rows()["`vocoder train`"][:7]
    t = _trainer("spokenlm.vocoder.train", "VocoderTrainOptions")
    hifigan, fast = (float(x.split()[0]) for x in lr.split(", "))
    assert (hifigan, fast) == (TASKS["hifigan"].default_lr, TASKS["fast"].default_lr)
    assert clip == f"none (hifigan), {TASKS['fast'].default_clip_grad} (fast)"
    assert TASKS["hifigan"].default_clip_grad == 0 and t.lr is None and t.clip_grad is None
    assert betas == f"({t.beta1}, {t.beta2})" and float(decay) == t.weight_decay
    assert schedule == f"x {t.lr_decay} per epoch, no warmup" and t.lr_schedule == "exponential"
    assert t.warmup_steps == 0 and steps == str(t.max_steps) and precision == t.precision
