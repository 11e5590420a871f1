"""``resynth`` and ``generate`` on long recordings: files over ``STREAM_ABOVE_S`` (lowered
here to 2 s) are never loaded whole, their units equal the one-piece units (MFCC
tokenizer), and their speech is written chunk by chunk with the one-piece length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spokenlm.audio import chunking
from spokenlm.audio.load import load_row, save_wav
from spokenlm.common.files import write_jsonl
from spokenlm.pipeline import generate as generate_module
from spokenlm.pipeline import resynth as resynth_module
from spokenlm.pipeline.generate import generate
from spokenlm.pipeline.index import read_index
from spokenlm.pipeline.resynth import resynth
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.vocoder import save_tiny_vocoder
from spokenlm.tokenize import tokenizer as tokenizer_module
from spokenlm.tokenize.tokenizer import SpeechTokenizer


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("a long file was loaded whole")


@pytest.fixture
def long_wav(tmp_path: Path) -> Path:
    return save_wav(tmp_path / "src" / "long.wav", random_speech_like_wav(4.5, seed=5))


@pytest.mark.parametrize("kind", ["hifigan", "fast"])
def test_resynth_streams_long_files(tmp_path: Path, long_wav: Path, tokenizer_dir: Path,
                                    kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vocoder = save_tiny_vocoder(tmp_path / f"voc-{kind}", type=kind, n_units=8)
    manifest = write_jsonl(tmp_path / "m.jsonl", [
        {"id": "whole", "path": str(long_wav)},
        {"id": "seg", "path": str(long_wav), "start": 0.5, "duration": 3.0}])
    one = read_index(resynth(input=manifest, tokenizer=tokenizer_dir, vocoder=vocoder,
                             output=tmp_path / "one") / "resynth.jsonl")
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    monkeypatch.setattr(resynth_module, "load_row", _refuse)
    monkeypatch.setattr(tokenizer_module, "load_row", _refuse)
    streamed = read_index(resynth(input=manifest, tokenizer=tokenizer_dir, vocoder=vocoder,
                                  output=tmp_path / "streamed") / "resynth.jsonl")
    for a, b in zip(one, streamed):
        assert a["units"] == b["units"] and a["durations"] == b["durations"]
        assert a["duration_in"] == b["duration_in"] and a["duration_out"] == b["duration_out"]
        x, _ = sf.read(a["path"], dtype="int16")
        y, _ = sf.read(b["path"], dtype="int16")
        assert len(x) == len(y) == sum(b["durations"]) * 320
        if kind == "hifigan":  # exact to one 16-bit step
            assert np.abs(x.astype(int) - y).max() <= 1
    assert streamed[1]["source_start"] == 0.5


def test_generate_reads_only_the_prompt_of_a_long_file(
        tmp_path: Path, long_wav: Path, tokenizer_dir: Path, lm_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    vocoder = save_tiny_vocoder(tmp_path / "voc", type="hifigan", n_units=8)
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"id": "long", "path": str(long_wav)}])
    kwargs = dict(prompt=manifest, tokenizer=tokenizer_dir, lm=lm_dir, vocoder=vocoder,
                  prompt_seconds=1.5, max_new_tokens=40, stop_at_eos=False, seed=1)
    one = read_index(generate(output=tmp_path / "one", **kwargs) / "generations.jsonl")
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    seen: list[dict] = []
    monkeypatch.setattr(generate_module, "load_row",
                        lambda row, **kw: seen.append(row) or load_row(row, **kw))
    streamed = read_index(generate(output=tmp_path / "streamed", **kwargs)
                          / "generations.jsonl")
    assert seen and all(r["duration"] <= 2.5 for r in seen)  # the prompt + 1 s, not 4.5 s
    assert one[0]["prompt_units"] == streamed[0]["prompt_units"]
    assert one[0]["units"] == streamed[0]["units"]
    assert one[0]["prompt_seconds"] + one[0]["continuation_seconds"] > 2.0  # speech streamed
    for key in ("path", "continuation_path"):
        x, _ = sf.read(one[0][key], dtype="int16")
        y, _ = sf.read(streamed[0][key], dtype="int16")
        assert len(x) == len(y) and np.abs(x.astype(int) - y).max() <= 1
    assert streamed[0]["prompt_seconds"] == one[0]["prompt_seconds"]


def test_generate_streams_a_long_prompt(tmp_path: Path, long_wav: Path, tokenizer_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A prompt itself over the threshold is tokenized chunk by chunk (MFCC: exactly)."""
    tok = SpeechTokenizer.from_pretrained(tokenizer_dir)
    row = {"id": "long", "path": str(long_wav)}
    whole = tok.encode(load_row(row)[:int(3.2 * 16000)])
    monkeypatch.setattr(chunking, "STREAM_ABOVE_S", 2.0)
    monkeypatch.setattr(generate_module, "load_row", _refuse)
    units = generate_module._prompt_units(tok, row, 3.2)
    np.testing.assert_array_equal(units.units, whole.units)
