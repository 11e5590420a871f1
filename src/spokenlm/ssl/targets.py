"""Frame targets for HuBERT-style pretraining: k-means labels of every frame.

Iteration 1 clusters MFCC features (``encoder="mfcc"``), iteration 2 the features of the
iteration-1 model at an intermediate layer (``encoder="hubert"``, ``encoder_path`` = its
dir, ``layer`` = L). Both go through spokenlm's tokenizer stage, so targets are a normal
tokenizer dir plus a units JSONL without dedup (one label per 50 Hz frame)::

    <dir>/tokenizer/            config.json + centroids.safetensors
    <dir>/<manifest stem>.jsonl {"id", "units": [label per frame], "n_frames"}

Each file is written once (atomically); a rerun reuses what exists, and the tokenize step
resumes from its part files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..common.files import iter_jsonl
from ..common.paths import unique_names
from ..common.progress import log
from ..tokenize.run import tokenize_manifest
from ..tokenize.tokenizer import CENTROIDS_NAME, CONFIG_NAME
from ..tokenize.train import train_tokenizer


@dataclass
class TargetSpec:
    """How to make targets: an encoder (+ path, layer) and the number of clusters."""

    encoder: str = "mfcc"
    encoder_path: Path | None = None
    layer: int = 6
    n_clusters: int = 100
    max_frames: int = 200_000
    niter: int = 20
    seed: int = 0
    device: str = "auto"


def make_targets(manifests: list[Path], out_dir: Path, spec: TargetSpec,
                 tokenizer: Path | None = None) -> tuple[Path, list[Path]]:
    """Fit k-means on the first manifest (unless ``tokenizer`` is given) and label every
    frame of every manifest. Returns (tokenizer dir, labels JSONL per manifest)."""
    out_dir = Path(out_dir)
    if tokenizer is None:
        tokenizer = out_dir / "tokenizer"
        if not ((tokenizer / CONFIG_NAME).exists() and (tokenizer / CENTROIDS_NAME).exists()):
            log(f"targets: k-means ({spec.n_clusters}) on {spec.encoder} features"
                + (f" of {spec.encoder_path} layer {spec.layer}" if spec.encoder_path else ""))
            train_tokenizer(manifest=manifests[0], output=tokenizer, encoder=spec.encoder,
                            encoder_path=spec.encoder_path, layer=spec.layer,
                            n_units=spec.n_clusters, max_frames=spec.max_frames,
                            niter=spec.niter, seed=spec.seed, device=spec.device)
    elif not (Path(tokenizer) / CONFIG_NAME).exists():
        raise InputError(f"{tokenizer}: not a tokenizer dir (no {CONFIG_NAME}); pass a dir "
                         f"from `spokenlm tokenize train` or leave --targets unset")
    stems = [Path(m).stem for m in manifests]  # train/m.jsonl and valid/m.jsonl: by path
    keys = stems if len(set(stems)) == len(stems) else [str(m) for m in manifests]
    names = unique_names(keys)
    outputs = []
    for manifest, key in zip(manifests, keys):
        out = out_dir / f"{names[key]}.jsonl"
        if not out.exists():
            tokenize_manifest(manifest=manifest, tokenizer=tokenizer, output=out, dedup=False,
                              pack=False, shard="0/1", device=spec.device)
        outputs.append(out)
    return Path(tokenizer), outputs


def load_labels(path: Path) -> dict[str, np.ndarray]:
    """``id`` -> frame labels (F,) int64 from a units JSONL written without dedup."""
    labels = {}
    for row in iter_jsonl(path):
        if "durations" in row:
            raise InputError(f"{path}: units were deduplicated ({row['id']}); frame targets "
                             f"need one label per frame: tokenize with --no-dedup")
        labels[row["id"]] = np.asarray(row["units"], dtype=np.int64)
    return labels
