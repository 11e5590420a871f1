from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.asr.text import BLANK, Vocab, ctc_greedy, error_rates, normalize_chars, row_tokens
from spokenlm.common.errors import InputError


def test_greedy_collapses_repeats_then_drops_blanks() -> None:
    assert ctc_greedy([0, 1, 1, 0, 1, 2, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert ctc_greedy([0, 0, 0]) == []
    assert ctc_greedy([]) == []
    assert ctc_greedy([4, 4, 4]) == [4]


def test_vocab_chars_roundtrip(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "The dog, runs!"}, {"id": "b", "text": "a cat's nap"}]
    seqs = [row_tokens(r, "chars") for r in rows]
    assert seqs[0][:4] == ["t", "h", "e", "|"]
    vocab = Vocab.build(seqs, "chars")
    assert vocab.tokens[0] == BLANK
    assert vocab.decode(vocab.encode(seqs[1])) == "a cat's nap"
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").tokens == vocab.tokens
    assert normalize_chars("  Hello,   World. ") == "hello world"


def test_phoneme_tokens_and_missing_field() -> None:
    assert row_tokens({"id": "a", "phonemes": "ð ə | d ɑː ɡ"}, "phonemes") == \
        ["ð", "ə", "d", "ɑː", "ɡ"]
    with pytest.raises(InputError, match="phonemes"):
        row_tokens({"id": "a", "text": "x"}, "phonemes", "m.jsonl")


def test_error_rates() -> None:
    r = error_rates(["the dog runs"], ["the dog run"], "chars")
    assert r["wer"] == pytest.approx(1 / 3) and r["cer"] == pytest.approx(1 / 12)
    assert error_rates(["a b c d"], ["a c d"], "phonemes")["per"] == pytest.approx(0.25)
