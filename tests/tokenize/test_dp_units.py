"""Duration-penalised units (``tokenize train --unit-penalty``, DPDP)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.testing.audio import random_speech_like_wav
from spokenlm.testing.tokenizers import streamed_and_whole, tiny_mfcc_tokenizer
from spokenlm.tokenize import SpeechTokenizer, train_tokenizer
from spokenlm.tokenize.dedup import dedup
from spokenlm.tokenize.dp_units import ViterbiAssigner, dp_assign
from spokenlm.tokenize.kmeans import KMeans


def _cost(dist: np.ndarray, units: tuple[int, ...] | np.ndarray, penalty: float) -> float:
    return float(sum(dist[t, u] for t, u in enumerate(units))
                 + penalty * sum(a != b for a, b in zip(units, units[1:])))


def test_known_sequence() -> None:
    d = np.array([[0, 9], [0, 9], [5, 4], [0, 9], [0, 9]], dtype=float)
    assert dp_assign(d, 0.0).tolist() == [0, 0, 1, 0, 0]  # nearest centroid
    assert dp_assign(d, 0.4).tolist() == [0, 0, 1, 0, 0]  # saving 1 > two changes of 0.4
    assert dp_assign(d, 2.0).tolist() == [0, 0, 0, 0, 0]  # saving 1 < two changes of 2
    assert dp_assign(np.zeros((0, 3)), 1.0).tolist() == []


def test_is_the_exact_minimum_of_the_cost() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        f, k = int(rng.integers(1, 7)), int(rng.integers(1, 4))
        d, pen = rng.random((f, k)) * 3, float(rng.random() * 2)
        best = min(_cost(d, s, pen) for s in itertools.product(range(k), repeat=f))
        assert _cost(d, dp_assign(d, pen), pen) == pytest.approx(best)


def test_penalty_zero_is_nearest_centroid_and_more_penalty_fewer_units() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    km = KMeans.fit(x, 12, niter=5, seed=0)
    d = km.distances(x)
    assert d.shape == (600, 12) and np.allclose(d.min(1), km._search(x)[0], rtol=1e-3, atol=1e-3)
    assert dp_assign(d, 0.0).tolist() == km.assign(x).tolist()
    counts = [len(dedup(dp_assign(d, p))[0]) for p in (0.0, 1.0, 5.0, 50.0)]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0] / 3


def test_chunks_give_the_units_of_the_whole() -> None:
    d = np.random.default_rng(2).random((257, 37)) * 4  # K not a multiple of 8: padded bits
    whole = dp_assign(d, 1.5)
    a = ViterbiAssigner(1.5)
    for i in range(0, 257, 50):
        a.push(d[i:i + 50])
    assert a.finish().tolist() == whole.tolist()
    assert dp_assign(iter([d[:1], d[1:]]), 1.5).tolist() == whole.tolist()


@pytest.mark.parametrize("penalty", [-1.0, float("nan"), float("inf"), "1"])
def test_bad_penalty_is_refused(penalty: object) -> None:
    with pytest.raises(InputError, match="duration penalty must be a number >= 0"):
        dp_assign(np.zeros((2, 2)), penalty)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def penalised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mfcc_tokenizer(tmp_path_factory.mktemp("tok"), unit_penalty=1.0)


def test_tokenizer_records_applies_and_reloads_the_penalty(penalised: Path,
                                                           tmp_path: Path) -> None:
    cfg = json.loads((penalised / "config.json").read_text())
    stats = json.loads((penalised / "kmeans_stats.json").read_text())
    assert cfg["unit_penalty"] == 1.0
    assert cfg["distance_scale"] == pytest.approx(stats["inertia_per_frame"])
    tok = SpeechTokenizer.from_pretrained(penalised, device="cpu")
    wav = random_speech_like_wav(2.0, seed=3)
    feats = tok.features(wav)
    frames = tok.encode(wav, dedup=False).units
    expected = dp_assign(tok.kmeans.distances(feats), cfg["distance_scale"])
    assert frames.tolist() == expected.tolist()
    assert len(tok.encode(wav).units) < len(dedup(tok.kmeans.assign(feats))[0])
    again = SpeechTokenizer.from_pretrained(tok.save_pretrained(tmp_path / "copy"), device="cpu")
    assert again.encode(wav).units.tolist() == tok.encode(wav).units.tolist()


def test_streamed_units_equal_the_whole_file(penalised: Path) -> None:
    streamed, whole = streamed_and_whole(penalised)
    assert streamed == whole and len(whole) > 100  # 6 s at 50 Hz, streamed in 9 chunks


def test_old_configs_read_as_no_penalty_and_a_bad_one_is_refused(penalised: Path,
                                                                  tmp_path: Path) -> None:
    old = SpeechTokenizer.from_pretrained(penalised, device="cpu").save_pretrained(tmp_path / "o")
    cfg = json.loads((old / "config.json").read_text())
    for key in ("unit_penalty", "distance_scale"):
        del cfg[key]
    (old / "config.json").write_text(json.dumps(cfg))
    assert SpeechTokenizer.from_pretrained(old, device="cpu").unit_penalty == 0.0
    (old / "config.json").write_text(json.dumps({**cfg, "unit_penalty": 1.0}))
    with pytest.raises(ArtifactError, match="config.json.*distance scale"):
        SpeechTokenizer.from_pretrained(old, device="cpu")
    (old / "config.json").write_text(json.dumps({**cfg, "unit_penalty": -2}))
    with pytest.raises(ArtifactError, match="config.json.*>= 0"):
        SpeechTokenizer.from_pretrained(old, device="cpu")


def test_train_refuses_a_negative_penalty_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--unit-penalty -1"):
        train_tokenizer(manifest=tmp_path / "missing.jsonl", output=tmp_path / "t",
                        unit_penalty=-1.0)
