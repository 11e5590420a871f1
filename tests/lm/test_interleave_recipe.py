"""The interleaved speech-text recipe end to end: aligned units -> `lm interleave-data` ->
`lm train --interleave` -> `eval cross-modal` (tiny models, toy aligned "speech")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_json, read_jsonl, write_jsonl
from spokenlm.lm.data import load_packed
from spokenlm.lm.interleave_data import interleave_data
from spokenlm.lm.interleaved_model import InterleavedLM
from spokenlm.lm.text_codec import TextCodec
from spokenlm.lm.train import train_lm
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.interleave import (interleaved_cloze_items, save_tiny_text_lm,
                                         toy_aligned_rows, write_cloze_benchmark)
from spokenlm.testing.lm import write_packed_units
from spokenlm.tokenize.pack import pack_units

K = 8
SENTENCES = ["the dog runs", "a cat sleeps", "the cat sees the dog", "a bird sings",
             "the bird sees a cat", "the dog sleeps", "a cat runs", "the bird runs"]
TINY = dict(size="tiny", seq_len=32, batch_size=4, lr=3e-3, warmup_steps=1, log_every=1,
            eval_every=0, eval_batches=1, save_every=10, valid_fraction=0.1)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny MFCC + k-means tokenizer with K units."""
    import torch

    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), K, seed=0)
    return SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(
        tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture()
def inputs(tmp_path) -> dict[str, Path]:
    """A text LM over the sentences' words, their toy units (packed) and word alignments;
    one more utterance has no alignment."""
    text_lm = save_tiny_text_lm(tmp_path / "text_lm", SENTENCES)
    units, labels = toy_aligned_rows(SENTENCES, K)
    extra = toy_aligned_rows(["a dog"], K)[0][0]
    write_jsonl(tmp_path / "units.jsonl", [*units, {**extra, "id": "unaligned"}])
    pack_units(tmp_path / "units.jsonl", n_units=K)
    write_jsonl(tmp_path / "words.jsonl", labels)
    return {"text_lm": text_lm, "units": tmp_path / "units.jsonl",
            "alignments": tmp_path / "words.jsonl"}


def test_interleave_data_writes_packed_sequences(tmp_path, inputs) -> None:
    prefix = interleave_data(**inputs, output=tmp_path / "inter", mean_span=2,
                             speech_fraction=0.5, copies=2)
    rows = read_jsonl(f"{prefix}.jsonl")
    assert [r["kind"] for r in rows[:4]] == ["interleaved", "interleaved", "speech", "text"]
    assert len(rows) == 4 * len(SENTENCES)
    assert read_jsonl(f"{prefix}.skipped.jsonl") == [{"id": "unaligned",
                                                      "reason": "no alignment"}]
    tokens, offsets, meta = load_packed(prefix)
    for k, r in enumerate(rows):  # the packed ids are the rows' tokens
        assert tokens[offsets[k]: offsets[k + 1]].tolist() == r["tokens"]
    info = meta["interleaved"]
    codec = TextCodec.load(inputs["text_lm"])
    assert (meta["n_units"], info["text_vocab"]) == (K, codec.text_vocab)
    assert info["kinds"] == {"interleaved": 16, "speech": 8, "text": 8}
    assert info["fingerprint"] == codec.fingerprint()
    assert meta["frame_rate"] == 50.0
    v = info
    for r in rows:
        t = r["tokens"]
        assert t[0] in (v["text_id"], v["speech_id"])
        assert all(0 <= x < v["vocab_size"] and x not in (v["bos_id"], v["eos_id"])
                   for x in t)
        if r["kind"] == "text":
            assert codec.decode(t[1:]) == SENTENCES[int(r["utterance"][3:])]
    mixed = [r for r in rows if r["kind"] == "interleaved"
             and {s["modality"] for s in r["stretches"]} == {"text", "speech"}]
    assert mixed  # some draws switch modality
    again = interleave_data(**inputs, output=tmp_path / "again", mean_span=2,
                            speech_fraction=0.5, copies=2)
    assert read_jsonl(f"{again}.jsonl") == rows  # deterministic in the seed
    with pytest.raises(InputError, match="overwrite"):
        interleave_data(**inputs, output=tmp_path / "units")


def test_one_step_of_the_interleaved_recipe(tmp_path, inputs, tokenizer_dir) -> None:
    from spokenlm.eval.cross_modal import evaluate_cross_modal
    from spokenlm.eval.textlm import TextLM

    prefix = interleave_data(**inputs, output=tmp_path / "inter", mean_span=2,
                             speech_fraction=0.5)
    run = tmp_path / "run"
    final = train_lm(units=prefix, output=run, interleave=True, init_from=inputs["text_lm"],
                     tokenizer=tokenizer_dir, max_steps=3, **TINY)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in log)
    lm = InterleavedLM.from_pretrained(final)
    assert lm.vocab.n_units == K and lm.vocab_size == lm.vocab.vocab_size
    assert (final / "text_tokenizer").is_dir()

    items = interleaved_cloze_items(SENTENCES[:5])
    bench = write_cloze_benchmark(tmp_path / "bench", items)
    out = tmp_path / "eval" / "cross_modal.json"
    metrics = evaluate_cross_modal(benchmark=bench, tokenizer=tokenizer_dir, lm=final,
                                   output=out, n_generate=2, max_new_tokens=6)
    assert read_json(out)["n_items"] == len(items) == metrics["n_items"]
    for direction in ("text->speech", "speech->text", "speech->speech", "text->text"):
        assert 0 <= metrics["cloze"][direction]["accuracy_sum"] <= 1
        cont = metrics["continuation"][direction]
        assert cont["nll_given_prompt"] > 0 and cont["n_tokens"] > 0
        assert cont["gain"] == pytest.approx(cont["nll_without_prompt"]
                                             - cont["nll_given_prompt"])
    ppl = metrics["text_perplexity"]
    texts = list(dict.fromkeys([it["prompt"] for it in items]
                               + [it["endings"][it["answer"]] for it in items]))
    assert ppl["n_texts"] == len(texts)
    assert ppl["before"] == pytest.approx(TextLM(inputs["text_lm"]).perplexity(texts))
    assert ppl["after"] > 1 and ppl["ratio"] == pytest.approx(ppl["after"] / ppl["before"])
    samples = read_jsonl(out.with_suffix(".samples.jsonl"))
    assert sorted(s["direction"] for s in samples) == ["speech->text"] * 2 + ["text->speech"] * 2
    words = {w for s in SENTENCES for w in s.split()}
    for s in samples:
        if s["direction"] == "speech->text":
            assert set(s["text"].split()) <= words  # text tokens only, no <unk>
        else:
            assert all(0 <= u < K for u in s["units"])
    scored = read_jsonl(out.with_suffix(".items.jsonl"))
    assert len(scored) == len(items) and len(scored[0]["text->speech"]["ll_sum"]) == 2


def test_train_refuses_mismatched_data(tmp_path, inputs) -> None:
    prefix = interleave_data(**inputs, output=tmp_path / "inter")
    with pytest.raises(InputError, match="--interleave"):
        train_lm(units=prefix, output=tmp_path / "a", max_steps=1, **TINY)
    plain = write_packed_units(tmp_path / "plain", [[1, 2, 3, 4]] * 8, K)
    with pytest.raises(InputError, match="not interleaved data"):
        train_lm(units=plain, output=tmp_path / "b", interleave=True,
                 init_from=inputs["text_lm"], max_steps=1, **TINY)
    with pytest.raises(InputError, match="--init-from"):
        train_lm(units=prefix, output=tmp_path / "c", interleave=True, max_steps=1, **TINY)


@pytest.mark.slow
def test_interleaved_recipe_on_a_synthetic_corpus(tmp_path) -> None:
    """Every command of the recipe on espeak-ng speech: synth -> word alignments -> units ->
    text LM -> interleaved data -> lm train --interleave -> spoken cloze -> eval cross-modal."""
    from spokenlm.data.benchmark_builders import build_benchmark
    from spokenlm.data.synth import synth_corpus
    from spokenlm.data.tts_words import word_alignments
    from spokenlm.eval.cross_modal import evaluate_cross_modal
    from spokenlm.lm.text_lm import pretrain_text_lm
    from spokenlm.tokenize.run import tokenize_manifest
    from spokenlm.tokenize.train import train_tokenizer

    corpus = synth_corpus(output=tmp_path / "corpus", n_utterances=40, n_speakers=4,
                          n_valid_speakers=1, n_test_speakers=1)
    words = word_alignments(corpus=corpus, output=tmp_path / "words.jsonl")
    assert len(read_jsonl(words)) == 40
    tok = train_tokenizer(manifest=corpus / "train.jsonl", output=tmp_path / "tok",
                          encoder="mfcc", n_units=16)
    units = tokenize_manifest(manifest=corpus / "train.jsonl", tokenizer=tok,
                              output=tmp_path / "units.jsonl")
    text_lm = pretrain_text_lm(text=corpus, output=tmp_path / "text_lm", size="tiny",
                               max_steps=20, warmup_steps=2, seq_len=64, batch_size=8)
    prefix = interleave_data(units=units, alignments=words, text_lm=text_lm,
                             output=tmp_path / "inter", mean_span=3)
    final = train_lm(units=prefix, output=tmp_path / "run", interleave=True,
                     init_from=text_lm, tokenizer=tok, max_steps=20,
                     **{**TINY, "seq_len": 128})
    bench = build_benchmark(generate="story_cloze", n_items=6, corpus=corpus,
                            output=tmp_path / "bench")
    metrics = evaluate_cross_modal(benchmark=bench, tokenizer=tok, lm=final,
                                   output=tmp_path / "cross_modal.json", n_generate=2)
    assert metrics["n_items"] == 6 and metrics["n_skipped"] == 0
    ppl = metrics["text_perplexity"]
    assert ppl["before"] > 1 and ppl["after"] > 1


@pytest.mark.slow
def test_interleaved_training_learns_across_modalities(tmp_path) -> None:
    """On a toy language whose units say which word was spoken and whose noun decides the
    verb, interleaved training takes speech->text and text->speech cloze from chance (the
    warm start) to near the text LM's own accuracy."""
    from spokenlm.eval.cross_modal import cross_modal_cloze
    from spokenlm.lm.interleaved_model import build_interleaved_lm
    from spokenlm.lm.text_lm import pretrain_text_lm
    from spokenlm.testing.interleave import toy_cloze_items, toy_language

    k = 32
    sentences = toy_language()
    (tmp_path / "text.txt").write_text("\n".join(sentences * 3))
    text_lm = pretrain_text_lm(text=tmp_path / "text.txt", output=tmp_path / "text_lm",
                               size="tiny", max_steps=200, warmup_steps=20, seq_len=64)
    units, labels = toy_aligned_rows(sentences * 3, k)
    write_jsonl(tmp_path / "units.jsonl", units)
    pack_units(tmp_path / "units.jsonl", n_units=k)
    write_jsonl(tmp_path / "words.jsonl", labels)
    prefix = interleave_data(units=tmp_path / "units.jsonl", alignments=tmp_path / "words.jsonl",
                             text_lm=text_lm, output=tmp_path / "inter", method="random",
                             speech_fraction=0.5)
    items = toy_cloze_items(sentences, k)
    start = build_interleaved_lm(text_lm, load_packed(prefix)[2], str(prefix))
    before = cross_modal_cloze(start, items)[1]
    final = train_lm(units=prefix, output=tmp_path / "run", interleave=True, init_from=text_lm,
                     max_steps=300, warmup_steps=20, seq_len=128, batch_size=16, lr=3e-3,
                     eval_every=0, save_every=1000)
    after = cross_modal_cloze(InterleavedLM.from_pretrained(final), items)[1]
    acc = {d: (before[d]["accuracy_sum"], after[d]["accuracy_sum"]) for d in before}
    assert acc["text->text"][0] > 0.9, acc  # the text LM knows the language
    assert acc["speech->text"][0] < 0.65 and acc["speech->text"][1] > 0.9, acc
    assert acc["text->speech"][0] < 0.65 and acc["text->speech"][1] > 0.7, acc
