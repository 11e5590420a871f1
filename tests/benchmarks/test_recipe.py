"""benchmarks/recipe.py end to end at its smallest size (tiny corpus, tiny LMs, one seed)."""

from __future__ import annotations

import json
import shutil

import pytest


def test_mean_sd_and_table(load_script) -> None:
    recipe = load_script("recipe")
    assert recipe.mean_sd([0.5, 0.7]) == pytest.approx((0.6, 0.1414213), rel=1e-5)
    assert recipe.mean_sd([0.5]) == (0.5, 0.0)
    args = recipe.parse_args(["--seeds", "0", "1"])
    runs = [{"metrics": {"spot_the_word": v, "valid_loss": None}, "facts": {"tokens": 10}}
            for v in (0.5, 0.7)]
    text = recipe.table({"cold": runs}, args)
    assert "| cold start | 0.600 +- 0.141 | - |" in text
    assert args.max_tokens == 400_000 and recipe.parse_args(["--full"]).max_tokens == 1_600_000


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_recipe_smallest_end_to_end(tmp_path, load_script) -> None:
    from spokenlm.data.synth import synth_corpus

    corpus = synth_corpus(output=tmp_path / "corpus", n_utterances=120, n_speakers=6, seed=0)
    results = tmp_path / "results.jsonl"
    recipe = load_script("recipe")
    rows = recipe.main(["--corpus", str(corpus), "--output", str(tmp_path / "out"),
                        "--results", str(results), "--seeds", "0", "--size", "tiny",
                        "--max-tokens", "4000", "--seq-len", "64", "--batch-size", "4",
                        "--n-units", "20", "--max-frames", "5000", "--stories", "12",
                        "--pairs", "16", "--dpo-steps", "2", "--text-steps", "5",
                        "--n-items", "12"])
    assert list(rows) == list(recipe.ROWS)
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [x["row"] for x in lines] == list(recipe.ROWS)
    for x in lines:
        assert x["bench"] == "recipe"
        for k in ("spot_the_word", "acceptability", "ssc", "tsc"):
            assert 0.0 <= x["spokenlm"][k]["mean"] <= 1.0
