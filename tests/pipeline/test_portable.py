"""A run directory is portable: built from one working directory with relative paths (as a
new user types them), moved elsewhere and evaluated from a third directory, it gives the
same metrics JSON as in place; a copy that lost its audio fails loudly instead of WER NaN."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from spokenlm.asr.ctc_model import CTCConfig, CTCModel
from spokenlm.asr.text import Vocab
from spokenlm.audio.manifest import make_manifest
from spokenlm.cli.main import main as cli
from spokenlm.common.errors import InputError
from spokenlm.eval.generation import evaluate_generation
from spokenlm.eval.resynthesis import evaluate_resynthesis
from spokenlm.lm.model import UnitLM
from spokenlm.pipeline.generate import generate
from spokenlm.pipeline.index import read_index
from spokenlm.pipeline.resynth import resynth
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.testing.vocoder import save_tiny_vocoder
from spokenlm.tokenize.run import tokenize_manifest
from spokenlm.tokenize.train import train_tokenizer
from spokenlm.vocoder.data import load_utterances

TEXTS = ["the dog runs", "a cat sees the dog", "dogs run"]
N_UNITS = 8
OUTPUTS = ("resynthesis.json", "resynthesis.transcripts.jsonl", "generation.json",
           "generation.transcripts.jsonl")


def _build_run(made: Path) -> None:
    """Every stage into ``made/run``, run from ``made`` with relative paths."""
    wavs = write_wav_folder(made / "run" / "corpus" / "wavs", n=3, seed=5, seconds=(0.5, 0.8))
    for wav, text in zip(wavs, TEXTS):
        wav.with_suffix(".txt").write_text(text)
    manifest = make_manifest(root=Path("run/corpus/wavs"), output=Path("run/corpus/test.jsonl"),
                             speaker_from="none", jobs=1)
    tok = train_tokenizer(manifest=manifest, output=Path("run/tokenizer"), n_units=N_UNITS,
                          niter=5, device="cpu")
    tokenize_manifest(manifest=manifest, tokenizer=tok, output=Path("run/units/test.jsonl"),
                      device="cpu")
    lm = Path("run/lm/final")
    UnitLM.build(N_UNITS, "tiny", seed=0, tokenizer=str(tok)).save_pretrained(lm)
    vocoder = save_tiny_vocoder(Path("run/vocoder/final"), n_units=N_UNITS)
    resynth(input=manifest, tokenizer=tok, vocoder=vocoder, output=Path("run/resynth"))
    generate(prompt=manifest, tokenizer=tok, lm=lm, vocoder=vocoder,
             output=Path("run/generate"), prompt_seconds=0.3, max_new_tokens=6, seed=1)


def _evaluate(run: Path, asr: str) -> dict[str, str]:
    """``eval resynthesis`` and ``eval generation`` of ``run`` (as the CLI runs them: exit
    code 0), and the text of each output file."""
    assert cli(["eval", "resynthesis", str(run / "resynth"), "--asr", asr,
                "--output", str(run / "eval" / "resynthesis.json")]) == 0
    assert cli(["eval", "generation", str(run / "generate"), "--lm", str(run / "lm" / "final"),
                "--asr", asr, "--output", str(run / "eval" / "generation.json")]) == 0
    return {name: (run / "eval" / name).read_text() for name in OUTPUTS}


@pytest.fixture()
def asr(tmp_path: Path) -> str:
    """A tiny random CTC character model beside the runs (outside them: stored absolute)."""
    torch.manual_seed(0)
    vocab = Vocab(["<blank>", "|", *"acdegehnorstu"], "chars")
    path = CTCModel(CTCConfig(adapter_layers=1, adapter_dim=16, adapter_heads=2),
                    vocab).save_pretrained(tmp_path / "shared" / "asr")
    return f"spokenlm-ctc:{path}"


def test_a_moved_run_evaluated_from_elsewhere_gives_the_same_metrics(
        tmp_path: Path, asr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made = tmp_path / "made"
    made.mkdir()
    monkeypatch.chdir(made)
    _build_run(made)
    in_place = _evaluate(Path("run"), asr)
    metrics = json.loads(in_place["resynthesis.json"])
    assert metrics["n_utterances"] == 3 and metrics["n_skipped"] == 0
    assert metrics["wer"] is not None and metrics["source_wer"] is not None
    generation = json.loads(in_place["generation.json"])
    assert generation["n_samples"] == 3 and generation["transcripts"]["n_samples"] == 3
    assert metrics["inputs"]["resynth"] == "../resynth"  # relative to the metrics file
    assert metrics["inputs"]["asr"] == asr  # outside the run: as given (absolute)

    moved = tmp_path / "elsewhere" / "deeper" / "moved_run"
    moved.parent.mkdir(parents=True)
    shutil.move(str(made / "run"), str(moved))
    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.chdir(third)
    rel = Path("..") / "elsewhere" / "deeper" / "moved_run"
    assert _evaluate(rel, asr) == in_place  # identical metrics and transcripts

    # every reader finds the moved files: index rows, units' audio, the LM's tokenizer
    rows = read_index(moved / "resynth" / "resynth.jsonl")
    assert all(Path(r[k]).is_file() and moved in Path(r[k]).parents
               for r in rows for k in ("path", "source"))
    assert UnitLM.from_pretrained(moved / "lm" / "final").tokenizer == str(moved / "tokenizer")
    assert len(load_utterances(moved / "units" / "test.jsonl")) == 3
    on_disk = (moved / "generate" / "generations.jsonl").read_text()
    assert str(made) not in on_disk and str(moved) not in on_disk


def test_a_run_that_lost_its_audio_is_an_error_naming_the_file(
        tmp_path: Path, wavs: list[Path], tokenizer_dir: Path, lm_dir: Path, vocoder_dir: Path,
        asr: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    manifest = write_test_manifest(tmp_path / "run" / "m.jsonl", wavs[:3], text=TEXTS)
    resynth(input=manifest, tokenizer=tokenizer_dir, vocoder=vocoder_dir,
            output=tmp_path / "run" / "resynth")
    generate(prompt=manifest, tokenizer=tokenizer_dir, lm=lm_dir, vocoder=vocoder_dir,
             output=tmp_path / "run" / "generate", prompt_seconds=0.2, max_new_tokens=4)
    lonely = tmp_path / "lonely"  # copies without the corpus and without their own wavs
    for name in ("resynth", "generate"):
        shutil.copytree(tmp_path / "run" / name, lonely / name,
                        ignore=shutil.ignore_patterns("*.wav"))
    monkeypatch.chdir(tmp_path)
    assert cli(["eval", "resynthesis", "lonely/resynth", "--asr", asr,
                "--output", "lonely/r.json"]) == 1
    err = capsys.readouterr().err
    assert "all 3 utterances skipped" in err and "file not found" in err
    assert "lonely/resynth" in err and not (lonely / "r.json").exists()
    with pytest.raises(InputError, match="all 3 samples skipped.*file not found"):
        evaluate_generation(generations=lonely / "generate", asr=asr, output=lonely / "g.json")
    with pytest.raises(InputError, match="file not found"):  # and with the source left out
        evaluate_resynthesis(resynth=lonely / "resynth", asr=asr, source=False,
                             output=lonely / "r.json")
