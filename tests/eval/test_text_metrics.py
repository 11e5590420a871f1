"""Hand-computed values for edit distance, WER/CER, BLEU, auto/self-BLEU, diversity."""

from __future__ import annotations

import math

import pytest

from spokenlm.eval.bleu import auto_bleu, bleu, distinct_n, entropy, self_bleu, vert
from spokenlm.eval.edit_distance import cer, edit_distance, error_rate, wer


def test_edit_distance_known_values() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance("abc", "abc") == 0
    assert edit_distance([1, 2, 3, 4], [4, 3, 2, 1]) == 4


def test_wer_and_cer() -> None:
    # "the cat sat on the mat" -> "the cat sit on mat": 1 substitution + 1 deletion of 6
    assert wer(["the cat sat on the mat"], ["the cat sit on mat"]) == pytest.approx(2 / 6)
    # corpus rate: (1 + 0) edits / (2 + 3) words
    assert wer(["a b", "c d e"], ["a x", "c d e"]) == pytest.approx(1 / 5)
    assert cer(["abcd"], ["abed"]) == pytest.approx(1 / 4)
    assert error_rate([[]], [["x"]])["rate"] != error_rate([[]], [["x"]])["rate"]  # nan


def test_bleu_known_strings() -> None:
    hyp = "the cat the cat".split()
    ref = "the cat is here".split()
    # p1 = (min(2,1) + min(2,1)) / 4 = 1/2 ; p2: bigrams (the cat)x2, (cat the) -> 1/3
    got = bleu(hyp, [ref], (0.5, 0.5), brevity_penalty=False)
    assert got == pytest.approx(math.sqrt(0.5 * (1 / 3)))
    assert bleu(hyp, [ref], (0.5, 0.5), mode="arithmetic", brevity_penalty=False) == \
        pytest.approx(0.5 * 0.5 + 0.5 / 3)
    assert bleu("a b c d".split(), ["a b c d".split()]) == pytest.approx(1.0)
    # brevity penalty: hyp of 2 vs ref of 4, precisions 1 -> exp(1 - 4/2)
    assert bleu("a b".split(), ["a b c d".split()], (0.5, 0.5)) == pytest.approx(math.exp(-1))


def test_auto_bleu_gslm_definition() -> None:
    # unigrams all repeated (1); bigrams ab@0 and ab@2 repeated, ba@1 not -> 2/3
    assert auto_bleu("a b a b".split()) == pytest.approx(math.sqrt(2 / 3))
    assert auto_bleu("a b a b".split(), mode="arithmetic") == pytest.approx(0.5 + 1 / 3)
    # overlapping occurrences do not count: "a a a" bigrams at 0 and 1 overlap -> 0
    assert auto_bleu(list("aaa"), (0.0, 1.0), mode="arithmetic") == 0.0
    assert auto_bleu(list("abcd")) == 0.0
    assert auto_bleu(["x"]) == 0.0


def test_self_bleu_and_vert() -> None:
    same = [list("abab"), list("abab")]
    assert self_bleu(same) == pytest.approx(1.0)
    assert self_bleu([list("ab"), list("cd")]) == 0.0
    v = vert([list("abab"), list("abab")])
    assert v["vert"] == pytest.approx(math.sqrt(1.0 * math.sqrt(2 / 3)))


def test_distinct_and_entropy() -> None:
    assert distinct_n([[1, 2, 1, 2]], 1) == pytest.approx(2 / 4)
    assert distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    e = entropy([[0, 1, 2, 3]], n_symbols=4)
    assert e["entropy_bits"] == pytest.approx(2.0) and e["entropy_normalised"] == pytest.approx(1.0)
    assert entropy([[5, 5, 5]])["entropy_bits"] == pytest.approx(0.0)
