"""Pseudo-words for spot-the-word: matched length, not words, deterministic, speakable."""

from __future__ import annotations

import pytest

from spokenlm.common.errors import InputError
from spokenlm.data.phonemes import cmudict_pronunciations
from spokenlm.data.pseudowords import arpabet_to_espeak, make_pseudowords, syllabify
from spokenlm.data.tts import SPEAKERS, synthesize
from spokenlm.data.vocabulary import vocabulary


@pytest.fixture(scope="module")
def lexicon():
    return vocabulary().lexicon()


def test_pseudowords_match_length_and_are_not_words(lexicon):
    triples = make_pseudowords(lexicon, 80, seed=0)
    assert len(triples) == 80
    real = cmudict_pronunciations()
    pseudos = [tuple(p) for _, _, p in triples]
    assert len(set(pseudos)) == 80
    for word, phones, pseudo in triples:
        assert phones == lexicon[word]
        assert len(pseudo) == len(phones)
        assert len(syllabify(pseudo)) == len(syllabify(phones))
        assert tuple(pseudo) not in real


def test_deterministic(lexicon):
    assert make_pseudowords(lexicon, 20, seed=5) == make_pseudowords(lexicon, 20, seed=5)
    assert make_pseudowords(lexicon, 20, seed=5) != make_pseudowords(lexicon, 20, seed=6)


def test_too_many_asked(lexicon):
    with pytest.raises(InputError, match="pseudo-words"):
        make_pseudowords(dict(list(lexicon.items())[:5]), 50)


def test_syllabify_maximal_onset():
    sylls = syllabify("K AA1 N S T R AH0 K SH AH0 N".split())
    assert [s[0] for s in sylls] == [("K",), ("S", "T", "R"), ("SH",)]


def test_arpabet_to_espeak():
    assert arpabet_to_espeak(["D", "AO", "G"]) == "[[d|'O:|g]]"
    assert arpabet_to_espeak("AH0 B AH1 T".split()) == "[[@|b|'V|t]]"
    with pytest.raises(InputError, match="ARPAbet"):
        arpabet_to_espeak(["XX"])


def test_word_and_pseudoword_are_speakable(lexicon):
    word, phones, pseudo = make_pseudowords(lexicon, 1, seed=0)[0]
    for p in (phones, pseudo):
        wav = synthesize(arpabet_to_espeak(p), SPEAKERS[0])
        seconds = len(wav) / 16_000
        assert 0.15 < seconds < 2.0, (word, p, seconds)
        assert abs(wav).max() > 0.05
