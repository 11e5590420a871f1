from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spokenlm.common.errors import ArtifactError, InputError
from spokenlm.tokenize.kmeans import KMeans, subsample


def _blobs(k: int = 5, n: int = 200, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 20
    labels = rng.integers(0, k, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def test_recovers_well_separated_clusters() -> None:
    x, labels = _blobs()
    km = KMeans.fit(x, 5, niter=25, seed=0)
    pred = km.assign(x)
    assert pred.dtype == np.int64 and pred.shape == (len(x),)
    # same partition up to a relabelling
    pairs = {(int(a), int(b)) for a, b in zip(labels, pred)}
    assert len(pairs) == 5
    assert km.inertia(x) / len(x) < 2 * x.shape[1]


def test_assign_equals_brute_force_argmin() -> None:
    rng = np.random.default_rng(1)
    km = KMeans(rng.normal(size=(16, 6)).astype(np.float32))
    x = rng.normal(size=(300, 6)).astype(np.float32)
    d2 = ((x[:, None, :] - km.centroids[None]) ** 2).sum(-1)  # (N, K)
    np.testing.assert_array_equal(km._search(x, batch=7)[1], d2.argmin(1))
    assert km.inertia(x) == pytest.approx(d2.min(1).sum(), rel=1e-4)


def test_too_few_frames_is_a_clear_error() -> None:
    x, _ = _blobs(n=5)
    with pytest.raises(InputError, match="need at least k=8 frames; got 5.*smaller --n-units"):
        KMeans.fit(x, 8)


def test_wrong_dim_is_a_clear_error() -> None:
    km = KMeans(np.zeros((3, 4), np.float32))
    with pytest.raises(InputError, match="dim 4"):
        km.assign(np.zeros((2, 5), np.float32))


def test_subsample_is_seeded_and_bounded() -> None:
    x = np.arange(100, dtype=np.float32)[:, None]
    a, b = subsample(x, 10, seed=3), subsample(x, 10, seed=3)
    assert len(a) == 10 and np.array_equal(a, b)
    assert subsample(x, 1000) is x
    km = KMeans.fit(np.repeat(x, 2, axis=1), 4, max_frames=50, seed=0)
    assert km.centroids.shape == (4, 2)


def test_save_load_round_trip(tmp_path: Path) -> None:
    x, _ = _blobs()
    km = KMeans.fit(x, 5)
    loaded = KMeans.load(km.save(tmp_path / "c.safetensors"))
    np.testing.assert_array_equal(loaded.centroids, km.centroids)
    np.testing.assert_array_equal(loaded.assign(x), km.assign(x))
    with pytest.raises(ArtifactError, match="not found"):
        KMeans.load(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="not a readable safetensors"):
        KMeans.load(tmp_path / "bad.safetensors")


def test_kmeans_plusplus_seeds_one_centroid_per_separated_cluster() -> None:
    from spokenlm.tokenize.kmeans import kmeans_plusplus
    rng = np.random.default_rng(0)
    means = rng.standard_normal((8, 16)).astype(np.float32) * 100
    x = (means[rng.integers(0, 8, 4000)] + rng.standard_normal((4000, 16))).astype(np.float32)
    c = kmeans_plusplus(x, 8, seed=1)
    nearest_mean = np.argmin(((c[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert sorted(nearest_mean.tolist()) == list(range(8))
    assert (kmeans_plusplus(x, 8, seed=1) == c).all()  # deterministic in seed


def test_fit_init_options() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    a = KMeans.fit(x, 16, seed=0)
    b = KMeans.fit(x, 16, seed=0, init="random", n_init=2)
    assert a.centroids.shape == b.centroids.shape == (16, 8)
    with pytest.raises(InputError, match="init"):
        KMeans.fit(x, 16, init="forgy")
