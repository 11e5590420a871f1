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
