"""``eval zerospeech-submission``: the folder passes a re-implementation of
``zerospeech2021-validate``, and the official lexical / syntactic evaluation of its scores
gives the decisions ``eval official`` reports on the same folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from release_oracles import SlamkitScorer, validate_submission, zr_lexical, zr_syntactic

from spokenlm.cli.main import main
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl
from spokenlm.eval.official import evaluate_official
from spokenlm.eval.zerospeech_submission import zerospeech_submission
from spokenlm.testing.releases import write_slm21_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_slm21_dataset(tmp_path_factory.mktemp("zr") / "zr2021")


def test_submission_validates_and_scores_as_eval_official(dataset: Path, tmp_path: Path,
                                                          tokenizer_dir: Path,
                                                          lm_dir: Path) -> None:
    out = tmp_path / "submission"
    result = zerospeech_submission(dataset=dataset, tokenizer=tokenizer_dir, lm=lm_dir,
                                   output=out, author="A. Author", affiliation="Lab",
                                   train_set="synthetic corpus", device="cpu")
    validate_submission(dataset, out)
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert meta["parameters"]["phonetic"] == {"metric": "cosine", "frame_shift": 0.02}
    assert result["validate"].startswith(f"zerospeech2021-validate {dataset} {out}")
    feats = np.loadtxt(next((out / "phonetic" / "dev-clean").glob("*.txt")))
    assert feats.ndim == 2 and feats.shape[0] >= 20  # 0.5 s at 50 Hz
    oracle = SlamkitScorer.from_spokenlm(tokenizer_dir, lm_dir)
    for task, evaluate in (("lexical", zr_lexical), ("syntactic", zr_syntactic)):
        folder = dataset / task / "dev"
        lines = dict(line.split() for line in (out / task / "dev.txt").read_text().splitlines())
        ref_scores = oracle.file_scores(sorted(folder.glob("*.wav")), mean_nll=False)
        assert {k: float(v) for k, v in lines.items()} == pytest.approx(ref_scores, rel=1e-5)
        ref = evaluate(folder / "gold.csv", out / task / "dev.txt")
        metrics = evaluate_official(benchmark=folder, tokenizer=tokenizer_dir, lm=lm_dir,
                                    output=tmp_path / f"{task}.json", device="cpu")
        rows = read_jsonl(tmp_path / f"{task}.items.jsonl")
        assert {r["id"]: r["decision_sum"] for r in rows} == \
            {f"{i}_{v}": d for (i, v), d in ref["pairs"].items()}
        assert metrics["official"]["sum"]["score"] == pytest.approx(ref["all"])
    assert len((out / "lexical" / "test.txt").read_text().splitlines()) == \
        len(list((dataset / "lexical" / "test").glob("*.wav")))


def test_submission_cli_dev_only_units_and_left_out_tasks(dataset: Path, tmp_path: Path,
                                                          tokenizer_dir: Path,
                                                          lm_dir: Path) -> None:
    out = tmp_path / "sub"
    assert main(["eval", "zerospeech-submission", str(dataset), "--tokenizer",
                 str(tokenizer_dir), "--lm", str(lm_dir), "--output", str(out), "--sets", "dev",
                 "--tasks", "phonetic", "lexical", "--features", "units", "--score", "mean",
                 "--no-open-source", "--device", "cpu"]) == 0
    validate_submission(dataset, out, only_dev=True, skip=("syntactic", "semantic"))
    assert not any((out / "semantic").iterdir()) and not (out / "code").exists()
    onehot = np.loadtxt(next((out / "phonetic" / "dev-other").glob("*.txt")))
    assert onehot.shape[1] == 8 and set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot.sum(axis=1) == 1).all()
    with pytest.raises(AssertionError, match="mismatch in directory"):
        validate_submission(dataset, out, only_dev=True, skip=("semantic",))


def test_submission_refuses_missing_sets_and_outputs_inside_the_dataset(
        dataset: Path, tmp_path: Path, tokenizer_dir: Path, lm_dir: Path) -> None:
    partial = tmp_path / "partial"
    (partial / "lexical" / "dev").mkdir(parents=True)
    with pytest.raises(InputError, match="lexical/test: missing from the dataset; .*--sets dev"):
        zerospeech_submission(dataset=partial, tokenizer=tokenizer_dir, lm=lm_dir,
                              output=tmp_path / "s", tasks=["lexical"])
    with pytest.raises(InputError):
        zerospeech_submission(dataset=dataset, tokenizer=tokenizer_dir, lm=lm_dir,
                              output=dataset / "submission")
