"""espeak-ng G2P and CMUdict lookups."""

from __future__ import annotations

import pytest

from spokenlm.common.errors import InputError
from spokenlm.data.phonemes import cmudict_phonemes, phonemize, phonemize_batch, split_phones


def test_phonemize_format():
    assert phonemize("the dog runs") == "ð ə | d ɑː ɡ | ɹ ʌ n z"
    assert "ˈ" in phonemize("the dog", stress=True)
    assert split_phones("ð ə | d ɑː ɡ") == ["ð", "ə", "d", "ɑː", "ɡ"]


def test_batch_stays_aligned_with_punctuation():
    texts = ["hello, world. how are you?", "the cat", "one; two: three!"]
    out = phonemize_batch(texts)
    assert len(out) == 3
    assert out[1] == phonemize("the cat")
    assert out[2].count("|") == 2


@pytest.mark.parametrize("text", ["", "   ", "...", "?!"])
def test_text_without_phonemes_is_an_error(text):
    with pytest.raises(InputError, match="no phonemes"):
        phonemize(text)


def test_bad_voice_is_an_error():
    with pytest.raises(InputError, match="voice"):
        phonemize("hello", voice="zzzvoice")


def test_cmudict():
    assert cmudict_phonemes("Dog") == ["D", "AO", "G"]
    assert cmudict_phonemes("dog", stress=True) == ["D", "AO1", "G"]
    assert cmudict_phonemes("blorptastic") is None
