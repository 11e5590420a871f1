from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spokenlm.audio.load import load_audio
from spokenlm.common.errors import InputError
from spokenlm.data.spoken_benchmark import build_spot_the_word
from spokenlm.data.synth import synth_corpus
from spokenlm.eval.benchmark import Benchmark


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_corpus(output=tmp_path_factory.mktemp("c") / "corpus", n_utterances=8,
                        n_speakers=4, seed=1)


def test_spot_the_word_pairs_spoken_by_held_out_voices(corpus: Path, tmp_path: Path) -> None:
    out = build_spot_the_word(corpus=corpus, output=tmp_path / "b", n_pairs=6, seed=0)
    bench = Benchmark.load(out)
    assert bench.kind == "spot_the_word" and len(bench.items) == 6
    test_speakers = {s for s in bench.audio[bench.items[0]["candidates"][0]]["speaker"].split()}
    import json
    speakers = json.loads((corpus / "speakers.json").read_text())
    held_out = {s["id"] for s in speakers if s["split"] == "test"}
    assert test_speakers <= held_out
    for item in bench.items:
        word, pseudo = (bench.audio[a] for a in item["candidates"])
        assert item["answer"] == 0 and word["speaker"] == pseudo["speaker"]
        assert len(word["phonemes"].split()) == len(pseudo["phonemes"].split())
        assert word["phonemes"] != pseudo["phonemes"]
        for row in (word, pseudo):
            wav = load_audio(row["path"])
            assert 0.2 < len(wav) / 16000 < 3.0 and np.abs(wav).max() > 0.01


def test_unknown_split_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="speakers.json"):
        build_spot_the_word(corpus=corpus, output=tmp_path / "b", n_pairs=2, split="nope")
