"""The mode filter over frame units (``tokenize train --unit-filter``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.tokenizers import streamed_and_whole, tiny_mfcc_tokenizer
from spokenlm.tokenize import SpeechTokenizer, train_tokenizer
from spokenlm.tokenize.dedup import dedup
from spokenlm.tokenize.unit_filter import mode_filter


def _reference(units: list[int], width: int) -> list[int]:
    """The filter written out frame by frame."""
    h, out = width // 2, []
    for i, own in enumerate(units):
        win = [units[min(max(j, 0), len(units) - 1)] for j in range(i - h, i + h + 1)]
        counts = [win.count(x) for x in win]
        out.append(own if win.count(own) >= max(counts) else win[counts.index(max(counts))])
    return out


def test_known_sequences() -> None:
    u = np.array([1, 1, 2, 1, 1, 3, 3, 4, 3, 3])
    assert mode_filter(u, 3).tolist() == [1, 1, 1, 1, 1, 3, 3, 3, 3, 3]
    assert mode_filter(u, 1).tolist() == u.tolist()
    # a real change of unit survives: only runs shorter than half the window go
    assert mode_filter(np.array([5] * 4 + [6] * 4), 5).tolist() == [5] * 4 + [6] * 4
    assert mode_filter(np.zeros(0, np.int64), 5).tolist() == []


@pytest.mark.parametrize("width", [3, 5, 7])
def test_matches_the_frame_by_frame_definition(width: int) -> None:
    rng = np.random.default_rng(width)
    for _ in range(300):
        u = rng.integers(0, 4, rng.integers(1, 25)).tolist()
        assert mode_filter(np.array(u), width).tolist() == _reference(u, width)


@pytest.mark.parametrize("width", [0, 2, -1, 4])
def test_bad_width_is_refused(width: int) -> None:
    with pytest.raises(InputError, match="odd number"):
        mode_filter(np.arange(5), width)


@pytest.fixture(scope="module")
def filtered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mfcc_tokenizer(tmp_path_factory.mktemp("tok"), unit_filter=5)


def test_tokenizer_records_applies_and_reloads_the_filter(filtered: Path, tmp_path: Path) -> None:
    assert json.loads((filtered / "config.json").read_text())["unit_filter"] == 5
    tok = SpeechTokenizer.from_pretrained(filtered, device="cpu")
    wav = random_speech_like_wav(2.0, seed=3)
    raw = tok.kmeans.assign(tok.features(wav))  # (F,) unfiltered frame units
    frames = tok.encode(wav, dedup=False).units
    assert frames.tolist() == mode_filter(raw, 5).tolist() and len(frames) == len(raw)
    units = tok.encode(wav)
    assert units.units.tolist() == dedup(frames)[0].tolist()
    assert len(units.units) <= len(dedup(raw)[0])
    again = SpeechTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "copy"), device="cpu")
    assert again.unit_filter == 5 and again.encode(wav).units.tolist() == units.units.tolist()


def test_streamed_units_equal_the_whole_file(filtered: Path) -> None:
    streamed, whole = streamed_and_whole(filtered)
    assert streamed == whole and len(whole) > 100  # 6 s at 50 Hz, streamed in 9 chunks


def test_configs_without_the_key_read_as_no_filter(filtered: Path, tmp_path: Path) -> None:
    tok = SpeechTokenizer.from_pretrained(filtered, device="cpu")
    old = tok.save_pretrained(tmp_path / "old")
    cfg = json.loads((old / "config.json").read_text())
    del cfg["unit_filter"]
    (old / "config.json").write_text(json.dumps(cfg))
    assert SpeechTokenizer.from_pretrained(old, device="cpu").unit_filter == 1
    cfg["unit_filter"] = 4
    (old / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="config.json.*odd number"):
        SpeechTokenizer.from_pretrained(old, device="cpu")


def test_train_refuses_an_even_width_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--unit-filter 2"):
        train_tokenizer(manifest=tmp_path / "missing.jsonl", output=tmp_path / "t",
                        unit_filter=2)
