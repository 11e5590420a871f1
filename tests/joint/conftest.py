"""A tiny paired corpus for the joint recipes: speech-like wavs with text and phonemes,
fake frame alignments (phones spread evenly) and an unpaired text file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spokenlm.audio.load import load_audio
from spokenlm.common.files import read_jsonl, write_jsonl
from spokenlm.data.phonemes import split_phones
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.tokenize.encoders.base import num_frames

TEXTS = ["the dog runs", "a cat sat", "big red ball", "we see it", "dogs bark", "go home"]
PHONES = ["ð ə | d ɑː ɡ | ɹ ʌ n z", "ɐ | k æ t | s æ t", "b ɪ ɡ | ɹ ɛ d | b ɔː l",
          "w iː | s iː | ɪ t", "d ɑː ɡ z | b ɑːɹ k", "ɡ oʊ | h oʊ m"]
UNPAIRED = ["the cat runs home", "a big dog sat", "we see red balls", "go see the cat"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("joint")
    wavs = write_wav_folder(root / "wavs", n=6, seed=3, seconds=(0.7, 1.0))
    manifest = write_test_manifest(root / "train.jsonl", wavs, text=TEXTS, phonemes=PHONES)
    rows = []
    for r in read_jsonl(manifest):
        n = num_frames(len(load_audio(r["path"])))
        phones = split_phones(r["phonemes"])
        edges = np.round(np.linspace(2, n - 2, len(phones) + 1)).astype(int)
        labels = ["sil"] * n
        intervals = [[0.0, edges[0] / 50, "sil"]]
        for p, s, e in zip(phones, edges[:-1], edges[1:]):
            labels[s:e] = [p] * (e - s)
            intervals.append([s / 50, e / 50, p])
        intervals.append([edges[-1] / 50, n / 50, "sil"])
        rows.append({"id": r["id"], "phones": labels, "intervals": intervals})
    alignments = write_jsonl(root / "alignments.jsonl", rows)
    text = root / "unpaired.txt"
    text.write_text("\n".join(UNPAIRED) + "\n")
    return {"root": root, "manifest": manifest, "alignments": alignments, "text": text}

