"""SpokenSwag-style preference pairs: items, auto-BLEU filter, the spoken folder and its
pairs.jsonl (the layout `spokenlm lm dpo` reads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.audio.load import load_audio
from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl, write_json
from spokenlm.data.benchmark_builders import build_benchmark
from spokenlm.data.preference import (auto_bleu, grammar_preference_items, keep_diverse,
                                      preference_stories, text_preference_items)
from spokenlm.data.tts import speaker_table
from spokenlm.eval.benchmark import Benchmark

PAIR_KEYS = {"id", "prompt", "chosen", "rejected", "prompt_text", "chosen_text",
             "rejected_text"}


def test_auto_bleu_by_hand() -> None:
    assert auto_bleu("the dog runs") == 0.0
    assert auto_bleu("a b a b") == pytest.approx(2 / 3)  # (a b) twice of (a b) (b a) (a b)
    assert auto_bleu("The dog. the dog!") == pytest.approx(2 / 5)  # "." and "!" are tokens
    assert auto_bleu("one") == 0.0
    items = [{"prompt": "a b a b", "chosen": "c"}, {"prompt": "x y", "chosen": "z"}]
    assert keep_diverse(items, 0.3) == items[1:] and keep_diverse(items, None) == items
    with pytest.raises(InputError, match="max_auto_bleu"):
        keep_diverse(items[:1], 0.3)


def test_grammar_items_continue_the_story() -> None:
    items = grammar_preference_items(12, seed=0, sentences_per_story=4,
                                     rejected=("other_story", "shuffled", "ungrammatical"))
    assert items == grammar_preference_items(12, seed=0, sentences_per_story=4, rejected=(
        "other_story", "shuffled", "ungrammatical"))
    assert [i["rejected_source"] for i in items] == ["other_story", "shuffled",
                                                     "ungrammatical"] * 4
    stories = [[s.text for s in st.sentences] for st in preference_stories(12, 4, seed=0)]
    for it in items:
        story = stories[it["story"]]
        j = len(it["prompt"].split(". "))
        assert 1 <= j <= 3 and it["prompt"] == ". ".join(story[:j])
        assert it["chosen"] == story[j] and it["rejected"] != it["chosen"]
        chosen, rejected = it["chosen"].split(), it["rejected"].split()
        if it["rejected_source"] == "other_story":
            assert any(it["rejected"] in st for k, st in enumerate(stories) if k != it["story"])
        elif it["rejected_source"] == "shuffled":
            assert sorted(chosen) == sorted(rejected)
        else:  # one agreement broken, or two neighbours swapped
            diff = [k for k, (a, b) in enumerate(zip(chosen, rejected)) if a != b]
            assert len(chosen) == len(rejected) and diff and (
                len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1))


def test_text_items_and_their_errors() -> None:
    text = ("Ann had a kite. It flew high. Then it fell.\n\nBob baked bread. It was warm.\n\n"
            "Cat.\n")
    items = text_preference_items(text, 5, seed=1)
    assert len(items) == 2 and {i["story"] for i in items} == {0, 1}  # "Cat." has no next
    for it in items:
        assert it["prompt"].endswith(".") and it["rejected_source"] == "other_story"
    ann = next(i for i in items if i["story"] == 0)
    assert ann["rejected"] in ("Bob baked bread.", "It was warm.")
    assert "Ann had a kite." in ann["prompt"]
    with pytest.raises(InputError, match="ungrammatical needs grammar"):
        text_preference_items(text, 5, rejected=("ungrammatical",))
    with pytest.raises(InputError, match="two or more sentences"):
        text_preference_items("One. Two.\n\nThree.\n", 5)  # one story: no other story
    with pytest.raises(InputError, match="no document of two"):
        text_preference_items("One.\n\nTwo.\n", 5)
    with pytest.raises(InputError, match="choose from"):
        grammar_preference_items(2, rejected=("model",))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pref")
    speakers = speaker_table(4)  # a corpus's speakers.json is all `bench build` reads of it
    write_json(root / "corpus" / "speakers.json",
               [{**s.to_dict(), "split": "test" if i == 0 else "train"}
                for i, s in enumerate(speakers)])
    return build_benchmark(generate="preference", n_items=3, sentences_per_story=3,
                           corpus=root / "corpus", rejected=["other_story", "shuffled"],
                           output=root / "pref")


def test_spoken_pairs_layout(built: Path) -> None:
    pairs = read_jsonl(built / "pairs.jsonl")
    assert len(pairs) == 3
    manifest = {r["id"]: r for r in read_jsonl(built / "manifest.jsonl")}
    assert len(manifest) == 9
    for p in pairs:
        assert set(p) >= PAIR_KEYS and p["rejected_source"] in ("other_story", "shuffled")
        assert p["speaker"] != "spk00"  # train voices of the corpus by default, not test
        for role in ("prompt", "chosen", "rejected"):
            row = manifest[p[role]]
            assert row["text"] == p[f"{role}_text"] and row["speaker"] == p["speaker"]
            wav = load_audio(built / row["path"])
            assert 0.3 < len(wav) / 16000 < 10 and np.abs(wav).max() > 0.01
        assert p["auto_bleu2"] == round(auto_bleu(f"{p['prompt_text']} {p['chosen_text']}"), 4)
    config = json.loads((built / "config.json").read_text())
    assert config["kind"] == "preference" and config["options"]["split"] == "train"
    bench = Benchmark.load(built)  # also a cloze benchmark: is chosen preferred?
    assert bench.kind == "preference"
    for item, p in zip(bench.items, pairs):
        assert item["candidates"] == [p["chosen"], p["rejected"]] and item["answer"] == 0
        assert item["prompt"] == p["prompt"] and item["subset"] == p["rejected_source"]


def test_items_file_and_auto_bleu_filter(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "the dog ran", "chosen": "a cat sat", "rejected": "sat cat a",
         "rejected_source": "model:lm"},
        {"prompt": "a cat a cat", "chosen": "a cat", "rejected": "the sun"}]) + "\n")
    out = build_benchmark(items=items, output=tmp_path / "b", n_voices=1, max_auto_bleu=0.3)
    (pair,) = read_jsonl(out / "pairs.jsonl")  # the repetitive second pair is left out
    assert pair["rejected_source"] == "model:lm" and pair["chosen_text"] == "a cat sat"
    with pytest.raises(InputError, match="--text is read by --generate preference"):
        build_benchmark(generate="story_cloze", text=items, output=tmp_path / "c")


@pytest.mark.slow
def test_eval_scores_the_preference_folder(built: Path, tmp_path: Path) -> None:
    import torch

    from spokenlm.eval.acceptability import evaluate_story_cloze
    from spokenlm.testing.audio import random_speech_like_wav
    from spokenlm.testing.lm import save_tiny_unit_lm
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), 8, seed=0)
    tok = SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(tmp_path / "tok")
    lm = save_tiny_unit_lm(tmp_path / "lm", n_units=8)
    m = evaluate_story_cloze(benchmark=built, tokenizer=tok, lm=lm, output=tmp_path / "m.json")
    assert m["n_items"] == 3 and set(m["subsets"]) <= {"other_story", "shuffled"}
    assert 0 <= m["accuracy_sum"] <= 1
    from spokenlm.lm.preference_data import read_pairs  # what `lm dpo` reads

    data = read_pairs(built, 8, tok)
    assert len(data.pairs) == 3 and not data.skipped and all(p.prompt for p in data.pairs)
