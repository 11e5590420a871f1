"""CTC speech recogniser on any spokenlm encoder: ``CTCModel`` (library) and the
``spokenlm-ctc`` ASR backend.

``encoder (B, T) -> (B, F, D)`` [-> adapter] -> linear head -> log-probs (B, F, V) over
characters or phonemes (blank = 0). The adapter is a small transformer or BiLSTM, used on
top of encoders with no trainable weights (mfcc, logmel) so a no-pretraining baseline has
a real model to train. Saved dir::

    config.json          {"type": "spokenlm-ctc", "encoder": {...}, "unit", "adapter", ...}
    vocab.json           {"unit", "tokens"}
    model.safetensors    head + adapter (+ any non-HF encoder weights)
    encoder/             the fine-tuned transformers HuBERT / wav2vec 2.0 dir (HF encoders)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..common.errors import ArtifactError
from ..common.files import atomic_dir, atomic_path, read_json, write_json
from ..common.paths import ArtifactKind
from ..tokenize.encoders import Encoder, build_encoder
from ..tokenize.encoders.hf import HFEncoder
from .base import ASR, register_asr
from .text import Unit, Vocab, ctc_greedy

Adapter = Literal["auto", "none", "transformer", "bilstm"]
ENCODER_DIR = "encoder"
CTC_KIND = ArtifactKind("CTC model", ("config.json",), config_type="spokenlm-ctc")


@dataclass
class CTCConfig:
    encoder: dict[str, Any] = field(default_factory=lambda: {"name": "mfcc"})
    unit: Unit = "chars"
    adapter: Adapter = "auto"
    adapter_layers: int = 3
    adapter_dim: int = 96
    adapter_heads: int = 4
    dropout: float = 0.1
    #: time-masking probability while training (HF encoders: HF's SpecAugment; adapters:
    #: the same span masking before the adapter)
    mask_prob: float = 0.0


class TransformerAdapter(torch.nn.Module):
    """(B, F, D_in) -> (B, F, d): LayerNorm + projection, conv positional embedding,
    pre-norm transformer layers; masked frames take a learned embedding."""

    def __init__(self, d_in: int, d: int, layers: int, heads: int, dropout: float,
                 kind: str = "transformer") -> None:
        super().__init__()
        self.kind = kind
        self.norm = torch.nn.LayerNorm(d_in)
        self.proj = torch.nn.Linear(d_in, d)
        self.mask_emb = torch.nn.Parameter(torch.zeros(d))
        if kind == "bilstm":
            self.rnn = torch.nn.LSTM(d, d // 2, layers, batch_first=True, bidirectional=True,
                                     dropout=dropout if layers > 1 else 0.0)
        else:
            self.pos = torch.nn.Conv1d(d, d, 17, padding=8, groups=4)
            layer = torch.nn.TransformerEncoderLayer(d, heads, 4 * d, dropout, batch_first=True,
                                                     norm_first=True, activation="gelu")
            self.stack = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.out_norm = torch.nn.LayerNorm(d)
        self.dim = d

    def forward(self, x: torch.Tensor, lengths: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.proj(self.norm(x))  # (B, F, d)
        if mask is not None:
            x = torch.where(mask[..., None], self.mask_emb.to(x.dtype), x)
        if self.kind == "bilstm":
            return self.rnn(x)[0]
        x = x + torch.nn.functional.gelu(self.pos(x.transpose(1, 2))).transpose(1, 2)
        pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]  # (B, F)
        return self.out_norm(self.stack(x, src_key_padding_mask=pad))


class CTCModel(torch.nn.Module):
    """Encoder + optional adapter + linear CTC head. ``transcribe(wav) -> str``."""

    def __init__(self, config: CTCConfig, vocab: Vocab, encoder: Encoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.vocab = vocab
        self.encoder = encoder if encoder is not None else build_encoder(config.encoder)
        trainable = any(True for _ in self.encoder.parameters())
        kind = config.adapter
        if kind == "auto":
            kind = "none" if trainable else "transformer"
        config.adapter = kind
        self.adapter = (None if kind == "none" else TransformerAdapter(
            self.encoder.dim, config.adapter_dim, config.adapter_layers, config.adapter_heads,
            config.dropout, kind))
        self.dropout = torch.nn.Dropout(config.dropout)
        self.head = torch.nn.Linear(self.adapter.dim if self.adapter else self.encoder.dim,
                                    len(vocab))
        if isinstance(self.encoder, HFEncoder):
            hf = self.encoder.model
            hf.requires_grad_(True)
            hf.feature_extractor.requires_grad_(False)  # conv front-end: always frozen
            has_embed = getattr(hf, "masked_spec_embed", None) is not None
            hf.config.mask_time_prob = config.mask_prob if has_embed else 0.0
            hf.config.mask_feature_prob = 0.0

    def encoder_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor, *,
                freeze_encoder: bool = False,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """wav (B, T) zero-padded, lengths (B,) samples -> (log-probs (B, F, V) float32,
        frame lengths (B,)). ``mask`` (B, F) masks adapter inputs (training only)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_encoder):
            feats = self.encoder(wav)  # (B, F, D)
        n = torch.tensor([self.encoder.num_frames(int(t)) for t in lengths], device=feats.device)
        n = n.clamp(max=feats.shape[1])
        if self.adapter is not None:
            feats = self.adapter(feats, n, mask)
        logits = self.head(self.dropout(feats))
        return torch.log_softmax(logits.float(), dim=-1), n

    @torch.no_grad()
    def log_probs(self, wav: np.ndarray) -> torch.Tensor:
        """One waveform (T,) float32 at 16 kHz -> log-probs (F, V) on CPU."""
        was = self.training
        self.eval()
        device = self.head.weight.device
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None].to(device)
        lp, _ = self(x, torch.tensor([x.shape[1]]))
        self.train(was)
        return lp[0].cpu()

    def transcribe(self, wav: np.ndarray) -> str:
        """Greedy CTC transcript of one waveform (T,) at 16 kHz."""
        return self.vocab.decode(ctc_greedy(self.log_probs(wav).argmax(-1).numpy()))

    def transcribe_many(self, wavs: list[np.ndarray]) -> list[str]:
        return [self.transcribe(w) for w in wavs]

    # --- files ---------------------------------------------------------------------------

    def write_files(self, path: Path) -> None:
        """Write config.json, vocab.json, model.safetensors (+ encoder/) into dir ``path``."""
        path = Path(path)
        enc_cfg = self.encoder.config()
        state = {k: v for k, v in self.state_dict().items() if not
                 (isinstance(self.encoder, HFEncoder) and k.startswith("encoder."))}
        if isinstance(self.encoder, HFEncoder):
            hf = copy.deepcopy(self.encoder.model).cpu()
            hf.config.num_hidden_layers = len(hf.encoder.layers)  # saved truncated
            from transformers.utils import logging as hf_logging

            enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                hf.save_pretrained(path / ENCODER_DIR, safe_serialization=True)
            finally:
                if enabled:
                    hf_logging.enable_progress_bar()
            write_json(path / ENCODER_DIR / "preprocessor_config.json", {
                "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                "sampling_rate": 16000, "padding_value": 0.0,
                "do_normalize": bool(self.encoder.options.normalize)})
            enc_cfg = {**enc_cfg, "path": ENCODER_DIR, "layer": len(hf.encoder.layers)}
        with atomic_path(path / "model.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
        self.vocab.save(path / "vocab.json")
        write_json(path / "config.json", {"type": "spokenlm-ctc", **asdict(self.config),
                                          "encoder": enc_cfg, "spokenlm_version": __version__})

    def save_pretrained(self, path: str | Path) -> Path:
        with atomic_dir(path, CTC_KIND) as tmp:
            self.write_files(tmp)
        return Path(path)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> CTCModel:
        """Load a dir written by :meth:`save_pretrained`."""
        path = Path(path)
        cfg_path = path / "config.json"
        cfg = read_json(cfg_path) if cfg_path.exists() else {}
        if cfg.get("type") != "spokenlm-ctc":
            raise ArtifactError(f"{path}: not a spokenlm CTC model dir (config.json type is "
                                f"{cfg.get('type')!r}); train one with `spokenlm asr train`")
        cfg.pop("type"), cfg.pop("spokenlm_version", None)
        enc = dict(cfg["encoder"])
        if enc.get("path") == ENCODER_DIR:
            enc["path"] = str(path / ENCODER_DIR)
        cfg["encoder"] = enc
        model = cls(CTCConfig(**cfg), Vocab.load(path / "vocab.json"))
        try:
            missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")),
                                                        strict=False)
        except (RuntimeError, OSError) as e:
            raise ArtifactError(f"{path / 'model.safetensors'}: does not fit config.json "
                                f"({str(e).splitlines()[0]}); re-save the model") from e
        missing = [k for k in missing if not k.startswith("encoder.")]
        if missing or unexpected:
            raise ArtifactError(f"{path}: weights do not match config.json (missing "
                                f"{missing[:3]}, unexpected {unexpected[:3]}); re-save it")
        return model.to(device).eval()


class SpokenLMCTCASR(ASR):
    """A :class:`CTCModel` dir as an ASR backend (``load_asr("spokenlm-ctc:DIR")``)."""

    name = "spokenlm-ctc"

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        self.path = Path(path)
        self.model = CTCModel.from_pretrained(self.path, device=device)
        self.unit = "phones" if self.model.vocab.unit == "phonemes" else "words"

    def transcribe(self, wav: np.ndarray) -> str:
        return self.model.transcribe(wav)

    def describe(self) -> str:
        return f"{self.name}:{self.path}"


@register_asr("spokenlm-ctc")
def _spokenlm_ctc(argument: str | None) -> ASR:
    if not argument:
        raise ArtifactError("spokenlm-ctc needs a model dir: load_asr('spokenlm-ctc:DIR') "
                            "with DIR from `spokenlm asr train`")
    return SpokenLMCTCASR(argument)
