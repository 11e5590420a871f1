"""Every eval command fails, saying why, when it keeps no item; bad rows of a results file are
skipped and reported; a metric that cannot be computed is null with a reason, never NaN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.asr import ASR, register_asr
from spokenlm.audio.load import save_wav
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.eval.skips import Skips
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest


@register_asr("skips-test")
def _fixed(arg: str | None) -> ASR:
    class Fixed(ASR):
        name = "skips-test"

        def transcribe(self, wav: np.ndarray) -> str:
            return "the dog runs"
    return Fixed()


def _strict_json(path: Path) -> dict:
    def reject(constant: str):
        raise AssertionError(f"{constant} in {path}")
    return json.loads(path.read_text(), parse_constant=reject)


def _broken_wavs(root: Path, n: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"bad{i}.wav" for i in range(n)]
    for p in paths:
        p.write_bytes(b"RIFF not really a wav")
    return paths


def test_skips_counts_reasons_and_requires_an_item() -> None:
    skips = Skips("resynthesis", "utterances")
    skips.add("unreadable audio", "x.wav: file not found; check the path")
    skips.add("unreadable audio", "y.wav: file not found; check the path")
    skips.add("no reference `text`", "u3")
    assert skips.total == 3
    assert skips.summary() == ("2 unreadable audio (first: x.wav: file not found), "
                               "1 no reference `text` (first: u3)")
    assert skips.report()["skipped_reasons"]["unreadable audio"] == {
        "count": 2, "first": "x.wav: file not found"}
    skips.require(1, "r.jsonl")  # something is left: fine
    with pytest.raises(InputError, match=r"r.jsonl: all 3 utterances skipped, so resynthesis "
                                         r"cannot be computed: 2 unreadable audio"):
        skips.require(0, "r.jsonl")
    with pytest.raises(InputError, match="r.jsonl: no utterances to evaluate"):
        Skips("resynthesis", "utterances").require(0, "r.jsonl")


# ---- every eval command: no item kept -> an error saying why ----------------------------


def test_abx_with_every_file_unreadable(tmp_path: Path, tokenizer_dir: Path) -> None:
    from spokenlm.eval.abx import evaluate_abx

    _broken_wavs(tmp_path / "wavs", 2)
    (tmp_path / "a.item").write_text("#file onset offset #phone prev-phone next-phone speaker\n"
                                     "bad0 0.0 0.1 A SIL B s1\nbad1 0.0 0.1 B SIL A s1\n")
    with pytest.raises(InputError, match=r"a.item: all 2 tokens skipped, so ABX cannot be "
                                         r"computed: 2 unreadable audio \(first: .*bad0.wav"):
        evaluate_abx(tokenizer=tokenizer_dir, item_file=tmp_path / "a.item",
                     audio_dir=tmp_path / "wavs", output=tmp_path / "abx.json")
    assert not (tmp_path / "abx.json").exists()


def test_abx_with_no_triplet(tmp_path: Path, tokenizer_dir: Path) -> None:
    from spokenlm.eval.abx import evaluate_abx

    save_wav(tmp_path / "wavs" / "u.wav", random_speech_like_wav(0.5))
    (tmp_path / "a.item").write_text("#file onset offset #phone prev-phone next-phone speaker\n"
                                     "u 0.0 0.2 A SIL B s1\n")  # one token: nothing to compare
    with pytest.raises(InputError, match="a.item: none of the 1 tokens forms an ABX triplet"):
        evaluate_abx(tokenizer=tokenizer_dir, item_file=tmp_path / "a.item",
                     audio_dir=tmp_path / "wavs", output=tmp_path / "abx.json")


def test_pnmi_with_no_labelled_utterance(tmp_path: Path) -> None:
    from spokenlm.eval.pnmi import evaluate_pnmi

    write_jsonl(tmp_path / "u.jsonl", [{"id": "x", "units": [1, 2]}, {"id": "y", "units": [1]}])
    write_jsonl(tmp_path / "l.jsonl", [{"id": "z", "intervals": [[0, 0.1, "A"]]}])
    with pytest.raises(InputError, match=r"u.jsonl: all 2 utterances skipped, so PNMI cannot "
                                         r"be computed: 2 id not in the labels file \(first: x\)"):
        evaluate_pnmi(units=tmp_path / "u.jsonl", labels=tmp_path / "l.jsonl",
                      output=tmp_path / "p.json")


def _benchmark_of_unreadable_audio(root: Path, prompt: bool) -> Path:
    wavs = _broken_wavs(root / "wavs", 3)
    write_test_manifest(root / "manifest.jsonl", wavs)
    write_jsonl(root / "items.jsonl", [{"id": "i0", "candidates": ["bad0", "bad1"], "answer": 0,
                                        "prompt": "bad2" if prompt else None}])
    return root


@pytest.mark.parametrize("name", ["spot_the_word", "acceptability", "story_cloze"])
def test_likelihood_benchmarks_with_every_item_unreadable(name: str, tmp_path: Path,
                                                         tokenizer_dir: Path,
                                                         lm_dir: Path) -> None:
    from spokenlm.eval.acceptability import evaluate_acceptability, evaluate_story_cloze
    from spokenlm.eval.spot_the_word import spot_the_word

    fn = {"spot_the_word": spot_the_word, "acceptability": evaluate_acceptability,
          "story_cloze": evaluate_story_cloze}[name]
    bench = _benchmark_of_unreadable_audio(tmp_path / "bench", prompt=name == "story_cloze")
    with pytest.raises(InputError, match=r"bench: all 1 items skipped, .* 1 unreadable audio "
                                         r"\(first: .*bad\d.wav: not readable as audio"):
        fn(benchmark=bench, tokenizer=tokenizer_dir, lm=lm_dir, output=tmp_path / "m.json")


def test_generation_with_no_usable_row(tmp_path: Path) -> None:
    from spokenlm.eval.generation import evaluate_generation

    write_jsonl(tmp_path / "generations.jsonl", [{"id": "g0"}, {"id": "g1", "units": "x"}])
    with pytest.raises(InputError, match=r"generations.jsonl: all 2 samples skipped, so "
                                         r"generation cannot be computed: 2 no integer `units`"):
        evaluate_generation(generations=tmp_path, output=tmp_path / "g.json")


def test_resynthesis_with_every_audio_unreadable(tmp_path: Path) -> None:
    from spokenlm.eval.resynthesis import evaluate_resynthesis

    bad = _broken_wavs(tmp_path, 1)[0]
    write_jsonl(tmp_path / "resynth.jsonl", [
        {"id": "a", "source": str(bad), "path": str(tmp_path / "gone.wav"), "text": "a dog"},
        {"id": "b", "source": str(bad), "path": str(bad), "text": "a cat"}])
    with pytest.raises(InputError, match=r"resynth.jsonl: all 2 utterances skipped, .*"
                                         r"2 unreadable resynthesised audio \(first: .*gone.wav: "
                                         r"file not found\)"):
        evaluate_resynthesis(resynth=tmp_path, asr="skips-test", output=tmp_path / "r.json")


def test_eval_all_fails_when_no_metric_is_computed(tmp_path: Path, capsys) -> None:
    from spokenlm.cli.main import main
    from spokenlm.eval.all import evaluate_all

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(InputError, match=r"run: no metric could be computed"):
        evaluate_all(run=run, asr="skips-test", build=False)
    assert (run / "eval" / "all.json").exists()  # the reasons are still written
    assert main(["eval", "all", str(run), "--asr", "skips-test", "--no-build"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "spokenlm eval all: error:" in err


# ---- bad rows of a results file: skipped with a report, never a crash -------------------


def test_resynthesis_skips_rows_with_bad_audio(tmp_path: Path) -> None:
    from spokenlm.eval.resynthesis import evaluate_resynthesis

    wav = save_wav(tmp_path / "a.wav", random_speech_like_wav(0.5))
    bad = _broken_wavs(tmp_path, 1)[0]
    write_jsonl(tmp_path / "resynth.jsonl", [
        {"id": "no-source", "source": str(tmp_path / "gone.wav"), "path": str(wav),
         "text": "the cat"},
        {"id": "a", "source": str(wav), "path": str(wav), "text": "the dog runs"},
        {"id": "broken", "source": str(wav), "path": str(bad), "text": "the cat"},
        {"id": "no-path", "source": str(wav), "text": "the cat"},
        {"id": "no-text", "source": str(wav), "path": str(wav)}])
    m = evaluate_resynthesis(resynth=tmp_path, asr="skips-test", output=tmp_path / "r.json")
    assert m["n_utterances"] == 1 and m["wer"] == 0.0 and m["source_wer"] == 0.0
    saved = _strict_json(tmp_path / "r.json")
    assert saved["n_skipped"] == 4
    reasons = saved["skipped_reasons"]
    assert reasons["unreadable source audio"]["count"] == 1
    assert "gone.wav: file not found" in reasons["unreadable source audio"]["first"]
    assert reasons["unreadable resynthesised audio"]["count"] == 2  # broken, no path
    assert reasons["no reference `text`"] == {"count": 1, "first": "no-text"}
    assert [r["id"] for r in read_jsonl(tmp_path / "r.transcripts.jsonl")] == ["a"]


def test_resynthesis_without_reference_words_is_null_with_a_reason(tmp_path: Path) -> None:
    from spokenlm.eval.resynthesis import evaluate_resynthesis

    wav = save_wav(tmp_path / "a.wav", random_speech_like_wav(0.5))
    write_jsonl(tmp_path / "resynth.jsonl", [{"id": "a", "source": str(wav), "path": str(wav),
                                              "text": "..."}])
    m = evaluate_resynthesis(resynth=tmp_path, asr="skips-test", output=tmp_path / "r.json")
    saved = _strict_json(tmp_path / "r.json")
    for key in ("wer", "cer", "source_wer", "source_cer"):
        assert m[key] is None and saved[key] is None
        assert saved[f"{key}_reason"] == "the reference texts have no words after normalisation"


def test_generation_skips_rows_with_bad_audio(tmp_path: Path) -> None:
    from spokenlm.eval.generation import evaluate_generation

    rows = []
    for i in range(3):
        wav = save_wav(tmp_path / f"g{i}.wav", random_speech_like_wav(0.5, seed=i))
        rows.append({"id": f"g{i}", "prompt_units": [1], "units": [2, 3, i], "path": str(wav),
                     "continuation_path": str(wav)})
    rows[1]["continuation_path"] = str(tmp_path / "gone.wav")
    rows.append({"id": "no-units", "path": str(wav)})
    write_jsonl(tmp_path / "generations.jsonl", rows)
    m = evaluate_generation(generations=tmp_path, asr="skips-test", output=tmp_path / "g.json")
    saved = _strict_json(tmp_path / "g.json")
    assert m["n_samples"] == 3 and saved["n_skipped"] == 1  # the row without units
    tr = saved["transcripts"]
    assert tr["n_samples"] == 2 and tr["n_skipped"] == 1
    assert "gone.wav: file not found" in tr["skipped_reasons"]["unreadable audio"]["first"]


def test_generation_metrics_of_one_sample_are_null_with_reasons(tmp_path: Path) -> None:
    from spokenlm.eval.generation import evaluate_generation

    write_jsonl(tmp_path / "generations.jsonl", [{"id": "g", "prompt_units": [1], "units": [2]}])
    evaluate_generation(generations=tmp_path, output=tmp_path / "g.json")
    units = _strict_json(tmp_path / "g.json")["units"]
    assert units["self_bleu2"] is None and units["self_bleu2_reason"] == "needs at least 2 samples"
    assert units["vert"] is None and "vert_reason" in units
    assert units["distinct_2"] is None and units["distinct_2_reason"] == "no sample has 2 tokens"


def test_eval_all_reports_a_failed_metric_and_runs_the_others(tmp_path: Path) -> None:
    from spokenlm.eval.all import evaluate_all

    run = tmp_path / "run"
    wav = save_wav(run / "a.wav", random_speech_like_wav(0.5))
    write_jsonl(run / "resynth" / "resynth.jsonl", [
        {"id": "a", "source": str(wav), "path": str(wav), "text": "the dog runs"}])
    write_jsonl(run / "generate" / "generations.jsonl", [{"id": "g"}])  # no units: fails
    summary = evaluate_all(run=run, asr="skips-test", build=False)
    res = summary["results"]
    assert res["resynthesis"]["wer"] == 0.0
    assert "all 1 samples skipped" in res["generation"]["skipped"]
    assert any(r["metric"] == "generation unit VERT" and "all 1 samples skipped" in r["skipped"]
               for r in summary["table"])
    _strict_json(run / "eval" / "all.json")


def test_eval_all_reports_a_null_metric_with_its_reason(tmp_path: Path) -> None:
    from spokenlm.eval.all import evaluate_all

    run = tmp_path / "run"
    write_jsonl(run / "generate" / "generations.jsonl", [{"id": "g", "units": [1, 2]}])
    summary = evaluate_all(run=run, asr="skips-test", build=False)
    row = next(r for r in summary["table"] if r["metric"] == "generation unit self-BLEU2")
    assert row == {"metric": "generation unit self-BLEU2", "skipped": "needs at least 2 samples"}
