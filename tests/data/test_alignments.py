"""Alignments from MFA TextGrids (file and folder), CTM and JSONL: intervals, normalisation,
and the errors a user gets for a missing tier, a bad line or overlapping intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokenlm.common.errors import InputError
from spokenlm.common.files import write_jsonl
from spokenlm.data.alignments import (Interval, alignment_format, normalize_label,
                                      read_alignments)
from spokenlm.testing.alignments import ctm_lines, write_mfa_textgrid

# "the cat", MFA style: a pause (sp), an unknown word's spoken noise (spn), blanks at the
# edges and between words (empty intervals), ARPAbet with stress
PHONES = [(0.10, 0.15, "DH"), (0.15, 0.22, "AH0"), (0.22, 0.30, "sp"), (0.30, 0.38, "K"),
          (0.38, 0.50, "AE1"), (0.50, 0.58, "T"), (0.70, 0.90, "spn")]
WORDS = [(0.10, 0.22, "the"), (0.30, 0.58, "cat"), (0.70, 0.90, "<unk>")]
EXPECTED = [Interval(0.0, 0.10, "SIL"), Interval(0.10, 0.15, "DH"), Interval(0.15, 0.22, "AH"),
            Interval(0.22, 0.30, "SIL"), Interval(0.30, 0.38, "K"), Interval(0.38, 0.50, "AE"),
            Interval(0.50, 0.58, "T"), Interval(0.58, 0.70, "SIL"), Interval(0.70, 0.90, "SIL"),
            Interval(0.90, 1.0, "SIL")]


def _approx(got: list[Interval], want: list[Interval]) -> bool:
    return len(got) == len(want) and all(
        g.label == w.label and g.start == pytest.approx(w.start) and g.end == pytest.approx(w.end)
        for g, w in zip(got, want))


def test_mfa_textgrid_phones_and_words(tmp_path: Path) -> None:
    tg = write_mfa_textgrid(tmp_path / "utt1.TextGrid", PHONES, WORDS, duration=1.0)
    assert "text = \"\"" in tg.read_text()  # MFA layout: blanks are empty intervals
    al = read_alignments(tg)
    assert list(al) == ["utt1"] and al.format == "textgrid" and al.speakers == {}
    assert _approx(al["utt1"], EXPECTED)
    words = read_alignments(tg, tier="words")["utt1"]
    assert [w.label for w in words] == ["SIL", "the", "SIL", "cat", "SIL", "<unk>", "SIL"]
    raw = read_alignments(tg, silence_label=None, strip_stress=False)["utt1"]  # as written
    assert [iv.label for iv in raw] == [p for _, _, p in PHONES]
    kept = read_alignments(tg, strip_stress=False)["utt1"]
    assert [iv.label for iv in kept][1:3] == ["DH", "AH0"]


def test_mfa_per_speaker_tiers_merge_with_their_speakers(tmp_path: Path) -> None:
    tg = write_mfa_textgrid(tmp_path / "conv.TextGrid",
                            [(0.1, 0.2, "HH"), (0.2, 0.4, "AY1"), (0.4, 0.6, "sil")],
                            speaker="alice", duration=2.0, more_speakers={
                                "bob": ([(0.5, 0.7, "sil"), (1.0, 1.2, "Y"), (1.2, 1.4, "OW1")],
                                        [(1.0, 1.4, "yo")])})
    al = read_alignments(tg)
    assert [iv.label for iv in al["conv"]] == ["SIL", "HH", "AY", "SIL", "Y", "OW", "SIL"]
    assert al.speakers["conv"] == [None, "alice", "alice", None, "bob", "bob", None]


def test_missing_tier_error_lists_the_tiers(tmp_path: Path) -> None:
    tg = write_mfa_textgrid(tmp_path / "utt1.TextGrid", PHONES, WORDS)
    with pytest.raises(InputError) as e:
        read_alignments(tg, tier="phone")
    msg = str(e.value)
    assert "\n" not in msg and str(tg) in msg
    assert "no tier 'phone'" in msg and "'words', 'phones'" in msg and "--tier" in msg


def test_unreadable_textgrid_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.TextGrid"
    bad.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\n')
    with pytest.raises(InputError, match="not a readable TextGrid") as e:
        read_alignments(bad)
    assert "\n" not in str(e.value)


def test_textgrid_folder_in_mfa_layout(tmp_path: Path) -> None:
    out = tmp_path / "aligned"
    write_mfa_textgrid(out / "spk1" / "spk1-a.TextGrid", PHONES, WORDS, duration=1.0)
    write_mfa_textgrid(out / "spk2" / "ch1" / "spk2-b.TextGrid", PHONES[:3], WORDS[:1])
    (out / "spk1" / "notes.txt").write_text("not an alignment")
    al = read_alignments(out)
    assert al.format == "textgrid_dir" and sorted(al) == ["spk1-a", "spk2-b"]
    assert _approx(al["spk1-a"], EXPECTED)
    write_mfa_textgrid(out / "spk3" / "spk1-a.TextGrid", PHONES, WORDS)
    with pytest.raises(InputError, match="both give utterance id 'spk1-a'"):
        read_alignments(out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .TextGrid file"):
        read_alignments(tmp_path / "empty")


def test_ctm_phone_level_several_utterances(tmp_path: Path) -> None:
    lines = [";; a Kaldi phone CTM, position-dependent phones",
             *ctm_lines("u1", [(0.0, 0.1, "SIL"), (0.1, 0.15, "DH_B"), (0.15, 0.22, "AH0_E")],
                        channel="1"),
             *ctm_lines("u2", [(0.0, 0.2, "K_B"), (0.2, 0.3, "AE1_I"), (0.3, 0.4, "T_E")],
                        channel="A", confidence=0.93)]
    (tmp_path / "phones.ctm").write_text("\n".join(lines) + "\n\n")
    al = read_alignments(tmp_path / "phones.ctm")
    assert al.format == "ctm"
    assert _approx(al["u1"], [Interval(0.0, 0.1, "SIL"), Interval(0.1, 0.15, "DH"),
                              Interval(0.15, 0.22, "AH")])
    assert _approx(al["u2"], [Interval(0.0, 0.2, "K"), Interval(0.2, 0.3, "AE"),
                              Interval(0.3, 0.4, "T")])
    # a Kaldi word CTM named plainly `ctm`: gaps stay unlabelled
    (tmp_path / "ctm").write_text("u1 1 0.10 0.12 the\nu1 1 0.30 0.28 cat\n")
    words = read_alignments(tmp_path / "ctm")["u1"]
    assert _approx(words, [Interval(0.10, 0.22, "the"), Interval(0.30, 0.58, "cat")])


def test_malformed_ctm_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.ctm"
    f.write_text("u1 1 0.00 0.10 SIL\nu1 1 0.10 K\n")
    with pytest.raises(InputError) as e:
        read_alignments(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:2:") and "got 4 fields" in msg and "<duration>" in msg
    f.write_text("u1 1 0.00 abc SIL\n")
    with pytest.raises(InputError, match=r"a.ctm:1: start, duration and confidence must be"):
        read_alignments(f)
    f.write_text("u1 1 0.00 0.10 3\nu1 1 0.10 0.10 17\n")
    with pytest.raises(InputError, match="integer id.*int2sym"):
        read_alignments(f)
    f.write_text("u1 1 0.20 0.10 K\nu1 1 0.00 0.10 AE\n")  # unsorted
    with pytest.raises(InputError, match=r"a.ctm:2: .*starts before the previous one ends"):
        read_alignments(f)


def test_jsonl_overlap_and_bad_rows(tmp_path: Path) -> None:
    f = tmp_path / "l.jsonl"
    write_jsonl(f, [{"id": "x", "intervals": [[0, 0.2, "a"], [0.1, 0.3, "b"]]}])
    with pytest.raises(InputError, match=r"row 1 \('x'\), interval 1: .*must not overlap"):
        read_alignments(f)
    write_jsonl(f, [{"id": "x", "intervals": [[0, "late", "a"]]}])
    with pytest.raises(InputError, match=r"interval 0 is \[0, \"late\", \"a\"\]"):
        read_alignments(f)
    write_jsonl(f, [{"id": "x", "intervals": []}, {"id": "x", "intervals": []}])
    with pytest.raises(InputError, match="duplicate id 'x'"):
        read_alignments(f)
    write_jsonl(f, [{"id": "x", "intervals": [[0, 0.1, "sil"], [0.1, 0.2, "IY1"],
                                              [0.2, 0.2000001, "t"]]}])
    assert [iv.label for iv in read_alignments(f)["x"]] == ["SIL", "IY", "t"]


def test_format_detection_and_label_rules(tmp_path: Path) -> None:
    (tmp_path / "labels").write_text('{"id": "x", "intervals": []}\n')
    (tmp_path / "align.txt").write_text(";; phones\nu1 1 0.00 0.10 K\n")
    assert alignment_format(tmp_path / "labels") == "jsonl"
    assert alignment_format(tmp_path / "align.txt") == "ctm"
    (tmp_path / "notes.txt").write_text("hello world\n")
    with pytest.raises(InputError, match="not a TextGrid, CTM or labels JSONL"):
        alignment_format(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="alignments not found"):
        read_alignments(tmp_path / "missing.TextGrid")
    # stress only on ARPAbet-like labels; espeak / IPA names untouched
    assert [normalize_label(x) for x in ("ER2", "AXR0", "I2", "@2", "aI", "SPN", "  ")] == \
        ["ER", "AXR", "I2", "@2", "aI", "SIL", "SIL"]
    assert normalize_label("sp", silence_label="<sil>") == "<sil>"
