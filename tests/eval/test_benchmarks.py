"""Benchmark builders, the ZeroSpeech 2021 layout, and LM scoring of the built dirs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from spokenlm.audio.load import save_wav
from spokenlm.common.errors import InputError
from spokenlm.common.paths import resolve_path
from spokenlm.common.files import write_jsonl
from spokenlm.data.benchmark_builders import (acceptability_pairs, build_benchmark,
                                              story_cloze_items)
from spokenlm.data.grammar import generate_parsed
from spokenlm.eval.acceptability import evaluate_acceptability, evaluate_story_cloze
from spokenlm.eval.benchmark import Benchmark
from spokenlm.testing.audio import random_speech_like_wav


def test_acceptability_pairs_are_minimal_and_cover_subsets() -> None:
    pairs = acceptability_pairs(12, seed=0)
    assert {p["subset"] for p in pairs} == {"subject_verb", "det_noun", "article", "word_order"}
    grammatical = {s.text for s in generate_parsed(500, seed=7919)}
    for p in pairs:
        good, bad = p["good"].split(), p["bad"].split()
        assert p["good"] in grammatical and good != bad and len(good) == len(bad)
        diff = [i for i, (a, b) in enumerate(zip(good, bad)) if a != b]
        if p["subset"] == "word_order":
            assert len(diff) == 2 and diff[1] == diff[0] + 1
        else:
            assert len(diff) == 1
    assert acceptability_pairs(12, seed=0) == pairs  # deterministic


def test_story_cloze_items() -> None:
    items = story_cloze_items(6, seed=0)
    assert [i["subset"] for i in items] == ["tsc", "ssc"] * 3
    for it in items:
        right, wrong = it["endings"][it["answer"]], it["endings"][1 - it["answer"]]
        assert right != wrong and len(it["prompt"].split(". ")) == 2
        if it["subset"] == "ssc":  # same sentence, other subject
            assert right.split()[-1:] == wrong.split()[-1:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    items = root / "pairs.jsonl"
    write_jsonl(items, [{"good": "the dog runs", "bad": "the dog run", "subset": "sv"},
                        {"good": "a cat sleeps", "bad": "an cat sleeps", "subset": "art"}])
    return {"pairs": build_benchmark(items=items, output=root / "pairs", n_voices=2),
            "cloze": build_benchmark(generate="story_cloze", n_items=2, n_voices=2,
                                     output=root / "cloze")}


def test_built_dirs_are_valid_benchmarks(built: dict[str, Path]) -> None:
    pairs = Benchmark.load(built["pairs"])
    assert pairs.kind == "acceptability" and len(pairs.items) == 2
    assert {i["subset"] for i in pairs.items} == {"sv", "art"}
    cloze = Benchmark.load(built["cloze"])
    assert cloze.kind == "cloze" and all(i["prompt"] for i in cloze.items)
    assert all(len(i["candidates"]) == 2 for i in cloze.items)


def test_scoring_built_benchmarks(built: dict[str, Path], tokenizer_dir: Path, lm_dir: Path,
                                  tmp_path: Path) -> None:
    m = evaluate_acceptability(benchmark=built["pairs"], tokenizer=tokenizer_dir, lm=lm_dir,
                               output=tmp_path / "acc.json")
    assert m["metric"] == "acceptability" and m["n_items"] == 2
    assert 0 <= m["accuracy_sum"] <= 1 and set(m["subsets"]) == {"sv", "art"}
    m = evaluate_story_cloze(benchmark=built["cloze"], tokenizer=tokenizer_dir, lm=lm_dir,
                             output=tmp_path / "sc.json")
    assert m["metric"] == "story_cloze" and m["n_items"] == 2
    assert resolve_path(m["inputs"]["lm"], tmp_path / "sc.json") == lm_dir  # relative to sc.json


def test_mixed_items_are_rejected(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"good": "a", "bad": "b"},
                                       {"prompt": "p", "endings": ["a", "b"], "answer": 0}])
    with pytest.raises(InputError, match="mix kinds"):
        build_benchmark(items=tmp_path / "x.jsonl", output=tmp_path / "o")


def _zr_folder(root: Path, syntactic: bool) -> Path:
    root.mkdir(parents=True)
    rows = []
    for pid in ("1", "2"):
        for voice in ("Alex", "Bruce"):
            for correct in (1, 0):
                name = f"{pid}_{voice}_{correct}"
                save_wav(root / f"{name}.wav", random_speech_like_wav(0.4, seed=len(rows)))
                extra = ({"type": "agreement", "subtype": "x", "transcription": "t"}
                         if syntactic else {"word": f"w{pid}{correct}", "frequency": "3"})
                rows.append({"id": pid, "filename": name, "voice": voice,
                             "correct": correct, **extra})
    with open(root / "gold.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.mark.parametrize("syntactic", [False, True])
def test_zerospeech_2021_layout(tmp_path: Path, syntactic: bool, tokenizer_dir: Path,
                                lm_dir: Path) -> None:
    bench = Benchmark.load(_zr_folder(tmp_path / "zr", syntactic))
    assert bench.kind == ("acceptability" if syntactic else "spot_the_word")
    assert len(bench.items) == 4
    for item in bench.items:
        good, bad = item["candidates"]
        assert good.endswith("_1") and bad.endswith("_0")
        assert bench.audio[good]["speaker"] == bench.audio[bad]["speaker"]
    if syntactic:
        assert {i["subset"] for i in bench.items} == {"agreement"}
        m = evaluate_acceptability(benchmark=tmp_path / "zr", tokenizer=tokenizer_dir, lm=lm_dir,
                                   output=tmp_path / "m.json")
        assert m["n_items"] == 4 and np.isfinite(m["accuracy_sum"])


def test_acceptability_pairs_do_not_run_out_of_rare_subsets() -> None:
    from collections import Counter

    from spokenlm.data.benchmark_builders import acceptability_pairs

    pairs = acceptability_pairs(200, seed=0)
    assert Counter(p["subset"] for p in pairs) == {s: 50 for s in
                                                   ("subject_verb", "det_noun", "article", "word_order")}
    assert len({p["good"] for p in pairs}) == 200
    assert all(p["good"] != p["bad"] for p in pairs)
