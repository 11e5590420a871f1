"""The released benchmarks: each loader on a tiny replica of its layout, and spokenlm's
decisions against re-implementations of the reference scorers (``release_oracles``) on the
same tiny LM and files, with summed and length-normalised log-likelihood."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from release_oracles import (SlamkitScorer, salmon_pairs, slamkit_pairs,
                             write_submission_file, zr_lexical, zr_prosody, zr_syntactic)

from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_json, read_jsonl
from spokenlm.eval.benchmark import Benchmark
from spokenlm.eval.official import evaluate_official
from spokenlm.eval.releases import require_release
from spokenlm.eval.releases.salmon import PARTS, load_salmon
from spokenlm.testing.releases import (LEXICAL_FREQUENCIES, write_prosaudit, write_salmon,
                                       write_slm21_dataset, write_slm21_lexical,
                                       write_slm21_syntactic, write_storycloze)

SCORES = (("sum", False), ("mean", True))  # spokenlm key, slamkit's mean_nll


@pytest.fixture(scope="module")
def oracle(tokenizer_dir: Path, lm_dir: Path) -> SlamkitScorer:
    return SlamkitScorer.from_spokenlm(tokenizer_dir, lm_dir)


def _official(root: Path, out: Path, tokenizer_dir: Path, lm_dir: Path) -> tuple[dict, list]:
    metrics = evaluate_official(benchmark=root, tokenizer=tokenizer_dir, lm=lm_dir,
                                output=out, device="cpu")
    return metrics, read_jsonl(out.with_suffix(".items.jsonl"))


def _gold_rows(root: Path) -> list[dict]:
    with open(root / "gold.csv", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- loaders on replicas


@pytest.mark.parametrize("build, kind, n_items, subsets", [
    (write_slm21_lexical, "spot_the_word", 10, {"oov", "1-5", "6-20", "21-100", ">100"}),
    (write_slm21_syntactic, "acceptability", 12, {"anaphor_agreement",
                                                   "filler_gap_dependency", "island_effects"}),
    (write_prosaudit, "prosaudit", 12, {"protosyntax", "lexical"}),
    (write_storycloze, "story_cloze", 6, {"sSC"}),
    (write_salmon, "salmon", 24, set(PARTS)),
])
def test_benchmark_load_reads_each_released_layout(tmp_path: Path, build, kind: str,
                                                   n_items: int, subsets: set) -> None:
    root = build(tmp_path / "sSC")
    bench = Benchmark.load(root)
    assert bench.kind == kind and len(bench.items) == n_items
    assert {i["subset"] for i in bench.items} == subsets
    for item in bench.items:
        assert item["answer"] == 0 and item["prompt"] is None and len(item["candidates"]) == 2
        assert all(Path(bench.audio[a]["path"]).is_file() for a in item["candidates"])


def test_lexical_pairs_words_with_their_pseudo_words_by_id_and_voice(tmp_path: Path) -> None:
    root = write_slm21_lexical(tmp_path / "dev")
    rows = {r["filename"]: r for r in _gold_rows(root)}
    release = require_release(root)
    for item in release.items:
        word, nonword = (rows[a] for a in item["candidates"])
        assert (word["correct"], nonword["correct"]) == ("1", "0")
        assert word["id"] == nonword["id"] == item["pair_id"]
        assert word["voice"] == nonword["voice"] == item["voice"]
    bands = {i["pair_id"]: i["band"] for i in release.items}
    assert bands == {"1": "oov", "2": "1-5", "3": "6-20", "4": "21-100", "5": ">100"}


def test_storycloze_numbered_and_nested_layouts(tmp_path: Path) -> None:
    numbered = require_release(write_storycloze(tmp_path / "num", naming="numbered"))
    assert [i["candidates"] for i in numbered.items[:2]] == [["0_story", "1_story"],
                                                              ["2_story", "3_story"]]
    write_storycloze(tmp_path / "both" / "sSC", n_stories=2)
    write_storycloze(tmp_path / "both" / "tSC", n_stories=3, seed=1)
    nested = require_release(tmp_path / "both")
    assert {i["subset"] for i in nested.items} == {"sSC", "tSC"} and len(nested.items) == 5
    assert nested.items[0]["candidates"] == ["sSC/0_correct", "sSC/0_incorrect"]


def test_salmon_parts_and_single_part_folder(tmp_path: Path) -> None:
    root = write_salmon(tmp_path / "salmon", n_samples=2)
    assert len(load_salmon(root, ["rir_consistency/", "bg_alignment"]).items) == 4
    part = load_salmon(root / "gender_consistency")
    assert [i["candidates"] for i in part.items] == [
        ["gender_consistency/sample_0_0", "gender_consistency/sample_0_1"],
        ["gender_consistency/sample_1_0", "gender_consistency/sample_1_1"]]


# ------------------------------------------------------------------ clear errors


def _extra_wav(root: Path) -> None:
    shutil.copy(next(root.glob("*.wav")), root / "zzUnknownFile.wav")


def _drop_wav(root: Path) -> None:
    next(root.glob("*.wav")).unlink()


def _swap_bad_rows(root: Path) -> None:
    rows = _gold_rows(root)
    bad = [i for i, r in enumerate(rows) if r["correct"] == "0"]
    rows[bad[0]], rows[bad[2]] = rows[bad[2]], rows[bad[0]]
    with open(root / "gold.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("build, corrupt, message", [
    (write_slm21_lexical, _extra_wav, "gold.csv does not name"),
    (write_slm21_lexical, _drop_wav, "named in gold.csv are missing"),
    (write_slm21_lexical, lambda r: (r / "notes.pdf").write_text("x"), "does not name"),
    (write_slm21_syntactic, _swap_bad_rows, "by row order"),
    (write_storycloze, lambda r: (r / "0_correct.wav").unlink(), "story 0 has the files"),
    (write_storycloze, lambda r: shutil.copy(r / "1_correct.wav", r / "1_correct_v2.wav"),
     "story 1 has the files"),
    (write_storycloze, lambda r: (r / "5_correct.flac").write_text("x"), "is not a wav"),
    (lambda p: write_storycloze(p, naming="numbered"), lambda r: (r / "0_story.wav").unlink(),
     "odd number"),
    (write_salmon, lambda r: (r / "extra_part").mkdir(), "not a SALMon part"),
    (write_salmon, lambda r: shutil.rmtree(r / "rir_consistency"), "part rir_consistency/ is "
     "missing"),
    (write_salmon, lambda r: (r / "bg_alignment" / "sample_1_1.wav").unlink(),
     "sample 1 has only"),
    (write_salmon, lambda r: shutil.copy(r / "bg_alignment" / "sample_0_0.wav",
                                         r / "bg_alignment" / "take2.wav"),
     "not a SALMon sample"),
])
def test_unknown_or_missing_files_are_clear_errors(tmp_path: Path, build, corrupt,
                                                   message: str) -> None:
    root = build(tmp_path / "bench")
    corrupt(root)
    with pytest.raises(InputError, match=message):
        require_release(root)


def test_dataset_root_and_unknown_folders_say_what_to_pass(tmp_path: Path) -> None:
    root = write_slm21_dataset(tmp_path / "zr")
    with pytest.raises(InputError, match=r"dataset root; pass one of its folders \(lexical/dev, "
                                         r"syntactic/dev\)"):
        Benchmark.load(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a released benchmark layout"):
        require_release(tmp_path / "empty")


# --------------------------------------------------- decisions against the oracles


def test_slm21_lexical_matches_the_zerospeech_tools(tmp_path: Path, tokenizer_dir: Path,
                                                    lm_dir: Path, oracle: SlamkitScorer) -> None:
    root = write_slm21_lexical(tmp_path / "lexical" / "dev")
    metrics, rows = _official(root, tmp_path / "lexical.json", tokenizer_dir, lm_dir)
    assert metrics["metric"] == "spot_the_word" and metrics["n_items"] == 10
    assert any(r["decision_sum"] == r["decision_mean"] == 0.5 for r in rows)  # the copied wav
    for key, mean_nll in SCORES:
        scores = oracle.file_scores(sorted(root.glob("*.wav")), mean_nll)
        ref = zr_lexical(root / "gold.csv", write_submission_file(tmp_path / f"{key}.txt",
                                                                  scores))
        assert {r["id"]: r[f"decision_{key}"] for r in rows} == \
            {f"{i}_{v}": d for (i, v), d in ref["pairs"].items()}
        official = metrics["official"][key]
        assert official["score"] == pytest.approx(ref["all"])
        assert official["in_vocab"] == pytest.approx(ref["invocab"])
        assert official["oov"] == pytest.approx(ref["by_frequency"]["oov"][1])
        assert {k: (v["n"], pytest.approx(v["score"])) for k, v in
                official["by_frequency"].items()} == ref["by_frequency"]
        assert {int(k): (v["n"], pytest.approx(v["score"])) for k, v in
                official["by_length"].items()} == ref["by_length"]
    assert len(metrics["official"]["sum"]["by_frequency"]) == len(LEXICAL_FREQUENCIES)


def test_slm21_syntactic_matches_the_zerospeech_tools_and_slamkit(
        tmp_path: Path, tokenizer_dir: Path, lm_dir: Path, oracle: SlamkitScorer) -> None:
    root = write_slm21_syntactic(tmp_path / "syntactic" / "dev")
    metrics, rows = _official(root, tmp_path / "syntactic.json", tokenizer_dir, lm_dir)
    gold = _gold_rows(root)
    good = [r for r in gold if r["correct"] == "1"]
    bad = [r for r in gold if r["correct"] == "0"]
    pairs = [(root / f"{g['filename']}.wav", root / f"{b['filename']}.wav")
             for g, b in zip(good, bad)]
    for key, mean_nll in SCORES:
        scores = oracle.file_scores(sorted(root.glob("*.wav")), mean_nll)
        ref = zr_syntactic(root / "gold.csv", write_submission_file(tmp_path / f"{key}.txt",
                                                                    scores))
        assert {r["id"]: r[f"decision_{key}"] for r in rows} == \
            {f"{i}_{v}": d for (i, v), d in ref["pairs"].items()}
        assert metrics["official"][key]["score"] == pytest.approx(ref["all"])
        assert {k: (v["n"], pytest.approx(v["score"])) for k, v in
                metrics["official"][key]["by_type"].items()} == ref["by_type"]
        # slamkit's sBLIMP: the mean over the (correct, incorrect) file pairs
        slamkit = oracle.modelling_metric(pairs, mean_nll, batch_size=4)
        assert [r[f"decision_{key}"] for r in rows] == slamkit
        assert metrics[f"accuracy_{key}"] == pytest.approx(sum(slamkit) / len(slamkit))


def test_prosaudit_matches_the_zerospeech_prosody_task(tmp_path: Path, tokenizer_dir: Path,
                                                        lm_dir: Path,
                                                        oracle: SlamkitScorer) -> None:
    root = write_prosaudit(tmp_path / "english" / "dev")
    metrics, rows = _official(root, tmp_path / "prosaudit.json", tokenizer_dir, lm_dir)
    assert metrics["metric"] == "prosaudit"
    for key, mean_nll in SCORES:
        scores = oracle.file_scores(sorted(root.glob("*.wav")), mean_nll)
        ref = zr_prosody(root / "gold.csv", write_submission_file(tmp_path / f"{key}.txt",
                                                                  scores))
        assert {r["id"]: r[f"decision_{key}"] for r in rows} == \
            {f"{i}_{v}": d for (i, v), d in ref["pairs"].items()}
        assert {k: (v["n"], pytest.approx(v["score"])) for k, v in
                metrics["official"][key]["by_type"].items()} == ref["by_type"]
        assert set(ref["by_type"]) == {"lexical", "protosyntax"}


@pytest.mark.parametrize("layout", ["labelled", "numbered", "nested"])
def test_storycloze_matches_slamkit(tmp_path: Path, tokenizer_dir: Path, lm_dir: Path,
                                    oracle: SlamkitScorer, layout: str) -> None:
    if layout == "nested":
        root = tmp_path / "sc"
        write_storycloze(root / "sSC", n_stories=3)
        write_storycloze(root / "tSC", n_stories=3, seed=1)
    else:
        root = write_storycloze(tmp_path / "sSC", n_stories=6, naming=layout)
    metrics, rows = _official(root, tmp_path / "sc.json", tokenizer_dir, lm_dir)
    pairs = slamkit_pairs(root, "_", subfolder=layout == "nested")
    assert [[Path(p).stem for p in pair] for pair in pairs] == \
        [[c.split("/")[-1] for c in r["candidates"]] for r in rows]
    for key, mean_nll in SCORES:
        ref = oracle.modelling_metric(pairs, mean_nll, batch_size=3)
        assert [r[f"decision_{key}"] for r in rows] == ref
        assert metrics["official"][key]["score"] == pytest.approx(sum(ref) / len(ref))
        assert metrics[f"accuracy_{key}"] == pytest.approx(sum(ref) / len(ref))


def test_eval_salmon_cli_matches_slamkit(tmp_path: Path, tokenizer_dir: Path, lm_dir: Path,
                                         oracle: SlamkitScorer) -> None:
    root = write_salmon(tmp_path / "salmon_benchmark", parts=["speaker_consistency",
                                                              "bg_alignment"], n_samples=4)
    out = tmp_path / "eval" / "salmon.json"
    assert main(["eval", "salmon", str(root), "--tokenizer", str(tokenizer_dir), "--lm",
                 str(lm_dir), "--output", str(out), "--device", "cpu",
                 "--parts", "speaker_consistency", "bg_alignment"]) == 0
    metrics = read_json(out)
    rows = read_jsonl(out.with_suffix(".items.jsonl"))
    assert metrics["metric"] == "salmon" and metrics["n_items"] == 8
    for key, mean_nll in SCORES:
        for part in ("speaker_consistency", "bg_alignment"):
            pairs = salmon_pairs(root, part)
            ref = oracle.modelling_metric(pairs, mean_nll)
            assert [r[f"decision_{key}"] for r in rows if r["subset"] == part] == ref
            assert metrics["official"][key]["by_part"][part]["score"] == \
                pytest.approx(sum(ref) / len(ref))
        assert set(metrics["official"][key]["by_group"]) == {"acoustic_consistency",
                                                             "semantic_acoustic_alignment"}
    # all parts by default: the six it lacks are named
    with pytest.raises(InputError, match=r"part gender_consistency/ is missing \(6 of 8"):
        evaluate_official(benchmark=root, tokenizer=tokenizer_dir, lm=lm_dir,
                          output=tmp_path / "all.json")


@pytest.mark.parametrize("family", ["slam", "twist"])
def test_released_lms_are_scored_in_their_own_convention(tmp_path: Path, tokenizer_dir: Path,
                                                         family: str) -> None:
    """A Slam checkpoint as slamkit scores it (``<S> units <S>``, PAD 0, units at +2); a TWIST
    one as SALMon's ``SLMInferenceModel`` scores TWIST (offset units, no BOS / EOS)."""
    from spokenlm.eval.salmon import evaluate_salmon
    from spokenlm.testing.released import save_tiny_slam, save_tiny_twist

    if family == "slam":
        lm_dir, model = save_tiny_slam(tmp_path / "slam", n_units=8, seed=3)
        oracle = SlamkitScorer.from_slamkit(tokenizer_dir, lm_dir, model)
    else:
        lm_dir, model = save_tiny_twist(tmp_path / "twist", family="llama", n_units=8, seed=3)
        oracle = SlamkitScorer.salmon_twist(tokenizer_dir, lm_dir, model)
    root = write_salmon(tmp_path / "salmon", parts=["sentiment_alignment"], n_samples=6)
    out = tmp_path / "salmon.json"
    metrics = evaluate_salmon(benchmark=root, tokenizer=tokenizer_dir, lm=lm_dir, output=out,
                              parts=["sentiment_alignment"], device="cpu")
    assert metrics["scoring"]["bos"] == metrics["scoring"]["eos"] == (family == "slam")
    rows = read_jsonl(out.with_suffix(".items.jsonl"))
    pairs = salmon_pairs(root, "sentiment_alignment")
    for key, mean_nll in SCORES:
        assert [r[f"decision_{key}"] for r in rows] == oracle.modelling_metric(pairs, mean_nll)
    sums = oracle.log_likelihood([p for p, _ in pairs], mean_nll=False)
    assert [r["ll_sum"][0] for r in rows] == pytest.approx(sums.tolist(), rel=1e-4)
