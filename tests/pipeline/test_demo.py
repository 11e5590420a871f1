"""End to end: every stage of the demo at tiny scale, then the artifacts a user checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import transformers

from spokenlm.cli.main import main as cli
from spokenlm.pipeline.demo import demo
from spokenlm.pipeline.index import read_index

TINY = dict(n_utterances=36, n_speakers=5, voice_pairs=8, n_units=16, lm_size="tiny", lm_steps=30,
            lm_batch_size=4, lm_seq_len=64, vocoder_steps=10, vocoder_size="tiny",
            n_prompts=2, n_resynth=2, n_pairs=4, seed=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    demo(output=out, **TINY)
    return out


def test_demo_writes_metrics_and_report(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tokenizer"]["n_units"] == 16
    assert metrics["tokenizer"]["frame_rate_hz"] == 50.0
    tok = json.loads((run / "tokenizer" / "config.json").read_text())  # learnt from voice pairs
    assert tok["transform"]["kind"] == "correspondence" and tok["dim"] == tok["transform"]["dims"]
    assert len((run / "corpus" / "pairs.jsonl").read_text().splitlines()) == 8
    assert np.isfinite(metrics["lm"]["valid_loss"])
    assert 0.0 <= metrics["spot_the_word"]["accuracy_sum"] <= 1.0
    assert metrics["spot_the_word"]["n_items"] == 4
    assert 0.0 <= metrics["acceptability"]["accuracy_sum"] <= 1.0
    assert metrics["acceptability"]["n_items"] == 4
    assert json.loads((run / "bench" / "acceptability.json").read_text())["metric"] == \
        "acceptability"
    assert set(metrics["timings_s"]) >= {"corpus", "tokenizer", "tokenize", "lm", "vocoder",
                                         "resynth", "generate", "spot_the_word_eval",
                                         "acceptability_eval"}
    html = (run / "report.html").read_text()
    assert "<audio" in html and "loss.png" in html and "acceptability" in html


def test_generated_audio_is_valid_and_of_expected_length(run: Path) -> None:
    rows = read_index(run / "generate" / "generations.jsonl")
    assert len(rows) == 2
    for row in rows:
        wav, sr = sf.read(row["path"])
        assert sr == 16000 and wav.ndim == 1
        assert abs(len(wav) / sr - row["prompt_seconds"] - row["continuation_seconds"]) < 1e-3
        assert row["continuation_seconds"] > 0 and np.abs(wav).max() > 1e-3


def test_lm_loads_with_plain_transformers(run: Path) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(run / "lm" / "final")
    assert model.config.vocab_size >= 16 + 3


def test_rerun_resumes_without_redoing_steps(run: Path) -> None:
    before = json.loads((run / "timings.json").read_text())
    demo(output=run, **TINY)
    assert json.loads((run / "timings.json").read_text()) == before


def test_each_step_runs_alone_from_the_cli(run: Path, tmp_path: Path) -> None:
    assert cli(["resynth", str(run / "corpus" / "test.jsonl"), "--tokenizer", str(run / "tokenizer"),
                "--vocoder", str(run / "vocoder" / "final"), "--output", str(tmp_path / "r"),
                "--limit", "1"]) == 0
    assert len(list((tmp_path / "r").glob("*.wav"))) == 1
    assert cli(["eval", "spot-the-word", str(run / "bench" / "spot_the_word"), "--tokenizer",
                str(run / "tokenizer"), "--lm", str(run / "lm" / "final"),
                "--output", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["n_items"] == 4


def test_tokenizer_options_and_twist_step(run: Path, tmp_path: Path) -> None:
    """frame_rate / cmn reach the tokenizer, and twist_steps adds a text LM step that the
    unit LM warm-starts from (the corpus is reused: its step is skipped)."""
    import shutil

    from spokenlm.pipeline import demo_steps
    from spokenlm.pipeline.demo import DemoOptions

    out = tmp_path / "run"
    shutil.copytree(run / "corpus", out / "corpus")
    opts = DemoOptions(**{**TINY, "output": out, "frame_rate": 25.0, "cmn": True,
                          "twist_steps": 3, "lm_steps": 3})
    steps = demo_steps.steps(opts)
    names = [name for name, _, _ in steps]
    assert names.index("tokenize") < names.index("text_lm") < names.index("lm")
    assert "text_lm" not in [n for n, _, _ in demo_steps.steps(DemoOptions(**TINY))]
    for name, fn, marker in steps:
        if name in ("tokenizer", "tokenize", "text_lm", "lm"):
            fn(opts)
            assert marker.exists(), name
    cfg = json.loads((out / "tokenizer" / "config.json").read_text())
    assert cfg["encoder"]["cmn"] is True and cfg["encoder"]["frame_rate"] == 25.0
    assert json.loads((out / "units" / "train.jsonl").open().readline())["frame_rate"] == 25.0
    lm_opts = json.loads((out / "lm" / "options.json").read_text())
    init_from = (out / "lm" / lm_opts["init_from"]).resolve()  # stored relative to lm/
    assert init_from == (out / "text_lm" / "final").resolve()
