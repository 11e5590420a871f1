"""The vocoder contract: units (+ durations) -> 16 kHz waveform, saved as a directory.

A vocoder directory holds ``config.json`` (``{"type": "hifigan" | "fast", ...}``) and
``model.safetensors``. :func:`load_vocoder` dispatches on ``type`` through a registry that
model modules fill with :func:`register_vocoder`; nothing here knows the concrete models.

Speech of any length is synthesised in bounded memory by :meth:`VocoderModel.synthesize_stream`
/ :meth:`VocoderModel.synthesize_to_wav`: chunks of frames, each with the generator's
receptive field as context, trimmed and written to the wav as they come.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .. import __version__
from ..audio.chunking import Chunking, is_long, plan_chunks, write_wav_blocks
from ..audio.constants import HOP_LENGTH, SAMPLE_RATE
from ..audio.framing import Framing
from ..common.errors import ArtifactError, InputError
from ..common.files import atomic_dir, read_artifact_json, write_json
from ..common.hub import local_or_hub
from ..common.paths import ArtifactKind
from ..common.progress import log
from .duration import DurationPredictor, durations_from_log
from .f0 import F0_PER_FRAME

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

#: type name -> model class. Filled by :func:`register_vocoder`.
VOCODERS: dict[str, type[VocoderModel]] = {}
#: Modules whose import registers the built-in vocoder types.
BUILTIN_MODULES = ("spokenlm.vocoder.hifigan", "spokenlm.vocoder.fast")
#: Seconds of frames per chunk when long speech is synthesised chunk by chunk.
VOCODER_CHUNK_S = 20.0


@runtime_checkable
class Vocoder(Protocol):
    """Anything that speaks unit sequences."""

    sample_rate: int
    n_units: int

    def synthesize(self, units: Sequence[int], durations: Sequence[int] | None = None
                   ) -> np.ndarray:
        """Deduplicated ``units`` with ``durations`` (frames each; predicted when None)
        -> float32 waveform (T,), T = sum(durations) * hop."""
        ...


def register_vocoder(name: str) -> Callable[[type[VocoderModel]], type[VocoderModel]]:
    """Class decorator: make ``load_vocoder`` build ``cls`` for ``config["type"] == name``."""

    def deco(cls: type[VocoderModel]) -> type[VocoderModel]:
        cls.type = name
        VOCODERS[name] = cls
        return cls

    return deco


def vocoder_class(name: str) -> type[VocoderModel]:
    """The registered class for ``name`` (imports the built-in types on first use)."""
    if name not in VOCODERS:
        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)
    if name not in VOCODERS:
        raise KeyError(name)
    return VOCODERS[name]


def _is_vocoder_type(name: object) -> bool:
    try:
        vocoder_class(str(name))
    except KeyError:
        return False
    return True


#: a saved vocoder dir: its config.json names a registered vocoder type
VOCODER_KIND = ArtifactKind("vocoder", (CONFIG_NAME, WEIGHTS_NAME), config_type=_is_vocoder_type)


class VocoderModel(nn.Module):
    """Shared parts of spokenlm vocoders: unit and speaker embeddings, duration predictor,
    ``synthesize`` and save/load. Subclasses implement :meth:`generate` (frames -> wav).

    Config keys used here: ``n_units``, ``embedding_dim``, ``speakers`` (list of names or
    empty), ``duration_predictor`` (bool), ``duration_hidden``.
    """

    type: ClassVar[str] = ""
    sample_rate: int = SAMPLE_RATE

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.n_units = int(config["n_units"])
        #: samples per unit frame: 320 (50 Hz units) unless the config says otherwise
        self.hop_length = int(config.get("hop_length", HOP_LENGTH))
        self.speakers: list[str] = list(config.get("speakers") or [])
        dim = int(config["embedding_dim"])
        self.embedding = nn.Embedding(self.n_units, dim)
        self.speaker_embedding = nn.Embedding(len(self.speakers), dim) if self.speakers else None
        self.duration: DurationPredictor | None = None
        if config.get("duration_predictor", True):
            self.duration = DurationPredictor(dim, hidden=int(config.get("duration_hidden", 128)))
        self._warned: set[str] = set()

    # -- to implement ---------------------------------------------------------------------
    def generate(self, frames: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Frame-level units (B, F) int64 -> waveform (B, F * hop_length) float.

        F0-conditioned models (``needs_f0``) also take ``f0`` (B, 4F), see :meth:`f0_input`.
        """
        raise NotImplementedError

    @property
    def needs_f0(self) -> bool:
        """Whether :meth:`generate` is conditioned on F0 (200 frames/s, :mod:`.f0`)."""
        return False

    def f0_input(self, f0: np.ndarray | Sequence[float] | None, n_frames: int,
                 speaker: int | None) -> Tensor | None:
        """F0 in Hz (4 per unit frame) -> what :meth:`generate` takes as ``f0`` (1, 4F), or
        None for vocoders that take no F0."""
        if f0 is not None:
            raise InputError(f"this {self.type!r} vocoder is not conditioned on F0; drop f0")
        return None

    # -- shared ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    @property
    def framing(self) -> Framing:
        """The unit frame rate this vocoder speaks (hop ``hop_length`` at 16 kHz)."""
        return Framing.from_json({"hop_length": self.hop_length})

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log(message)

    def speaker_index(self, speaker: int | str | None) -> int | None:
        """Row of the speaker embedding for a name or index; unknown names fall back to 0."""
        if self.speaker_embedding is None:
            return None
        if speaker is None:
            return 0
        if isinstance(speaker, str):
            if speaker in self.speakers:
                return self.speakers.index(speaker)
            if speaker not in self._warned:
                self._warned.add(speaker)
                log(f"vocoder: speaker {speaker!r} unseen in training; using "
                    f"{self.speakers[0]!r}")
            return 0
        if not 0 <= int(speaker) < len(self.speakers):
            raise InputError(f"speaker index {speaker} out of range [0, {len(self.speakers)})")
        return int(speaker)

    def unit_features(self, units: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Units (B, N) -> embeddings (B, N, E), plus the speaker embedding when present."""
        x = self.embedding(units)
        if self.speaker_embedding is not None and speaker is not None:
            x = x + self.speaker_embedding(speaker)[:, None, :]
        return x

    def duration_log_pred(self, units: Tensor, speaker: Tensor | None = None) -> Tensor:
        """Units (B, N) -> predicted log(d + 1) (B, N)."""
        if self.duration is None:
            raise ArtifactError("this vocoder has no duration predictor; pass durations")
        return self.duration(self.unit_features(units, speaker))

    def _check_units(self, units: Tensor) -> None:
        if units.numel() and (int(units.min()) < 0 or int(units.max()) >= self.n_units):
            raise InputError(f"unit ids must lie in [0, {self.n_units}) for this vocoder, got "
                             f"[{int(units.min())}, {int(units.max())}]; use the vocoder "
                             f"trained on this tokenizer's units")

    def frame_units(self, units: Sequence[int], durations: Sequence[int] | None = None,
                    speaker: int | str | None = None
                    ) -> tuple[Tensor, int | None, Tensor | None]:
        """Deduplicated units (N,) + durations -> frame units (1, F), the speaker's row and
        its (1,) tensor (None without speakers). Without durations the duration predictor
        sets them (every unit lasts one frame when the vocoder has none)."""
        u = torch.as_tensor(np.asarray(units, dtype=np.int64), device=self.device).reshape(-1)
        if u.numel() == 0:
            return u[None], None, None
        self._check_units(u)
        idx = self.speaker_index(speaker)
        spk = None if idx is None else torch.tensor([idx], device=self.device)
        if durations is not None:
            d = torch.as_tensor(np.asarray(durations, dtype=np.int64), device=self.device)
            if d.shape != u.shape or int(d.min()) < 1:
                raise InputError(f"durations must be {u.numel()} integers >= 1 (one per unit), "
                                 f"got shape {tuple(d.shape)}")
        elif self.duration is not None:
            d = durations_from_log(self.duration_log_pred(u[None], spk))[0]
        else:
            d = torch.ones_like(u)
        return torch.repeat_interleave(u, d)[None], idx, spk  # (1, F)

    @torch.inference_mode()
    def synthesize(self, units: Sequence[int], durations: Sequence[int] | None = None,
                   speaker: int | str | None = None,
                   f0: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
        """Deduplicated units (N,) and frames per unit (N,) -> float32 waveform (T,).

        ``T = sum(durations) * hop_length``. Without durations, the duration predictor sets them
        (or every unit lasts one frame when the vocoder has none). F0-conditioned vocoders
        (``needs_f0``) take ``f0`` in Hz, 4 values per frame (:func:`.f0.extract_f0` on the
        source audio), cut or edge-padded to ``4 * sum(durations)``; without it they fall
        back as their config says (see :meth:`f0_input`).
        """
        self.eval()
        frames, idx, spk = self.frame_units(units, durations, speaker)
        if frames.numel() == 0:
            return np.zeros(0, dtype=np.float32)
        f0_in = self.f0_input(f0, frames.shape[1], idx)  # (1, 4F) or None
        return _to_numpy(self._generate(frames, spk, f0_in))

    def _generate(self, frames: Tensor, speaker: Tensor | None, f0: Tensor | None) -> Tensor:
        """:meth:`generate` of one utterance (1, F) -> (T,); ``f0`` only for F0 vocoders."""
        return (self.generate(frames, speaker) if f0 is None
                else self.generate(frames, speaker, f0))[0]  # type: ignore[call-arg]

    # -- long inputs ----------------------------------------------------------------------
    def receptive_field_frames(self) -> int:
        """Unit frames each side that one output sample of :meth:`generate` depends on (an
        upper bound): the context that makes chunked synthesis exact."""
        raise NotImplementedError

    @property
    def chunking(self) -> Chunking:
        """Chunks of :data:`VOCODER_CHUNK_S` seconds of frames, each generated with
        :meth:`receptive_field_frames` of context per side and trimmed: the same waveform
        as in one piece (to float rounding) for generators made only of convolutions."""
        return Chunking(self.framing.frames(VOCODER_CHUNK_S), self.receptive_field_frames(),
                        exact=True)

    def frame_multiple(self) -> int:
        """Chunks start on multiples of this many frames (F0 quantizers code 4 at a time)."""
        return 1

    def generate_stream(self, frames: Tensor, speaker: Tensor | None = None,
                        f0: Tensor | None = None, chunk_frames: int | None = None
                        ) -> Iterator[Tensor]:
        """:meth:`generate` chunk by chunk: frame units (1, F) (+ generator-ready ``f0``
        (1, 4F)) -> consecutive waveform pieces (T_k,) whose concatenation is
        ``generate(frames)[0]``: every chunk of ``chunk_frames`` frames is generated with
        :meth:`receptive_field_frames` of context each side, then trimmed to its own
        ``chunk * hop_length`` samples."""
        spec = self.chunking
        hop = self.hop_length
        for c in plan_chunks(frames.shape[1], chunk_frames or spec.chunk_frames,
                             spec.context_frames, self.frame_multiple()):
            wav = self._generate(frames[:, c.lo:c.hi], speaker, None if f0 is None else
                                 f0[:, F0_PER_FRAME * c.lo:F0_PER_FRAME * c.hi])
            yield wav[c.left * hop: c.left * hop + (c.stop - c.start) * hop]

    @torch.inference_mode()
    def synthesize_stream(self, units: Sequence[int], durations: Sequence[int] | None = None,
                          speaker: int | str | None = None,
                          f0: np.ndarray | Sequence[float] | None = None, *,
                          chunk_frames: int | None = None) -> Iterator[np.ndarray]:
        """:meth:`synthesize` in bounded memory: float32 waveform pieces (T_k,), in order.

        Durations (and the F0 input) are prepared for the whole utterance (a few bytes a
        frame); the generator runs chunk by chunk (:meth:`generate_stream`). The pieces
        joined equal :meth:`synthesize` to float rounding for HiFi-GAN; the fast vocoder's
        Griffin-Lim is iterative and global, so there they are close, not equal (see
        :meth:`spokenlm.vocoder.fast.FastVocoder.generate_stream`).
        """
        self.eval()
        frames, idx, spk = self.frame_units(units, durations, speaker)
        if frames.numel() == 0:
            return
        f0_in = self.f0_input(f0, frames.shape[1], idx)  # (1, 4F) or None
        for wav in self.generate_stream(frames, spk, f0_in, chunk_frames):
            yield _to_numpy(wav)

    @torch.inference_mode()
    def synthesize_to_wav(self, path: str | os.PathLike, units: Sequence[int],
                          durations: Sequence[int] | None = None,
                          speaker: int | str | None = None,
                          f0: np.ndarray | Sequence[float] | None = None) -> int:
        """Speak ``units`` into the wav file ``path`` (16-bit PCM, atomically) and return
        its number of samples. Speech up to :data:`~spokenlm.audio.chunking.STREAM_ABOVE_S`
        long is generated in one piece, exactly as :meth:`synthesize`; longer speech chunk
        by chunk (:meth:`synthesize_stream`), each piece written as it comes."""
        self.eval()
        frames, idx, spk = self.frame_units(units, durations, speaker)
        if frames.numel() == 0:
            return write_wav_blocks(path, [], self.sample_rate)
        f0_in = self.f0_input(f0, frames.shape[1], idx)  # (1, 4F) or None
        if not is_long(self.framing.samples(frames.shape[1]), self.sample_rate):
            pieces: Iterable[np.ndarray] = [_to_numpy(self._generate(frames, spk, f0_in))]
        else:
            pieces = (_to_numpy(w) for w in self.generate_stream(frames, spk, f0_in))
        return write_wav_blocks(path, pieces, self.sample_rate)

    def synthesize_batch(self, units: Sequence[Sequence[int]],
                         durations: Sequence[Sequence[int] | None] | None = None,
                         speakers: Sequence[int | str | None] | None = None,
                         f0s: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """:meth:`synthesize` over several utterances (one at a time: lengths differ)."""
        durations = durations if durations is not None else [None] * len(units)
        speakers = speakers if speakers is not None else [None] * len(units)
        f0s = f0s if f0s is not None else [None] * len(units)
        return [self.synthesize(u, d, s, f) for u, d, s, f in zip(units, durations, speakers, f0s)]

    def save_pretrained(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``path``, atomically (replacing
        only an empty dir or a vocoder dir unless ``overwrite``)."""
        with atomic_dir(path, VOCODER_KIND, overwrite=overwrite) as tmp:
            self.write_files(tmp)
        return Path(path)

    def write_files(self, path: Path) -> None:
        """Write ``config.json`` + ``model.safetensors`` into the existing dir ``path``."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(Path(path) / WEIGHTS_NAME))
        config = {"type": self.type, **self.config, "sample_rate": self.sample_rate,
                  "hop_length": self.hop_length, "spokenlm_version": __version__}
        write_json(Path(path) / CONFIG_NAME, config)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu"
                        ) -> VocoderModel:
        """Load a vocoder directory; on the base class this dispatches on ``type``."""
        return load_vocoder(path, device)


def _to_numpy(wav: Tensor) -> np.ndarray:
    """Waveform tensor (T,) -> float32 numpy, clipped to [-1, 1]."""
    return wav.float().clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)


def load_vocoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> VocoderModel:
    """Build the vocoder saved in directory ``path`` (or a hub id; type from its
    ``config.json``)."""
    path = local_or_hub(path, "vocoder")
    config_path, weights_path = path / CONFIG_NAME, path / WEIGHTS_NAME
    config = read_artifact_json(config_path, f"{config_path}: not found; {path} is not a "
                                f"vocoder directory (train one with `spokenlm vocoder train`)")
    name = config.get("type")
    try:
        cls = vocoder_class(str(name))
    except KeyError:
        raise ArtifactError(f"{config_path}: unknown vocoder type {name!r}; known types: "
                            f"{sorted(VOCODERS)}") from None
    if int(config.get("sample_rate", SAMPLE_RATE)) != SAMPLE_RATE:
        raise ArtifactError(f"{config_path}: vocoder made for sample_rate="
                            f"{config.get('sample_rate')}; spokenlm uses {SAMPLE_RATE} Hz; "
                            f"retrain it")
    if not isinstance(config.get("hop_length", HOP_LENGTH), int) or \
            int(config.get("hop_length", HOP_LENGTH)) < 1:
        raise ArtifactError(f"{config_path}: hop_length={config.get('hop_length')!r} is not a "
                            f"positive number of samples; fix the config or retrain")
    if not weights_path.exists():
        raise ArtifactError(f"{weights_path}: not found; the vocoder directory is incomplete, "
                            f"copy it again or retrain")
    model = cls(config)
    try:
        state = load_file(str(weights_path))
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError) as e:
        raise ArtifactError(f"{weights_path}: weights do not fit the {name!r} config in "
                            f"{config_path} ({str(e).splitlines()[0]}); the directory may come "
                            f"from another spokenlm version, retrain it") from e
    return model.to(device).eval()
