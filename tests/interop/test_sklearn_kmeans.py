"""scikit-learn MiniBatchKMeans (joblib) <-> spokenlm tokenizer: identical unit assignment."""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans

from spokenlm.common.errors import InputError
from spokenlm.interop.sklearn_kmeans import export_kmeans, import_kmeans, load_sklearn_centroids
from spokenlm.testing.encoders import tiny_hubert_dir
from spokenlm.tokenize.encoders import build_encoder
from spokenlm.tokenize.kmeans import KMeans
from spokenlm.tokenize.tokenizer import SpeechTokenizer

K, D = 50, 32


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3000, D)).astype(np.float32)


@pytest.fixture(scope="module")
def km_file(tmp_path_factory: pytest.TempPathFactory, features: np.ndarray) -> Path:
    """What fairseq's learn_kmeans.py writes (same estimator settings, tiny batch)."""
    km = MiniBatchKMeans(n_clusters=K, init="k-means++", max_iter=20, batch_size=500, tol=0.0,
                         max_no_improvement=100, n_init=3, reassignment_ratio=0.0,
                         random_state=0, compute_labels=False, init_size=None)
    km.fit(features[:2000])
    path = tmp_path_factory.mktemp("km") / "km.bin"
    joblib.dump(km, path)
    return path


@pytest.fixture(scope="module")
def hubert32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert_dir(tmp_path_factory.mktemp("models") / "hubert", hidden_size=D)


def test_import_assigns_like_sklearn_predict(tmp_path: Path, km_file: Path, hubert32: Path,
                                             features: np.ndarray) -> None:
    out = import_kmeans(km_path=km_file, output=tmp_path / "tok", encoder="hubert",
                        encoder_path=hubert32, layer=2)
    tok = SpeechTokenizer.from_pretrained(out, device="cpu")
    assert tok.n_units == K and tok.encoder.config()["layer"] == 2
    held_out = features[2000:]
    expected = joblib.load(km_file).predict(held_out)
    np.testing.assert_array_equal(tok.kmeans.assign(held_out), expected)


def test_import_checks_the_encoder_dim(tmp_path: Path, km_file: Path) -> None:
    with pytest.raises(InputError, match="32-dim but encoder mfcc"):
        import_kmeans(km_path=km_file, output=tmp_path / "tok", encoder="mfcc")


def test_export_predicts_like_spokenlm(tmp_path: Path, features: np.ndarray) -> None:
    centroids = np.random.default_rng(1).normal(size=(K, 39)).astype(np.float32)
    tok_dir = SpeechTokenizer(build_encoder({"name": "mfcc"}), KMeans(centroids),
                              device="cpu").save_pretrained(tmp_path / "tok")
    out = export_kmeans(tokenizer=tok_dir, output=tmp_path / "km.bin")
    km = joblib.load(out)
    assert isinstance(km, MiniBatchKMeans)
    x = np.random.default_rng(2).normal(size=(1000, 39)).astype(np.float32)
    np.testing.assert_array_equal(km.predict(x), KMeans(centroids).assign(x))
    assert km.transform(x[:5]).shape == (5, K)
    # and it imports back to the same centroids
    back = import_kmeans(km_path=out, output=tmp_path / "tok2", encoder="mfcc")
    np.testing.assert_array_equal(KMeans.load(back / "centroids.safetensors").centroids,
                                  centroids)


def test_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="nope.bin"):
        import_kmeans(km_path=tmp_path / "nope.bin", output=tmp_path / "tok", encoder="mfcc")
    joblib.dump({"centers": [1, 2]}, tmp_path / "dict.bin")
    with pytest.raises(InputError, match="not a fitted k-means"):
        import_kmeans(km_path=tmp_path / "dict.bin", output=tmp_path / "tok", encoder="mfcc")
    (tmp_path / "junk.bin").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="cannot read it as a joblib"):
        import_kmeans(km_path=tmp_path / "junk.bin", output=tmp_path / "tok", encoder="mfcc")
    monkeypatch.setitem(sys.modules, "sklearn", None)  # writing needs it, reading does not
    tok_dir = SpeechTokenizer(build_encoder({"name": "mfcc"}),
                              KMeans(np.zeros((2, 39), np.float32)),
                              device="cpu").save_pretrained(tmp_path / "tok2")
    with pytest.raises(InputError, match="pip install scikit-learn"):
        export_kmeans(tokenizer=tok_dir, output=tmp_path / "out.bin")


def test_reading_needs_neither_sklearn_nor_joblib(tmp_path: Path, km_file: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    expected = joblib.load(km_file).cluster_centers_
    for name in [m for m in sys.modules if m.split(".")[0] in ("sklearn", "joblib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "joblib", None)
    np.testing.assert_array_equal(load_sklearn_centroids(km_file), expected)
