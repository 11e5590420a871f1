"""scikit-learn k-means files (joblib) <-> spokenlm tokenizer directories.

fairseq's HuBERT recipe (``examples/hubert/simple_kmeans/learn_kmeans.py``) fits a
``sklearn.cluster.MiniBatchKMeans`` and saves it with ``joblib.dump(km_model, path)``; the
GSLM / TWIST / textlesslib k-means files (``km.bin``, ``*.bin``) are the same format. The
file holds only centroids (``cluster_centers_``), not which encoder and layer produced the
features, so importing needs them::

    spokenlm interop hubert-import hubert_base_ls960.pt --output models/hubert-base
    spokenlm interop kmeans-import hubert_base_ls960_L6_km100.bin --output tok-hubert-100 \
        --encoder hubert --encoder-path models/hubert-base --layer 6

Exporting writes a fit-free ``MiniBatchKMeans`` whose ``predict`` gives spokenlm's units,
for tools that expect the recipes' format (e.g. fairseq's ``dump_km_label.py``)::

    spokenlm interop kmeans-export tok-hubert-100 --output km100.bin

Reading goes through spokenlm's global allowlist (:mod:`spokenlm.interop.safe_pickle`):
scikit-learn classes become inert stand-ins, so no code from the file runs and neither
package is needed. Writing needs ``scikit-learn`` and ``joblib`` installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import InputError
from ..common.files import atomic_path
from ..common.options import arg, command
from ..common.progress import log
from ..tokenize.encoders import ENCODERS, build_encoder, encoder_options
from ..tokenize.encoders.base import encoder_path_spec
from ..tokenize.kmeans import KMeans
from ..tokenize.tokenizer import SpeechTokenizer
from .safe_pickle import ALLOW_GLOBAL_HELP, load_joblib, stub_state


def _require_sklearn(path: Path) -> None:
    try:
        import joblib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise InputError(f"{path}: writing scikit-learn k-means files needs scikit-learn "
                         f"and joblib ({e}); run "
                         f"`pip install scikit-learn joblib`") from e


def load_sklearn_centroids(path: str | os.PathLike, allow_globals: Sequence[str] = ()
                           ) -> np.ndarray:
    """Centroids (K, D) float32 of a joblib-pickled scikit-learn k-means model.

    Accepts any estimator with ``cluster_centers_`` (``MiniBatchKMeans``, ``KMeans``), or a
    pickled (K, D) array. Read with the global allowlist of
    :func:`~spokenlm.interop.safe_pickle.load_joblib` (no scikit-learn or joblib needed, no
    code from the file runs), plus the exact ``allow_globals`` the user trusts. Raises
    :class:`InputError` naming the file otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: k-means file not found; pass the joblib file written by "
                         f"learn_kmeans.py (e.g. km.bin)")
    try:
        model = load_joblib(path, allow_globals)
        centers = stub_state(model).get("cluster_centers_", model)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - unpickling raises many types
        raise InputError(f"{path}: cannot read it as a joblib k-means file "
                         f"({type(e).__name__}: {e}); pass a file saved with joblib.dump"
                         ) from e
    centers = np.asarray(centers) if isinstance(centers, (np.ndarray, list)) else None
    if centers is None or centers.ndim != 2 or len(centers) < 1:
        raise InputError(f"{path}: holds a {_type_name(model)}, not a fitted k-means model "
                         f"(no (K, D) cluster_centers_); pass the file learn_kmeans.py wrote")
    if not np.all(np.isfinite(centers)):
        raise InputError(f"{path}: cluster_centers_ contain NaN or Inf; refit the k-means")
    return np.ascontiguousarray(centers, dtype=np.float32)


def _type_name(obj: Any) -> str:
    return getattr(obj, "_stub_name", "") or type(obj).__name__


def sklearn_kmeans_from_centroids(centroids: np.ndarray) -> Any:
    """A fitted-looking ``sklearn.cluster.MiniBatchKMeans`` with these centroids.

    No fitting: the estimator is constructed and the attributes ``predict`` / ``transform``
    / ``score`` read are set (``cluster_centers_``, ``n_features_in_``, ``_n_threads``, ...).
    Centroids stay float32, so pass float32 features to ``predict`` (as the recipes do).
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, d = centroids.shape
    km = MiniBatchKMeans(n_clusters=k, init="k-means++", max_iter=100, batch_size=10000,
                         compute_labels=False, n_init=1, random_state=0)
    km.cluster_centers_ = centroids
    km.n_features_in_ = d
    km._n_features_out = k
    km._n_threads = _openmp_effective_n_threads()
    km.n_iter_ = 0
    km.n_steps_ = 0
    km.inertia_ = float("nan")
    km._n_init = 1
    km._init_size = 3 * k
    km._batch_size = 10000
    km._counts = np.zeros(k, dtype=np.float32)
    return km


@dataclass
class KMeansImportOptions:
    km_path: Path = arg(positional=True, help="joblib k-means file (learn_kmeans.py, GSLM km.bin)")
    output: Path = arg(Path("tokenizer"), help="tokenizer directory to write")
    encoder: str = arg("hubert", help=f"encoder the k-means was fitted on: {sorted(ENCODERS)}")
    encoder_path: Path | None = arg(None, help="local model directory (hubert, wav2vec2)")
    layer: int | None = arg(None, help="transformer layer the k-means was fitted on (default: "
                            "the encoder's own, 6 for hubert and wav2vec2)")
    overwrite: bool = arg(False, help="replace --output even when it is a non-empty folder "
                                      "that is not a tokenizer (its files are deleted)")
    allow_global: list[str] = arg([], help=ALLOW_GLOBAL_HELP)


@command("interop kmeans-import", KMeansImportOptions)
def import_kmeans(opts: KMeansImportOptions) -> Path:
    """Import a scikit-learn k-means (joblib) as a spokenlm tokenizer directory."""
    centroids = load_sklearn_centroids(opts.km_path, allow_globals=opts.allow_global)
    if opts.encoder not in ENCODERS:
        raise InputError(f"--encoder {opts.encoder!r} is unknown; choose one of {sorted(ENCODERS)}")
    path = encoder_path_spec(opts.encoder_path)
    encoder = build_encoder(encoder_options(opts.encoder, path=path, layer=opts.layer))
    if encoder.dim != centroids.shape[1]:
        raise InputError(f"{opts.km_path}: centroids are {centroids.shape[1]}-dim but encoder "
                         f"{opts.encoder} ({path or 'built-in'}) gives {encoder.dim}-dim features; "
                         f"pass the encoder (and --encoder-path) the k-means was fitted on")
    tok = SpeechTokenizer(encoder, KMeans(centroids), device="cpu")
    out = tok.save_pretrained(opts.output, overwrite=opts.overwrite)
    log(f"imported {opts.km_path} ({len(centroids)} units, dim {centroids.shape[1]}) -> {out}")
    return out


@dataclass
class KMeansExportOptions:
    tokenizer: Path = arg(positional=True, help="spokenlm tokenizer directory")
    output: Path = arg(Path("km.bin"), help="joblib file to write (scikit-learn MiniBatchKMeans)")


@command("interop kmeans-export", KMeansExportOptions)
def export_kmeans(opts: KMeansExportOptions) -> Path:
    """Export a tokenizer's centroids as a joblib-pickled scikit-learn MiniBatchKMeans."""
    centroids_file = Path(opts.tokenizer) / "centroids.safetensors"
    if not Path(opts.tokenizer).is_dir():
        raise InputError(f"{opts.tokenizer}: not a tokenizer directory; pass one written by "
                         f"`spokenlm tokenize train` or `spokenlm interop kmeans-import`")
    config = Path(opts.tokenizer) / "config.json"
    if config.exists() and "transform" in json.loads(config.read_text()):
        raise InputError(f"{opts.tokenizer}: its centroids live in the space of a "
                         f"correspondence transform (tokenize train --pairs), which a "
                         f"scikit-learn k-means file cannot carry; export a tokenizer trained "
                         f"without --pairs")
    centroids = KMeans.load(centroids_file).centroids
    _require_sklearn(opts.output)
    import joblib

    km = sklearn_kmeans_from_centroids(centroids)
    with atomic_path(opts.output) as tmp:
        joblib.dump(km, tmp)
    log(f"exported {len(centroids)} centroids from {opts.tokenizer} -> {opts.output}")
    return Path(opts.output)
