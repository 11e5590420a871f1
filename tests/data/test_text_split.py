"""A user's text -> documents -> utterances: documents, sentences, clause cuts, packing."""

from __future__ import annotations

import pytest

from spokenlm.common.errors import InputError
from spokenlm.data.text_split import (pack, read_documents, read_text, segment, speakable,
                                      split_long, split_sentences, words_for_seconds)


def test_documents_by_blank_lines_marker_or_line() -> None:
    text = "One *two*\nthree\n\n\n<|endoftext|>\nfour\n***\n  \n five  six \n"
    assert read_documents(text) == [["One two", "three"], ["four"], ["five six"]]
    assert read_documents(text, "line") == [["One two"], ["three"], ["four"], ["five six"]]
    with pytest.raises(InputError, match="documents"):
        read_documents(text, "para")  # type: ignore[arg-type]


def test_read_text_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_text(tmp_path / "nope.txt")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="latin.txt: not UTF-8"):
        read_text(tmp_path / "latin.txt")


def test_sentences_keep_abbreviations_initials_and_quotes() -> None:
    text = ('Mr. Smith met J. K. Lee at 3 p.m. today. "Hi!" said Tom. "Run!" He ran. '
            "Did it rain? No. It was 5 o'clock... Then it stopped")
    assert split_sentences(text) == [
        "Mr. Smith met J. K. Lee at 3 p.m. today.", '"Hi!" said Tom.', '"Run!"', "He ran.",
        "Did it rain?", "No.", "It was 5 o'clock...", "Then it stopped"]
    assert split_sentences("the dog ran. the cat sat.") == ["the dog ran. the cat sat."]


def test_long_sentences_are_cut_at_clauses_then_words() -> None:
    s = ("the dog and the cat ran in the park, and then they saw a big ball near the tree "
         "which was very tall and old")
    chunks = split_long(s, 12)
    assert " ".join(chunks) == s and all(len(c.split()) <= 12 for c in chunks)
    assert chunks[0] == "the dog and the cat ran in the park,"  # the comma, not word 12
    assert split_long("a b c d e f g h i j", 4) == ["a b c d", "e f g", "h i j"]  # even sizes
    assert split_long("x y and z w", 3) == ["x y", "and z w"]  # before a conjunction
    assert split_long("short one", 5) == ["short one"]


def test_pack_and_segment_modes() -> None:
    sents = ["Aa bb cc.", "Dd ee.", "Ff gg hh ii.", "Jj."]
    assert pack(sents, 5) == ["Aa bb cc. Dd ee.", "Ff gg hh ii. Jj."]
    lines = ["Aa bb cc. Dd ee.", "Ff gg hh ii jj kk ll mm. Nn oo."]
    assert segment(lines, "line", 6) == ["Aa bb cc. Dd ee.", "Ff gg hh ii", "jj kk ll mm. Nn oo."]
    assert segment(lines, "sentence", 6) == ["Aa bb cc.", "Dd ee.", "Ff gg hh ii",
                                             "jj kk ll mm.", "Nn oo."]
    assert segment(lines, "document", 6) == ["Aa bb cc. Dd ee.", "Ff gg hh ii",
                                             "jj kk ll mm. Nn oo."]
    assert segment(["the dog ran.", "the cat sat."], "document", 6, sentences=True) == [
        "the dog ran. the cat sat."]
    for mode in ("line", "sentence", "document"):
        out = segment(lines, mode, 6)
        assert " ".join(out).split() == " ".join(lines).split()  # nothing lost or moved
        assert all(len(u.split()) <= 6 for u in out)


def test_duration_limit_and_speakable() -> None:
    assert words_for_seconds(20.0, 140, pad_s=0.1) == 46
    assert words_for_seconds(0.1, 140) == 1
    assert speakable("Hi!") and speakable("42") and not speakable("... — !")
