"""Speaker similarity: speaker encoders behind one interface (:class:`SpeakerEmbedder`).

``--speaker-encoder`` specs (:func:`load_speaker_encoder`):

- ``ge2e``: Resemblyzer's pretrained GE2E voice encoder (the ``pretrained.pt`` its PyPI wheel
  ships), see :mod:`spokenlm.eval.speaker_ge2e`; the default when that file is installed;
- ``ge2e:PATH``: a GE2E checkpoint in Resemblyzer's format;
- ``xvector:DIR`` or just ``DIR``: a local Hugging Face x-vector model (below);
- ``none``: no speaker similarity; ``auto`` (the commands' default): ``ge2e`` when its
  weights are installed, else ``none``.

The x-vector encoder (:class:`SpeakerEncoder`): any directory loadable by
``transformers.AutoModelForAudioXVector`` from a raw 16 kHz
waveform works: ``WavLMForXVector`` (e.g. ``microsoft/wavlm-base-plus-sv``, downloaded by the
user), ``Wav2Vec2ForXVector``, ``UniSpeechSatForXVector``, ``Data2VecAudioForXVector``,
``Wav2Vec2ConformerForXVector``. Input normalisation follows ``do_normalize`` in the
directory's ``preprocessor_config.json`` (zero mean, unit variance per utterance, as
``Wav2Vec2FeatureExtractor`` does; no normalisation when the file is absent).

The embedding of an utterance is ``model(input_values).embeddings`` of that utterance alone.
Only utterances of equal length share a batch: zero padding would change the embedding
(the group-norm conv of Base models normalises over time, and transformers' x-vector pooling
computes valid TDNN lengths without the dilation, so padded frames leak into the statistics).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.normalize import do_normalize, normalize_wav
from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.hub import local_or_hub
from ..common.progress import progress
from .judges import AUTO

#: model types whose x-vector model reads a raw waveform (``input_values``)
WAVEFORM_MODEL_TYPES = ("wavlm", "wav2vec2", "unispeech-sat", "data2vec-audio",
                        "wav2vec2-conformer")
_EXAMPLE = "e.g. microsoft/wavlm-base-plus-sv saved locally"


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two embeddings (D,), clipped to [-1, 1]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))


class SpeakerEmbedder:
    """16 kHz mono audio (T,) -> speaker embedding (D,); subclasses define :meth:`embed_many`,
    :meth:`describe`, ``dim`` and ``min_samples`` (shortest utterance they embed)."""

    dim: int
    min_samples: int

    def check(self, wav: np.ndarray, index: int) -> np.ndarray:
        """One utterance as float32 (T,), or :class:`InputError` naming the fix."""
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise InputError(f"speaker encoder {self.describe()}: utterance {index} has shape "
                             f"{wav.shape}; pass mono 16 kHz audio (T,) (spokenlm.audio.load."
                             f"load_audio returns that)")
        if len(wav) < self.min_samples:
            raise InputError(
                f"speaker encoder {self.describe()}: utterance {index} has {len(wav)} samples "
                f"({len(wav) / SAMPLE_RATE:.3f} s), shorter than the model's receptive field "
                f"({self.min_samples} samples, {self.min_samples / SAMPLE_RATE:.3f} s); "
                f"leave it out or pass longer audio")
        return wav

    def embed_many(self, wavs: Sequence[np.ndarray], desc: str = "speaker") -> np.ndarray:
        """Utterances (each float (T_i,), 16 kHz mono) -> float32 (N, D) embeddings, in order."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """float (T,) 16 kHz mono -> float32 (D,) speaker embedding."""
        return self.embed_many([wav])[0]

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity of the embeddings of two utterances (T_a,), (T_b,), in [-1, 1]."""
        ea, eb = self.embed_many([a, b])
        return cosine_similarity(ea, eb)

    def paired_similarity(self, a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                          desc: str = "speaker") -> list[float | None]:
        """Cosine similarity of ``a[i]`` and ``b[i]`` for each pair of utterances; None for a
        pair where either utterance is shorter than :attr:`min_samples` or either embedding
        is not finite."""
        if len(a) != len(b):
            raise ValueError(f"paired_similarity: {len(a)} vs {len(b)} utterances")
        ok = [i for i in range(len(a)) if min(len(a[i]), len(b[i])) >= self.min_samples]
        emb = self.embed_many([a[i] for i in ok] + [b[i] for i in ok], desc=desc)  # (2K, D)
        out: list[float | None] = [None] * len(a)
        for j, i in enumerate(ok):
            ea, eb = emb[j], emb[len(ok) + j]
            if np.isfinite(ea).all() and np.isfinite(eb).all():
                out[i] = cosine_similarity(ea, eb)
        return out


#: speaker encoder name -> factory(argument after ``name:`` or None, device=...)
SPEAKER_ENCODERS: dict[str, Callable[..., SpeakerEmbedder]] = {}
#: the spec for no speaker similarity (the default spec, AUTO, is ``ge2e`` when installed)
NO_ENCODER = "none"


def register_speaker_encoder(name: str) -> Callable[[Callable[..., SpeakerEmbedder]],
                                                    Callable[..., SpeakerEmbedder]]:
    """Register a speaker encoder factory under ``name`` (spec ``name`` or ``name:ARG``)."""

    def deco(factory: Callable[..., SpeakerEmbedder]) -> Callable[..., SpeakerEmbedder]:
        SPEAKER_ENCODERS[name] = factory
        return factory

    return deco


def default_speaker_encoder() -> str | None:
    """What ``auto`` means: ``ge2e`` when Resemblyzer's weights are installed, else None."""
    from .speaker_ge2e import resemblyzer_weights

    return "ge2e" if resemblyzer_weights() is not None else None


def load_speaker_encoder(spec: str | os.PathLike | None = AUTO, device: str = "auto"
                         ) -> SpeakerEmbedder | None:
    """Build a speaker encoder from a spec (see the module docstring); None for ``none``, and
    for ``auto`` (or None) when Resemblyzer's weights are not installed."""
    from . import speaker_ge2e  # noqa: F401 - registers ge2e

    text = AUTO if spec is None else str(spec)
    if text == AUTO:
        text = default_speaker_encoder() or NO_ENCODER
    if text.lower() == NO_ENCODER:
        return None
    name, sep, argument = text.partition(":")
    if name in SPEAKER_ENCODERS and (sep or not Path(text).is_dir()):
        return SPEAKER_ENCODERS[name](argument or None, device=device)
    if Path(text).is_dir():
        return SpeakerEncoder(text, device=device)
    raise InputError(f"--speaker-encoder {text}: neither a known encoder "
                     f"({', '.join(sorted(SPEAKER_ENCODERS))}, {NO_ENCODER}, {AUTO}) nor a "
                     f"directory; pass ge2e, ge2e:PATH/pretrained.pt or a local Hugging Face "
                     f"x-vector model dir ({_EXAMPLE})")


def no_encoder_reason(spec: str | os.PathLike | None) -> str:
    """Why :func:`load_speaker_encoder` gave None for ``spec``."""
    if spec is not None and str(spec).lower() == NO_ENCODER:
        return "--speaker-encoder none"
    return ("no speaker encoder: Resemblyzer's GE2E weights are not installed (pip install "
            "Resemblyzer, or pass --speaker-encoder with a local Hugging Face x-vector model "
            "dir, e.g. microsoft/wavlm-base-plus-sv)")


class SpeakerEncoder(SpeakerEmbedder):
    """A local x-vector model directory: 16 kHz mono audio -> speaker embedding (D,)."""

    def __init__(self, path: str | Path, device: str = "auto", batch_size: int = 16) -> None:
        self.path = local_or_hub(path, "x-vector model")
        config = _read_config(self.path)
        self.normalize = do_normalize(self.path)
        self.model = _load_model(self.path, config)
        self.device = resolve_device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        self.batch_size = batch_size
        self.dim = int(self.model.config.xvector_output_dim)
        self.min_samples = _min_samples(self.model.config)

    def _inputs(self, wavs: Sequence[np.ndarray]) -> torch.Tensor:
        """Equal-length utterances -> (B, T) model input, normalised when ``do_normalize``."""
        x = torch.from_numpy(np.stack(wavs).astype(np.float32)).to(self.device)  # (B, T)
        return normalize_wav(x) if self.normalize else x

    @torch.inference_mode()
    def embed_many(self, wavs: Sequence[np.ndarray], desc: str = "speaker") -> np.ndarray:
        """Utterances (each float (T_i,), 16 kHz mono) -> float32 (N, D) embeddings, in order.

        Utterances of equal length are batched together (up to ``batch_size``).
        """
        wavs = [self.check(w, i) for i, w in enumerate(wavs)]
        out = np.zeros((len(wavs), self.dim), dtype=np.float32)
        order = sorted(range(len(wavs)), key=lambda i: len(wavs[i]))
        bar = progress(desc=desc, total=len(wavs), unit="utt")
        for _, group in groupby(order, key=lambda i: len(wavs[i])):
            idx = list(group)
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                emb = self.model(self._inputs([wavs[i] for i in chunk])).embeddings  # (B, D)
                out[chunk] = emb.float().cpu().numpy()
                bar.update(len(chunk))
        bar.close()
        return out

    def describe(self) -> str:
        return f"{type(self.model).__name__}:{self.path}"


@register_speaker_encoder("xvector")
def _xvector(argument: str | None, device: str = "auto") -> SpeakerEncoder:
    if not argument:
        raise InputError(f"--speaker-encoder xvector: name the model dir, xvector:DIR "
                         f"({_EXAMPLE})")
    return SpeakerEncoder(argument, device=device)


def _read_config(path: Path) -> dict[str, Any]:
    cfg = path / "config.json"
    if not path.is_dir():
        raise InputError(f"--speaker-encoder {path}: no such directory; pass a local Hugging "
                         f"Face x-vector model directory ({_EXAMPLE})")
    if not cfg.exists():
        raise InputError(f"--speaker-encoder {path}: not a model directory (no config.json); "
                         f"pass a Hugging Face x-vector model saved with save_pretrained "
                         f"({_EXAMPLE})")
    try:
        config = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{cfg}: not valid JSON ({e}); re-save the model") from e
    archs = config.get("architectures") or []
    if not any(str(a).endswith("ForXVector") for a in archs):
        raise InputError(f"{cfg}: architectures={archs} is not an x-vector (speaker "
                         f"verification) model; pass a *ForXVector model directory ({_EXAMPLE})")
    if config.get("model_type") not in WAVEFORM_MODEL_TYPES:
        raise InputError(f"{cfg}: model_type={config.get('model_type')!r} is not supported as a "
                         f"speaker encoder (supported: {', '.join(WAVEFORM_MODEL_TYPES)}, models "
                         f"reading a raw waveform); use one of those ({_EXAMPLE})")
    return config


def _load_model(path: Path, config: dict[str, Any]) -> Any:
    from transformers import AutoModelForAudioXVector

    try:
        model, info = AutoModelForAudioXVector.from_pretrained(
            str(path), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as e:
        raise InputError(f"--speaker-encoder {path}: cannot load it as an x-vector model ({e}); "
                         f"the directory needs config.json and model.safetensors "
                         f"({_EXAMPLE})") from e
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise InputError(f"--speaker-encoder {path}: weights {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''} are missing from the checkpoint, "
                         f"so the model would be partly random; re-save the full "
                         f"{config['architectures'][0]} model")
    return model


def _min_samples(config: Any) -> int:
    """Fewest samples giving two TDNN frames (the pooling takes a standard deviation)."""
    frames = 2 + sum(d * (k - 1) for k, d in zip(config.tdnn_kernel, config.tdnn_dilation))
    n = frames
    for k, s in reversed(list(zip(config.conv_kernel, config.conv_stride))):
        n = (n - 1) * s + k
    return n
