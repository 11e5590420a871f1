from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spokenlm.audio.framing import Framing
from spokenlm.common.errors import InputError
from spokenlm.data.alignments import Interval
from spokenlm.lm.interleave import (InterleavedVocab, interleave, speech_mask,
                                    speech_sequence, stretches, text_sequence, unit_times,
                                    word_unit_spans)
from spokenlm.lm.interleaved_model import InterleavedLM, build_interleaved_lm
from spokenlm.lm.interleaved_score import sample_restricted, score_suffixes
from spokenlm.lm.text_codec import TextCodec
from spokenlm.lm.text_lm import TOKENIZER_FILE, TextTokenizer

K = 8  # units

# "the dog runs": words with pauses, six deduplicated units at 50 Hz (hop 320, window 400:
# frame i is centred at 0.02 i + 0.0125 s); unit j covers frames [F_j, F_j + d_j)
WORDS = [Interval(0.10, 0.30, "the"), Interval(0.30, 0.62, "dog"), Interval(0.70, 1.00, "runs")]
UNITS = [5, 1, 4, 2, 6, 0]
DURATIONS = [6, 10, 6, 9, 10, 14]  # unit times 0.0625 0.2225 0.3825 0.5325 0.7225 0.9625
FRAMING = Framing()  # 50 Hz


@pytest.fixture()
def codec(tmp_path) -> TextCodec:
    """spokenlm's word tokenizer: <unk>=0 the=1 dog=2 runs=3; the text LM has 4 + 3 rows."""
    TextTokenizer(["<unk>", "the", "dog", "runs"]).save(tmp_path / TOKENIZER_FILE)
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 7}))
    return TextCodec.load(tmp_path)


def test_vocabulary_layout() -> None:
    v = InterleavedVocab(text_vocab=7, n_units=K)
    assert (v.unit_offset, v.bos_id, v.eos_id, v.pad_id) == (7, 15, 16, 17)
    assert (v.text_id, v.speech_id, v.vocab_size) == (18, 19, 20)
    assert [v.modality_of(t) for t in (0, 6, 7, 14, 15, 18, 19)] == [
        "text", "text", "speech", "speech", "special", "marker", "marker"]
    assert InterleavedVocab.from_json(v.to_json()) == v
    with pytest.raises(InputError, match="does not follow"):
        InterleavedVocab.from_json({**v.to_json(), "speech_id": 3})


def test_units_of_each_word() -> None:
    np.testing.assert_allclose(unit_times(DURATIONS, FRAMING),
                               [0.0625, 0.2225, 0.3825, 0.5325, 0.7225, 0.9625])
    # cuts at 0.30 (the words touch) and 0.66 (the middle of the pause 0.62-0.70)
    assert word_unit_spans(WORDS, DURATIONS, FRAMING) == [(0, 2), (2, 4), (4, 6)]
    # at 25 Hz (hop 640, window 800) the same durations are twice as long
    spans25 = word_unit_spans(WORDS, DURATIONS, Framing.from_rate(25))
    assert spans25 == [(0, 1), (1, 2), (2, 6)]


def test_interleaving_of_a_known_sentence(codec) -> None:
    v = InterleavedVocab(7, K)  # [TEXT] 18, [SPEECH] 19, units at 7 + u
    mask = np.array([False, True, False])  # the | dog | runs
    tokens, info = interleave(WORDS, UNITS, DURATIONS, FRAMING, mask, codec, v)
    assert tokens == [18, 1, 19, 7 + 4, 7 + 2, 18, 3]
    assert [(s["modality"], s["words"]) for s in info] == [
        ("text", "the"), ("speech", "dog"), ("text", "runs")]
    tokens, _ = interleave(WORDS, UNITS, DURATIONS, FRAMING, np.array([True, False, False]),
                           codec, v)
    assert tokens == [19, 12, 8, 18, 2, 3]  # the leading silence's unit goes with "the"
    everything = interleave(WORDS, UNITS, DURATIONS, FRAMING, np.ones(3, bool), codec, v)[0]
    assert everything == speech_sequence(UNITS, v) == [19, 12, 8, 11, 9, 13, 7]
    assert interleave(WORDS, UNITS, DURATIONS, FRAMING, np.zeros(3, bool), codec, v)[0] \
        == text_sequence("the dog runs", codec, v) == [18, 1, 2, 3]


def test_a_spoken_stretch_without_units_is_given_as_text(codec) -> None:
    v = InterleavedVocab(7, K)
    words = [Interval(0.0, 0.5, "the"), Interval(0.5, 0.51, "dog"), Interval(0.51, 1.0, "runs")]
    tokens, info = interleave(words, [1, 2], [25, 25], FRAMING, np.array([False, True, False]),
                              codec, v)
    assert tokens == [18, 1, 2, 3]  # "dog" owns no unit: no lone [SPEECH]
    assert [s["modality"] for s in info] == ["text"]


def test_speech_mask_draws() -> None:
    rng = lambda s: np.random.default_rng(s)  # noqa: E731
    for seed in range(20):
        mask = speech_mask(12, rng(seed), "poisson", mean_span=3, speech_fraction=0.3)
        assert mask.sum() >= math.ceil(12 * 0.3)
        assert np.array_equal(mask, speech_mask(12, rng(seed), "poisson", 3, 0.3))
    assert not speech_mask(12, rng(0), "poisson", 3, 0.0).any()
    assert speech_mask(12, rng(0), "poisson", 3, 1.0).all()
    # random: each word on its own, about the fraction asked for
    share = np.mean([speech_mask(50, rng(s), "random", speech_fraction=0.3).mean()
                     for s in range(40)])
    assert 0.25 < share < 0.35
    assert stretches(np.array([0, 0, 1, 1, 0], bool)) == [
        ("text", 0, 2), ("speech", 2, 4), ("text", 4, 5)]
    with pytest.raises(InputError, match="method"):
        speech_mask(3, rng(0), "nope")  # type: ignore[arg-type]


def test_hf_tokenizer_codec(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "the": 2, "dog": 3, "runs": 4}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>",
                            bos_token="<s>").save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 8}))
    codec = TextCodec.load(tmp_path)
    assert codec.kind == "hf" and codec.text_vocab == 8 and codec.n_symbols == 5
    assert codec.encode(" the dog runs") == [2, 3, 4]
    assert codec.decode([2, 3, 6]) == "the dog"  # 6: not the tokenizer's
    assert set(codec.not_generated()) == {0, 1}
    again = TextCodec.load(codec.save(tmp_path / "copy"), text_vocab=8)
    assert again.fingerprint() == codec.fingerprint()


def test_scored_suffixes_and_restricted_sampling() -> None:
    from spokenlm.testing.lm import tiny_unit_lm

    model = tiny_unit_lm(12).model.eval()
    seqs = [[12, 3, 4, 5, 6], [12, 7, 8]]
    alone = score_suffixes(model, seqs, [2, 1], pad_id=14, batch_tokens=6)  # one per batch
    padded = score_suffixes(model, seqs, [2, 1], pad_id=14, batch_tokens=100)  # one batch
    for seq, lp, lp2 in zip(seqs, alone, padded):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([seq])).logits[0, :-1].float(), -1)
        full = logp.gather(1, torch.tensor(seq[1:])[:, None])[:, 0].double().numpy()
        assert len(lp) == {5: 2, 3: 1}[len(seq)]
        np.testing.assert_allclose(lp, full[len(full) - len(lp):], atol=1e-5)
        np.testing.assert_allclose(lp2, lp, atol=1e-5)
    new = sample_restricted(model, [12, 3], allowed=[2, 5], eos_id=13, max_new_tokens=20,
                            temperature=2.0, top_k=0, generator=torch.Generator().manual_seed(0))
    assert new and set(new) <= {2, 5}


def test_build_keeps_text_rows_and_adds_markers(tmp_path) -> None:
    from spokenlm.testing.interleave import save_tiny_text_lm
    from transformers import AutoModelForCausalLM

    text_lm = save_tiny_text_lm(tmp_path / "text_lm", ["the dog runs", "a cat sleeps"])
    codec = TextCodec.load(text_lm)
    v = InterleavedVocab(codec.text_vocab, K)
    meta = {"interleaved": {**v.to_json(), "fingerprint": codec.fingerprint()}}
    lm = build_interleaved_lm(text_lm, meta, "data")
    emb = lm.model.get_input_embeddings().weight
    text = AutoModelForCausalLM.from_pretrained(text_lm).get_input_embeddings().weight
    assert emb.shape[0] == v.vocab_size and torch.equal(emb[: v.text_vocab], text)
    markers = emb[[v.text_id, v.speech_id]]
    assert torch.allclose(markers.mean(0), text.mean(0), atol=3 * float(text.std()))
    saved = InterleavedLM.from_pretrained(lm.save_pretrained(tmp_path / "lm"))
    assert saved.vocab == v and saved.codec.fingerprint() == codec.fingerprint()
    assert str(saved.text_lm) == str(text_lm.resolve())
    with pytest.raises(InputError, match="--init-from"):
        build_interleaved_lm(None, meta, "data")
    other = save_tiny_text_lm(tmp_path / "other", ["one two three four five"])
    with pytest.raises(InputError, match="text LM the data was made with"):
        build_interleaved_lm(other, meta, "data")
