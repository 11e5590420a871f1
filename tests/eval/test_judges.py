"""The judges' options are defined once: every command that transcribes or compares voices
offers the same ``--asr`` / ``--speaker-encoder`` / ``--text-lm`` defaults and help."""

from __future__ import annotations

import dataclasses

from spokenlm.eval.all import EvalAllOptions
from spokenlm.eval.generation import GenerationEvalOptions
from spokenlm.eval.judges import AUTO
from spokenlm.eval.resynthesis import ResynthEvalOptions
from spokenlm.eval.speaker import AUTO as SPEAKER_AUTO


def _field(cls: type, name: str) -> dataclasses.Field:
    return {f.name: f for f in dataclasses.fields(cls)}[name]


def test_asr_and_speaker_encoder_options_are_one_definition() -> None:
    for name in ("asr", "speaker_encoder"):
        a, b = _field(EvalAllOptions, name), _field(ResynthEvalOptions, name)
        assert a.default == b.default == AUTO
        assert a.metadata == b.metadata
    gen = _field(GenerationEvalOptions, "asr")
    assert gen.default == AUTO
    assert "none to skip transcripts" in str(gen.metadata)
    assert _field(EvalAllOptions, "text_lm").metadata == _field(GenerationEvalOptions,
                                                                "text_lm").metadata
    assert SPEAKER_AUTO is AUTO
