"""SpeechTokenizer: encoder + k-means, audio -> discrete units, saved as a directory.

A tokenizer directory holds ``config.json``::

    {"encoder": {"name": "hubert", "path": "/models/hubert-base", "layer": 6, ...},
     "n_units": 100, "dim": 768, "unit_filter": 1, "unit_penalty": 0.0,
     "distance_scale": 1843.2, "frame_rate": 50.0, "hop_length": 320,
     "win_length": 400, "spokenlm_version": "0.1.0"}

and ``centroids.safetensors`` (``centroids``: float32 (K, D)). For ``hubert`` / ``wav2vec2``
the encoder weights are *not* copied: ``path`` names the model directory. ``unit_filter``
is the width of the mode filter applied to frame units before dedup
(:mod:`spokenlm.tokenize.unit_filter`; 1, the default and GSLM's, is none; configs written
before it existed read as 1). ``unit_penalty`` > 0 picks frame units by duration-penalised
dynamic programming instead of nearest centroids (:mod:`spokenlm.tokenize.dp_units`): each
change of unit costs ``unit_penalty`` times ``distance_scale``, the mean squared distance of
a training frame to its centroid (0, the default and GSLM's, is nearest-centroid; configs
written before it read as 0).

A tokenizer trained with same-content pairs (``tokenize train --pairs``) also holds
``transform.safetensors``, a correspondence autoencoder's encoder
(:mod:`spokenlm.tokenize.correspondence`) applied to the encoder's features before k-means,
and its config describes it: ``"transform": {"kind": "correspondence", "input_dim": 39,
"dims": 64, "context": 2, "hidden": 256}``; ``dim`` is then
the transform's output width.

Audio of any length encodes in bounded memory: :meth:`SpeechTokenizer.encode_row` streams
rows longer than :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` from disk and encodes them
chunk by chunk (:meth:`SpeechTokenizer.encode_stream`), exactly for mfcc/logmel,
approximately for HuBERT/wav2vec 2.0 (20 s chunks with 5 s of context each side).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..audio.chunking import AudioStream, is_long
from ..audio.framing import Framing
from ..audio.load import load_row
from ..common.errors import ArtifactError, InputError
from ..common.files import atomic_dir, read_artifact_json, write_json
from ..common.hub import local_or_hub
from ..common.paths import ArtifactKind
from .correspondence import TRANSFORM_NAME, CorrespondenceTransform
from .dedup import dedup as run_length
from .encoders import Encoder, build_encoder
from .features import DEFAULT_BATCH_SECONDS, FeatureExtractor
from .kmeans import KMeans
from .dp_units import ViterbiAssigner, check_penalty, dp_assign
from .unit_filter import check_width, mode_filter

CONFIG_NAME = "config.json"
CENTROIDS_NAME = "centroids.safetensors"
TOKENIZER_KIND = ArtifactKind("tokenizer", (CONFIG_NAME, CENTROIDS_NAME))


@dataclass(frozen=True)
class Units:
    """Units of one utterance: ``units`` (N,) int64; ``durations`` (N,) int64 frames per unit
    when deduplicated, else None; ``n_frames`` encoder frames (= N without dedup)."""

    units: np.ndarray
    durations: np.ndarray | None
    n_frames: int

    def to_row(self) -> dict[str, Any]:
        """The units-JSONL fields: ``units``, ``durations`` (when dedup), ``n_frames``."""
        row: dict[str, Any] = {"units": self.units.tolist()}
        if self.durations is not None:
            row["durations"] = self.durations.tolist()
        row["n_frames"] = self.n_frames
        return row


class SpeechTokenizer:
    """Audio (T,) at 16 kHz -> frame features (F, D) -> units (F,) in [0, n_units): the
    nearest centroid of each frame (or, with ``unit_penalty`` > 0, the duration-penalised
    choice of :func:`~spokenlm.tokenize.dp_units.dp_assign`, a change of unit costing
    ``unit_penalty * distance_scale``), mode-filtered over ``unit_filter`` frames (1: not).
    With a ``transform`` (a correspondence autoencoder), features are its bottleneck
    (F, transform.dims) of the encoder's (F, D)."""

    def __init__(self, encoder: Encoder, kmeans: KMeans, *, device: str = "auto",
                 precision: str = "fp32", unit_filter: int = 1, unit_penalty: float = 0.0,
                 distance_scale: float | None = None,
                 transform: CorrespondenceTransform | None = None) -> None:
        if transform is not None and transform.input_dim != encoder.dim:
            raise InputError(f"encoder {encoder.name} gives {encoder.dim}-dim features but the "
                             f"correspondence transform takes {transform.input_dim}-dim ones; "
                             f"train the tokenizer with this encoder")
        dim = encoder.dim if transform is None else transform.dims
        if dim != kmeans.dim:
            raise InputError(f"encoder {encoder.name} gives {dim}-dim features"
                             f"{'' if transform is None else ' (after its transform)'} but the "
                             f"k-means centroids are {kmeans.dim}-dim; train the tokenizer "
                             f"with this encoder")
        self.transform = transform
        self.extractor = FeatureExtractor(encoder, device=device, precision=precision)
        self.encoder = self.extractor.encoder
        self.kmeans = kmeans
        self.unit_filter = check_width(unit_filter, "unit_filter")
        self.unit_penalty = check_penalty(unit_penalty, "unit_penalty")
        if self.unit_penalty > 0 and (distance_scale is None or not distance_scale > 0):
            raise InputError(f"unit_penalty {self.unit_penalty:g} needs the k-means distance "
                             f"scale (mean squared frame-to-centroid distance, > 0), got "
                             f"{distance_scale!r}")
        self.distance_scale = None if distance_scale is None else float(distance_scale)
        #: absolute cost of a change of unit (squared-distance units) for the dynamic programme
        self.switch_cost = self.unit_penalty * (self.distance_scale or 0.0)

    def _frame_units(self, feats: np.ndarray) -> np.ndarray:
        """Features (F, D) -> frame units (F,) int64 before the mode filter."""
        if not len(feats):
            return np.zeros(0, dtype=np.int64)
        if self.unit_penalty > 0:
            return dp_assign(self.kmeans.distances(feats), self.switch_cost)
        return self.kmeans.assign(feats)

    @property
    def n_units(self) -> int:
        return self.kmeans.n_clusters

    @property
    def framing(self) -> Framing:
        """The encoder's hop, window and frame rate (recorded in every artifact downstream)."""
        return self.encoder.framing

    @property
    def frame_rate(self) -> float:
        return self.encoder.frame_rate

    # ---- features -------------------------------------------------------------------

    def features_batch(self, wavs: Sequence[np.ndarray],
                       batch_seconds: float = DEFAULT_BATCH_SECONDS) -> list[np.ndarray]:
        """Features of each waveform (T_i,): list of float32 (F_i, D) (the transform's, when
        there is one); see :meth:`FeatureExtractor.features_batch` (equal lengths share a
        call)."""
        feats = self.extractor.features_batch(wavs, batch_seconds)
        return feats if self.transform is None else [self.transform.apply(f) for f in feats]

    def features(self, wav: np.ndarray) -> np.ndarray:
        """Features of one waveform (T,) float32 at 16 kHz -> float32 (F, D)."""
        return self.features_batch([wav])[0]

    # ---- units ----------------------------------------------------------------------

    def units_from_features(self, feats: np.ndarray, dedup: bool = True) -> Units:
        """Units of features (F, D): nearest centroid (or duration-penalised, ``unit_penalty``),
        mode-filtered (``unit_filter``), run-length deduplicated if ``dedup``."""
        frames = mode_filter(self._frame_units(feats), self.unit_filter)
        if dedup:
            units, durations = run_length(frames)
            return Units(units, durations, len(frames))
        return Units(frames, None, len(frames))

    def encode(self, wav: np.ndarray, dedup: bool = True) -> Units:
        """Waveform (T,) float32 at 16 kHz -> :class:`Units`."""
        return self.units_from_features(self.features(wav), dedup)

    def encode_batch(self, wavs: Sequence[np.ndarray], dedup: bool = True,
                     batch_seconds: float = DEFAULT_BATCH_SECONDS) -> list[Units]:
        """Several waveforms -> one :class:`Units` each (equal lengths share a call)."""
        return [self.units_from_features(f, dedup)
                for f in self.features_batch(wavs, batch_seconds)]

    # ---- long audio -----------------------------------------------------------------

    def encode_stream(self, blocks: Callable[[], Iterable[np.ndarray]], dedup: bool = True,
                      chunk_seconds: float | None = None) -> Units:
        """A waveform of any length, given as blocks, -> :class:`Units`, in bounded memory.

        ``blocks()`` yields consecutive float32 (B,) blocks at 16 kHz (e.g. an
        :class:`~spokenlm.audio.chunking.AudioStream`; called twice for MFCC ``cmn``).
        Features are computed chunk by chunk with the encoder's context
        (:meth:`FeatureExtractor.features_stream`) and assigned to centroids chunk by chunk;
        only the frame units are kept (8 bytes a frame: 1.4 MB per hour at 50 Hz). Units
        equal :meth:`encode` of the whole waveform for the spectral encoders; for HuBERT /
        wav2vec 2.0 they agree only approximately (``encoder.chunking.exact``).
        """
        chunks = self.extractor.features_stream(blocks, chunk_seconds=chunk_seconds)
        if self.transform is not None:  # exact: frames wait for their right context
            chunks = self.transform.stream(chunks)
        if self.unit_penalty > 0:  # one dynamic programme over all chunks, in order
            viterbi = ViterbiAssigner(self.switch_cost)
            for f in chunks:
                if len(f):
                    viterbi.push(self.kmeans.distances(f))
            units = viterbi.finish()
        else:
            frames = [self.kmeans.assign(f) for f in chunks if len(f)]
            units = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int64)
        units = mode_filter(units, self.unit_filter)  # over the whole: chunk edges unchanged
        if dedup:
            u, d = run_length(units)
            return Units(u, d, len(units))
        return Units(units, None, len(units))

    def encode_row(self, row: Mapping[str, Any], dedup: bool = True) -> tuple[Units, int]:
        """The units of a manifest row's audio (its ``start``/``duration`` segment if it
        names one) and its number of samples at 16 kHz. Up to
        :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S` seconds (from the header) the audio
        is loaded whole and encoded in one piece (:meth:`encode`); longer audio is streamed
        from disk (:meth:`encode_stream`), never decoded whole. Bad audio raises
        :class:`~spokenlm.audio.load.AudioError`."""
        stream = AudioStream.from_row(row)
        if not is_long(stream.expected_samples()):
            wav = load_row(row)
            return self.encode(wav, dedup), len(wav)
        units = self.encode_stream(lambda: stream, dedup)
        return units, int(stream.num_samples or 0)

    # ---- save / load ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"encoder": self.encoder.config(), "n_units": self.n_units,
                "dim": self.kmeans.dim, "unit_filter": self.unit_filter,
                "unit_penalty": self.unit_penalty, "distance_scale": self.distance_scale,
                **({} if self.transform is None else {"transform": self.transform.config()}),
                **self.framing.to_json(),
                "spokenlm_version": __version__}

    def save_pretrained(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json``, ``centroids.safetensors`` (and ``transform.safetensors``)
        into ``directory`` (replacing only an empty dir or a tokenizer dir unless
        ``overwrite``)."""
        with atomic_dir(directory, TOKENIZER_KIND, overwrite=overwrite) as tmp:
            self.kmeans.save(tmp / CENTROIDS_NAME)
            if self.transform is not None:
                self.transform.save(tmp / TRANSFORM_NAME)
            write_json(tmp / CONFIG_NAME, self.config())
        return Path(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str = "auto",
                        precision: str = "fp32") -> SpeechTokenizer:
        """Load a tokenizer directory written by :meth:`save_pretrained` (or a hub id)."""
        directory = local_or_hub(directory, "tokenizer")
        cfg_path = directory / CONFIG_NAME
        config = read_artifact_json(cfg_path, f"{directory}: not a tokenizer directory (no "
                                    f"{CONFIG_NAME}); train one with `spokenlm tokenize "
                                    f"train` or fix the path")
        _check_config(config, cfg_path)
        kmeans = KMeans.load(directory / CENTROIDS_NAME)
        if (kmeans.n_clusters, kmeans.dim) != (config["n_units"], config["dim"]):
            raise ArtifactError(
                f"{directory / CENTROIDS_NAME}: centroids are {kmeans.centroids.shape} but "
                f"{cfg_path} says n_units={config['n_units']}, dim={config['dim']}; the files "
                f"come from different runs, train the tokenizer again")
        try:
            encoder = build_encoder(config["encoder"])
        except InputError as e:
            raise ArtifactError(f"{cfg_path}: cannot build the encoder: {e}") from e
        transform = (None if config.get("transform") is None else
                     CorrespondenceTransform.load(directory, config["transform"], str(cfg_path)))
        recorded = Framing.from_json(config, str(cfg_path))
        if recorded.hop_length != encoder.framing.hop_length:
            raise ArtifactError(f"{cfg_path}: records frames at {recorded.describe()} but its "
                                f"encoder gives {encoder.framing.describe()}; the encoder "
                                f"model changed since training, retrain the tokenizer")
        try:
            unit_filter = check_width(config.get("unit_filter", 1), "unit_filter")
            penalty = check_penalty(config.get("unit_penalty", 0.0), "unit_penalty")
            return cls(encoder, kmeans, device=device, precision=precision,
                       unit_filter=unit_filter, unit_penalty=penalty,
                       distance_scale=config.get("distance_scale"), transform=transform)
        except InputError as e:
            raise ArtifactError(f"{cfg_path}: {e}; fix the file or train the tokenizer "
                                f"again") from e


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2])


def _check_config(config: Any, path: Path) -> None:
    if not isinstance(config, dict) or "spokenlm_version" not in config:
        raise ArtifactError(f"{path}: not a spokenlm tokenizer config (no spokenlm_version); "
                            f"train the tokenizer again with `spokenlm tokenize train`")
    saved = str(config["spokenlm_version"])
    try:
        newer = _version_tuple(saved) > _version_tuple(__version__)
        other_major = _version_tuple(saved)[0] != _version_tuple(__version__)[0]
    except ValueError:
        newer = other_major = True
    if newer or other_major:
        raise ArtifactError(f"{path}: written by spokenlm {saved}, which this spokenlm "
                            f"{__version__} cannot read; upgrade spokenlm or retrain the tokenizer")
    missing = [k for k in ("encoder", "n_units", "dim") if k not in config]
    if missing or not isinstance(config["encoder"], dict):
        raise ArtifactError(f"{path}: missing or bad keys {missing or ['encoder']}; "
                            f"train the tokenizer again")
    try:
        Framing.from_json(config, str(path))
    except InputError as e:
        raise ArtifactError(str(e)) from e

