"""The synthetic corpus: layout, held-out speakers, audio format, resume, determinism."""

from __future__ import annotations

import json
import os

import pytest
import soundfile as sf

from spokenlm.audio.manifest import read_manifest
from spokenlm.common.errors import InputError
from spokenlm.data.synth import SPEAKERS, split_speakers, synth_corpus
from spokenlm.data.tts import speak, speaker_table

TINY = dict(n_utterances=16, n_speakers=4, n_valid_speakers=1, n_test_speakers=1, seed=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return synth_corpus(output=tmp_path_factory.mktemp("syn") / "corpus", **TINY)


def test_layout_and_rows(corpus):
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "all.jsonl", "speakers.json",
                 "vocabulary.json", "config.json"):
        assert (corpus / name).exists(), name
    rows = read_manifest(corpus / "all.jsonl")
    assert len(rows) == 16
    for r in rows:
        assert set(r) >= {"id", "path", "duration", "sample_rate", "num_channels", "speaker",
                          "text", "phonemes", "split"}
        assert r["path"].endswith(f"wavs/{r['speaker']}/{r['id']}.wav")
        # espeak-ng may join a function word to the next ("that the" -> "ð æ t ð ə")
        assert 0 < r["phonemes"].count("|") < len(r["text"].split())
    vocab = json.loads((corpus / "vocabulary.json").read_text())
    assert vocab["dog"] == ["D", "AO", "G"]


def test_held_out_speakers(corpus):
    speakers = {s["id"]: s["split"] for s in json.loads((corpus / "speakers.json").read_text())}
    assert sorted(speakers.values()) == ["test", "train", "train", "valid"]
    by_split = {split: {r["speaker"] for r in read_manifest(corpus / f"{split}.jsonl")}
                for split in ("train", "valid", "test")}
    assert not by_split["train"] & (by_split["valid"] | by_split["test"])
    assert all(speakers[s] == split for split, ss in by_split.items() for s in ss)


def test_wavs_are_16k_mono_speech(corpus):
    for r in read_manifest(corpus / "all.jsonl")[:4]:
        wav, sr = sf.read(r["path"])
        assert sr == 16_000 and wav.ndim == 1 and r["num_channels"] == 1
        assert abs(wav).max() > 0.05
        assert 0.5 < len(wav) / sr < 12 and r["duration"] == pytest.approx(len(wav) / sr, 1e-3)


def test_resume_and_determinism(corpus, tmp_path):
    rows = read_manifest(corpus / "all.jsonl")
    kept, removed = rows[0]["path"], rows[1]["path"]
    mtime = os.stat(kept).st_mtime_ns
    before = (corpus / "all.jsonl").read_text()
    (corpus / "all.jsonl").unlink()
    os.unlink(removed)
    synth_corpus(output=corpus, jobs=1, **TINY)
    assert (corpus / "all.jsonl").read_text() == before
    assert os.path.exists(removed)
    assert os.stat(kept).st_mtime_ns == mtime

    other = synth_corpus(output=tmp_path / "again", **TINY)
    assert (other / "all.jsonl").read_text() == before
    assert (other / "wavs" / "spk00" / "spk00_00000.wav").read_bytes() == \
        (corpus / "wavs" / "spk00" / "spk00_00000.wav").read_bytes()


def test_other_options_in_same_folder_is_an_error(corpus):
    with pytest.raises(InputError, match="other options"):
        synth_corpus(output=corpus, **{**TINY, "seed": 1})


def test_speaker_table_and_splits():
    assert len({(s.voice, s.pitch, s.rate) for s in speaker_table(40)}) == 40
    assert speaker_table(12) == list(SPEAKERS[:12])
    splits = split_speakers(speaker_table(12), 1, 2, seed=0)
    assert sorted(splits.values()).count("train") == 9
    with pytest.raises(InputError, match="n_speakers"):
        split_speakers(speaker_table(2), 1, 1, seed=0)


def test_speak_skips_existing(tmp_path):
    out = tmp_path / "x.wav"
    out.write_bytes(b"keep me")
    speak(["hello there"], SPEAKERS[1], [out])
    assert out.read_bytes() == b"keep me"
    speak(["hello there"], SPEAKERS[1], [tmp_path / "y.wav"])
    assert sf.info(tmp_path / "y.wav").samplerate == 16_000


def test_grammar_config_is_unchanged(corpus):
    """New options stay out of a grammar corpus's config.json (the demo's resume checks it)."""
    config = json.loads((corpus / "config.json").read_text())
    assert list(config) == ["n_utterances", "n_speakers", "n_valid_speakers", "n_test_speakers",
                            "seed", "sample_rate", "spokenlm_version"]
    with pytest.raises(InputError, match="--split-by: used only with --text"):
        synth_corpus(output=corpus, split_by="document", **TINY)


STORY_TEXT = """Lily had a red ball. She threw it high!

Tom saw a cat. "Hello, cat!" said Tom.
...

<|endoftext|>
Sam ran to the lake, and he swam with the ducks until the sun went down.

Max slept.
The end.
"""
TEXT_OPTS = dict(n_speakers=4, n_valid_speakers=1, n_test_speakers=1, valid_fraction=0.25,
                 test_fraction=0.25, max_words=8, seed=0)


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "stories.txt").write_text(STORY_TEXT)
    return synth_corpus(output=root / "corpus", text=root / "stories.txt", **TEXT_OPTS)


def test_text_corpus_rows_and_document_splits(text_corpus):
    rows = read_manifest(text_corpus / "all.jsonl")
    assert [r["text"] for r in rows] == [
        "Lily had a red ball.", "She threw it high!", "Tom saw a cat.", '"Hello, cat!" said Tom.',
        "Sam ran to the lake,", "and he swam with the ducks", "until the sun went down.",
        "Max slept.", "The end."]
    assert [(r["document"], r["position"]) for r in rows] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1)]
    speakers = {s["id"]: s["split"] for s in json.loads((text_corpus / "speakers.json").read_text())}
    doc_split = {}
    for r in rows:
        assert doc_split.setdefault(r["document"], r["split"]) == r["split"]  # by document
        assert speakers[r["speaker"]] == r["split"]  # spoken by that split's voices
        assert r["id"] == f"doc{r['document']:05d}_{r['position']:03d}"
        assert r["path"].endswith(f"wavs/{r['speaker']}/{r['id']}.wav") and r["phonemes"]
        assert 0.3 < r["duration"] < 6 and sf.info(r["path"]).samplerate == 16_000
    assert sorted(doc_split.values()) == ["test", "train", "train", "valid"]
    for split in ("train", "valid", "test"):
        assert {r["id"] for r in read_manifest(text_corpus / f"{split}.jsonl")} == {
            r["id"] for r in rows if r["split"] == split}
    skipped = [json.loads(x) for x in (text_corpus / "skipped.jsonl").read_text().splitlines()]
    assert [(s["document"], s["text"]) for s in skipped] == [(1, "...")]
    assert json.loads((text_corpus / "vocabulary.json").read_text())["lake"] == ["L", "EY", "K"]


def test_text_corpus_resumes_and_checks_the_text(text_corpus):
    rows = read_manifest(text_corpus / "all.jsonl")
    kept, removed = rows[0]["path"], rows[1]["path"]
    mtime = os.stat(kept).st_mtime_ns
    before = (text_corpus / "all.jsonl").read_text()
    (text_corpus / "all.jsonl").unlink()
    os.unlink(removed)
    text = text_corpus.parent / "stories.txt"
    synth_corpus(output=text_corpus, text=text, jobs=1, **TEXT_OPTS)
    assert (text_corpus / "all.jsonl").read_text() == before
    assert os.path.exists(removed) and os.stat(kept).st_mtime_ns == mtime
    other = text_corpus.parent / "other.txt"
    other.write_text(STORY_TEXT.replace("Max", "Rex"))
    with pytest.raises(InputError, match="text_sha256"):
        synth_corpus(output=text_corpus, text=other, **TEXT_OPTS)


def test_text_corpus_errors(tmp_path):
    (tmp_path / "one.txt").write_text("Just one story. Two sentences.\n")
    with pytest.raises(InputError, match="one.txt: 1 document"):
        synth_corpus(output=tmp_path / "c", text=tmp_path / "one.txt", **TEXT_OPTS)
    with pytest.raises(InputError, match="--text and --stories"):
        synth_corpus(output=tmp_path / "c", text=tmp_path / "one.txt", stories=2)
    with pytest.raises(InputError, match="not found"):
        synth_corpus(output=tmp_path / "c", text=tmp_path / "nope.txt")


def test_story_corpus(tmp_path):
    out = synth_corpus(output=tmp_path / "s", stories=4, sentences_per_story=2,
                       split_by="document", voice_per="document", **{
                           **TEXT_OPTS, "max_words": 40})
    rows = read_manifest(out / "all.jsonl")
    assert [r["document"] for r in rows] == [0, 1, 2, 3]  # a story is one utterance
    from spokenlm.data.grammar import generate_stories

    stories = generate_stories(4, 2, seed=0)
    assert [r["text"] for r in rows] == [" ".join(s.text for s in st.sentences)
                                         for st in stories]
    assert sorted(r["split"] for r in rows) == ["test", "train", "train", "valid"]
    assert "dog" in json.loads((out / "vocabulary.json").read_text())


def test_pairs_repeat_training_sentences_in_other_training_voices(tmp_path):
    out = synth_corpus(output=tmp_path / "c", jobs=1, **TINY)
    before = (out / "all.jsonl").read_text()
    synth_corpus(output=out, jobs=1, pairs=3, **TINY)  # added to the corpus made above
    assert (out / "all.jsonl").read_text() == before
    train = {r["id"]: r for r in read_manifest(out / "train.jsonl")}
    voices = {s["id"] for s in json.loads((out / "speakers.json").read_text())
              if s["split"] == "train"}
    pairs = read_manifest(out / "pairs.jsonl")
    assert len(pairs) == 3 and len({p["same_as"] for p in pairs}) == 3
    for p in pairs:
        same = train[p["same_as"]]
        assert p["text"] == same["text"] and p["split"] == "train"
        assert p["speaker"] in voices and p["speaker"] != same["speaker"]
        assert p["path"].endswith(f"pairs/{p['speaker']}/{p['id']}.wav")
        wav, sr = sf.read(p["path"])
        assert sr == 16_000 and abs(wav).max() > 0.05
    with pytest.raises(InputError, match="at least 2 training speakers"):
        synth_corpus(output=tmp_path / "one", pairs=2, **{**TINY, "n_speakers": 3})
    with pytest.raises(InputError, match="grammar corpora only"):
        synth_corpus(output=tmp_path / "doc", pairs=2, stories=2, **TINY)
