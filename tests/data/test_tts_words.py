from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.data.alignments import read_alignments
from spokenlm.data.tts import PAD_S, SPEAKERS, synthesize
from spokenlm.data.tts_words import word_alignments
from spokenlm.audio.load import save_wav

ROWS = [("a", SPEAKERS[0], "the dog that the cats see runs", "."),  # en-us
        ("b", SPEAKERS[2], "is the bird happy", "?"),  # en-gb, a question
        ("c", SPEAKERS[1], "the dog runs", ".")]


@pytest.fixture()
def corpus(tmp_path):
    """A corpus folder as `data synth` writes it: speakers.json, all.jsonl, wavs."""
    rows = []
    for uid, spk, text, end in ROWS:
        path = save_wav(tmp_path / "wavs" / f"{uid}.wav", synthesize(text + end, spk))
        rows.append({"id": uid, "path": str(path), "duration": sf.info(path).duration,
                     "sample_rate": 16000, "speaker": spk.id, "text": text})
    (tmp_path / "speakers.json").write_text(json.dumps(
        [{**s.to_dict(), "split": "train"} for s in SPEAKERS[:3]]))
    write_jsonl(tmp_path / "all.jsonl", rows)
    return tmp_path


def test_word_intervals_of_espeak_speech(corpus, tmp_path) -> None:
    out = word_alignments(corpus=corpus, output=tmp_path / "out" / "words.jsonl")
    got = read_alignments(out, tier="words")
    assert sorted(got) == ["a", "b", "c"]
    for uid, _, text, _ in ROWS:
        ivs = got[uid]
        words = [iv.label for iv in ivs if iv.label != "SIL"]
        assert " ".join(words) == text
        assert ivs[0].start == 0 and ivs[0].end == pytest.approx(PAD_S)
        wav, sr = sf.read(corpus / "wavs" / f"{uid}.wav")
        assert ivs[-1].end == pytest.approx(len(wav) / sr, abs=1e-3)
        assert all(a.end == pytest.approx(b.start, abs=1e-4) for a, b in zip(ivs, ivs[1:]))
        assert np.abs(wav[: int(PAD_S * sr)]).max() == 0  # the leading interval is silence
        assert all(iv.end - iv.start > 0.03 for iv in ivs)
    # espeak-ng speaks "that the" as one word: one interval for both
    assert [iv.label for iv in got["a"]][1:5] == ["the", "dog", "that the", "cats"]


def test_audio_that_espeak_does_not_reproduce_is_skipped(corpus, tmp_path) -> None:
    rows = read_jsonl(corpus / "all.jsonl")
    rows[1]["text"] = "is the cat happy"  # not what the wav says
    write_jsonl(corpus / "all.jsonl", rows)
    out = word_alignments(corpus=corpus, output=tmp_path / "words.jsonl")
    assert [r["id"] for r in read_jsonl(out)] == ["a", "c"]
    skipped = read_jsonl(tmp_path / "words.skipped.jsonl")
    assert [r["id"] for r in skipped] == ["b"] and "reproduce" in skipped[0]["reason"]
    with pytest.raises(InputError, match="speakers.json"):
        word_alignments(corpus=tmp_path / "out", output=tmp_path / "w.jsonl")
