"""25 Hz and 12.5 Hz runs end to end through the CLI (tokenize train --frame-rate ->
tokenize -> lm train -> vocoder train -> resynth / generate), and artifacts of different
rates refused with both named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from spokenlm.cli.main import main
from spokenlm.testing.audio import write_test_manifest, write_wav_folder


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(*argv: object) -> None:
    assert main([str(a) for a in argv]) == 0, argv


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fr")
    return write_test_manifest(root / "m.jsonl",
                               write_wav_folder(root / "wavs", n=4, seconds=(0.6, 0.9)))


def train_rate(manifest: Path, out: Path, rate: float) -> dict[str, Path]:
    tok, units = out / "tok", out / "units.jsonl"
    run("tokenize", "train", manifest, "--output", tok, "--encoder", "logmel",
        "--frame-rate", rate, "--n-units", 6, "--niter", 5, "--device", "cpu")
    run("tokenize", "run", manifest, "--tokenizer", tok, "--output", units, "--device", "cpu")
    run("lm", "train", units, "--output", out / "lm", "--size", "tiny", "--max-steps", 2,
        "--batch-size", 2, "--seq-len", 16, "--device", "cpu", "--tokenizer", tok)
    run("vocoder", "train", units, "--output", out / "voc", "--type", "fast", "--size", "tiny",
        "--max-steps", 2, "--batch-size", 2, "--segment-frames", 8, "--device", "cpu")
    return {"tok": tok, "units": units, "lm": out / "lm" / "final", "voc": out / "voc" / "final"}


@pytest.mark.parametrize("rate, hop", [(25.0, 640), (12.5, 1280)])
def test_low_rate_run_end_to_end(manifest: Path, tmp_path: Path, rate: float, hop: int) -> None:
    a = train_rate(manifest, tmp_path, rate)
    assert {r["frame_rate"] for r in rows(a["units"])} == {rate}
    assert json.loads((a["lm"] / "spokenlm_lm.json").read_text())["frame_rate"] == rate
    assert json.loads((a["voc"] / "config.json").read_text())["hop_length"] == hop

    run("resynth", manifest, "--tokenizer", a["tok"], "--vocoder", a["voc"], "--output",
        tmp_path / "resyn")
    for r in rows(tmp_path / "resyn" / "resynth.jsonl"):
        assert sf.info(tmp_path / "resyn" / r["path"]).frames == sum(r["durations"]) * hop

    run("generate", manifest, "--tokenizer", a["tok"], "--lm", a["lm"], "--vocoder", a["voc"],
        "--output", tmp_path / "gen", "--max-new-tokens", 5, "--prompt-seconds", 0.5)
    for r in rows(tmp_path / "gen" / "generations.jsonl"):
        assert round(r["prompt_seconds"] * 16000) == sum(r["prompt_durations"]) * hop
        full = sf.info(tmp_path / "gen" / r["path"]).frames
        assert full % hop == 0 and full >= sum(r["prompt_durations"]) * hop


def test_mixed_rates_are_refused_naming_both(manifest: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    a = train_rate(manifest, tmp_path / "r25", 25.0)
    tok50 = tmp_path / "tok50"
    run("tokenize", "train", manifest, "--output", tok50, "--encoder", "logmel",
        "--n-units", 6, "--niter", 5, "--device", "cpu")
    capsys.readouterr()
    assert main(["resynth", str(manifest), "--tokenizer", str(tok50), "--vocoder",
                 str(a["voc"]), "--output", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert f"tokenizer {tok50} works at 50 Hz (hop 320) but vocoder {a['voc']} at 25 Hz" in err
    assert main(["generate", str(manifest), "--tokenizer", str(tok50), "--lm", str(a["lm"]),
                 "--output", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert "25 Hz (hop 640)" in err and "50 Hz (hop 320)" in err and str(tok50) in err
    assert main(["tokenize", "train", str(manifest), "--output", str(tmp_path / "t"),
                 "--encoder", "logmel", "--frame-rate", "30", "--device", "cpu"]) == 1
    assert "whole hop" in capsys.readouterr().err
