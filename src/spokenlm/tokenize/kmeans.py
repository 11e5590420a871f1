"""k-means over frame features with faiss: fit, nearest-centroid assignment, save/load.

GSLM and HuBERT use 50-2000 clusters; the reference recipes fit scikit-learn's
MiniBatchKMeans (k-means++ initialisation, 20 restarts of it). Here: greedy k-means++
(:func:`kmeans_plusplus`) on the training sample, then full Lloyd iterations in faiss, much
faster. faiss's own random initialisation left held-out inertia ~2.5 % above the reference
recipe's in ``benchmarks/bench_kmeans.py``; k-means++ closes most of that gap.
Centroids are saved as ``centroids.safetensors`` (``centroids``: float32 (K, D)).
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
from safetensors.numpy import load_file, save_file

from ..common.errors import ArtifactError, InputError
from ..common.files import atomic_path

#: rows per faiss search call in :meth:`KMeans.assign` (bounds the (batch, K) distance matrix)
ASSIGN_BATCH = 65_536


def subsample(x: np.ndarray, max_rows: int | None, seed: int = 0) -> np.ndarray:
    """At most ``max_rows`` rows of ``x`` (N, D), drawn without replacement with ``seed``;
    ``x`` itself when it is small enough. Row order is preserved."""
    if max_rows is None or len(x) <= max_rows:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=max_rows, replace=False))
    return x[idx]


def kmeans_plusplus(x: np.ndarray, k: int, seed: int = 0, n_local_trials: int | None = None
                    ) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with ``2 + ln k`` candidates
    per step as in scikit-learn): centroids float32 (k, D) chosen among the rows of ``x``
    (N, D). O(N D k trials) in BLAS matmuls."""
    rng = np.random.default_rng(seed)
    n = len(x)
    trials = n_local_trials or 2 + int(np.log(k))
    sq = np.einsum("ij,ij->i", x, x)  # (N,)
    centers = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centers[0] = x[first]
    closest = np.maximum(sq - 2.0 * (x @ x[first]) + sq[first], 0.0)  # (N,)
    for i in range(1, k):
        cum = np.cumsum(closest, dtype=np.float64)
        if cum[-1] <= 0:  # fewer distinct points than k: any row will do
            cand = rng.integers(n, size=trials)
        else:
            cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        # squared distances of every row to each candidate, (T, N), in place
        d = x[cand] @ x.T
        d *= -2.0
        d += sq[None, :]
        d += sq[cand][:, None]
        np.minimum(d, closest[None, :], out=d)
        best = int(np.argmin(d.sum(axis=1)))
        centers[i] = x[cand[best]]
        closest = np.maximum(d[best], 0.0)
    return centers


class KMeans:
    """Euclidean k-means: ``centroids`` float32 (K, D).

    Build by fitting (``KMeans.fit(x, k)``) or from saved centroids (``KMeans.load``).
    """

    def __init__(self, centroids: np.ndarray) -> None:
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        if centroids.ndim != 2 or len(centroids) == 0:
            raise ValueError(f"centroids must be (K, D) with K >= 1, got {centroids.shape}")
        self.centroids = centroids
        self._index: faiss.IndexFlatL2 | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @classmethod
    def fit(cls, x: np.ndarray, k: int, *, niter: int = 20, seed: int = 0,
            max_frames: int | None = None, max_points_per_centroid: int = 256,
            init: str = "k-means++", n_init: int = 1, verbose: bool = False) -> KMeans:
        """Fit ``k`` centroids to features ``x`` (N, D).

        Args:
            x: (N, D) features (cast to float32).
            k: number of clusters (units); GSLM uses 50, 100, 200; HuBERT 100 and 500.
            niter: Lloyd iterations.
            seed: seed of the subsampling and of faiss's initialisation.
            max_frames: fit on a random subset of at most this many frames (None: all).
            max_points_per_centroid: Lloyd runs on a random ``k * this`` of those frames.
            init: ``k-means++`` (greedy, on the same frames) or ``random`` (faiss's).
            n_init: runs with different seeds; the lowest training inertia wins.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise InputError(f"k-means: features must be (N, D), got shape {x.shape}")
        if k < 2:
            raise InputError(f"k-means: n_units={k}; use at least 2 units")
        if len(x) < k:
            raise InputError(f"k-means: need at least k={k} frames; got {len(x)}: use more "
                             f"audio or a smaller --n-units")
        if not np.all(np.isfinite(x)):
            raise InputError("k-means: features contain NaN or Inf; check the audio "
                             "(silent or corrupt files) and --precision")
        if init not in ("k-means++", "random"):
            raise InputError(f"k-means: init={init!r}; use 'k-means++' or 'random'")
        x = np.ascontiguousarray(subsample(x, max_frames, seed))
        best: tuple[float, np.ndarray] | None = None
        for run in range(max(1, n_init)):
            s = seed + run
            xs = np.ascontiguousarray(subsample(x, k * max_points_per_centroid, s))
            km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=s, spherical=False,
                              max_points_per_centroid=len(xs), verbose=verbose)
            km.train(xs, init_centroids=kmeans_plusplus(xs, k, s) if init == "k-means++"
                     else None)
            centroids = km.centroids.reshape(k, x.shape[1])
            inertia = float(km.obj[-1]) if len(km.obj) else float("inf")
            if best is None or inertia < best[0]:
                best = (inertia, centroids)
        return cls(best[1])

    def _features(self, x: np.ndarray) -> np.ndarray:
        """``x`` as contiguous float32 (N, D), or :class:`InputError` if D is not the dim."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"k-means: features of shape {x.shape} do not match centroids "
                             f"of dim {self.dim}; use the encoder this tokenizer was trained with")
        return x

    def _search(self, x: np.ndarray, batch: int = ASSIGN_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of each row: (squared distances (N,), labels (N,) int64)."""
        x = self._features(x)
        if self._index is None:
            self._index = faiss.IndexFlatL2(self.dim)
            self._index.add(self.centroids)
        dist = np.empty(len(x), dtype=np.float32)
        labels = np.empty(len(x), dtype=np.int64)
        for start in range(0, len(x), batch):
            d, i = self._index.search(x[start:start + batch], 1)
            dist[start:start + batch], labels[start:start + batch] = d[:, 0], i[:, 0]
        return dist, labels

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Index of the nearest centroid for each row of ``x`` (N, D): (N,) int64."""
        return self._search(x)[1]

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Squared distances of each row of ``x`` (N, D) to every centroid: float32 (N, K)."""
        x = self._features(x)
        c = self.centroids
        d = (x * x).sum(1, keepdims=True) - 2.0 * (x @ c.T) + (c * c).sum(1)[None]
        return np.maximum(d, 0.0, out=d)

    def inertia(self, x: np.ndarray) -> float:
        """Sum over rows of ``x`` (N, D) of the squared distance to the nearest centroid."""
        return float(self._search(x)[0].astype(np.float64).sum())

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``centroids`` to a safetensors file, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file({"centroids": self.centroids}, str(tmp))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> KMeans:
        """Read centroids written by :meth:`save`."""
        path = Path(path)
        if not path.exists():
            raise ArtifactError(f"{path}: centroids file not found; train the tokenizer again "
                                f"(spokenlm tokenize train) or point to the right directory")
        try:
            tensors = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises several types
            raise ArtifactError(f"{path}: not a readable safetensors file ({e}); "
                                f"train the tokenizer again") from e
        if "centroids" not in tensors:
            raise ArtifactError(f"{path}: no 'centroids' tensor (has {sorted(tensors)}); "
                                f"train the tokenizer again")
        return cls(tensors["centroids"])
