"""HuBERT-style masked prediction model: a ``transformers.HubertModel`` plus a small head.

The encoder *is* a ``HubertModel``, so a saved model dir (``config.json`` +
``model.safetensors``) loads with ``transformers.HubertModel.from_pretrained`` and with
spokenlm's ``hubert`` encoder (``{"name": "hubert", "path": dir, "layer": L}``) as it is.
The head (``final_proj`` and one embedding per k-means cluster) is kept beside it in
``ssl_head.safetensors`` + ``ssl_config.json`` and is ignored by both loaders.

Loss (HuBERT, Hsu et al. 2021): logits ``cos(final_proj(h_t), e_c) / temperature`` over
all clusters ``c``; cross-entropy with the frame's k-means label on masked frames (plus
``unmasked_weight`` x the loss on unmasked frames).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .. import __version__
from ..common.errors import ArtifactError
from ..common.files import atomic_dir, atomic_path, write_json
from ..common.paths import ArtifactKind
from ..audio.normalize import normalize_wav
from .config import HeadConfig

HEAD_WEIGHTS = "ssl_head.safetensors"
HEAD_CONFIG = "ssl_config.json"
SSL_KIND = ArtifactKind("SSL model", (HEAD_CONFIG,))
PREPROCESSOR = "preprocessor_config.json"


@dataclass
class SSLOutput:
    """loss (scalar), accuracies on masked / unmasked frames (floats, NaN when none),
    logits (B, F, K)."""

    loss: torch.Tensor
    acc_masked: float
    acc_unmasked: float
    logits: torch.Tensor


class HubertBody:
    """For a module whose ``hubert`` is a transformers ``HubertModel``: its frame count and
    its last hidden states (used by the SSL model and SpeechLM's speech transformer)."""

    hubert: Any

    def num_frames(self, num_samples: int) -> int:
        return int(self.hubert._get_feat_extract_output_lengths(torch.tensor(num_samples)))

    def hubert_hidden(self, wav: torch.Tensor, mask: torch.Tensor | None,
                      normalize: bool) -> torch.Tensor:
        """(B, T) equal-length audio (per-utterance normalised first when ``normalize``) ->
        (B, F, H) last hidden states; ``mask`` (B, F) bool frames get HuBERT's learned mask
        embedding before the transformer."""
        if normalize:
            wav = normalize_wav(wav)
        return self.hubert(wav, mask_time_indices=mask).last_hidden_state


class HubertPretrainModel(HubertBody, torch.nn.Module):
    """``hubert`` (transformers HubertModel) + ``final_proj`` (H -> final_dim) +
    ``label_embs`` (K, final_dim)."""

    def __init__(self, config: Any, head: HeadConfig, *, normalize: bool = True,
                 feature_grad_mult: float = 0.1) -> None:
        from transformers import HubertModel

        super().__init__()
        self.hubert = HubertModel(config)
        self.head = head
        self.normalize = normalize
        self.feature_grad_mult = feature_grad_mult
        self.final_proj = torch.nn.Linear(config.hidden_size, head.final_dim)
        self.label_embs = torch.nn.Parameter(torch.empty(head.n_clusters, head.final_dim))
        torch.nn.init.uniform_(self.label_embs)
        self.hubert.feature_extractor.register_forward_hook(self._scale_conv_grad)

    def _scale_conv_grad(self, module: torch.nn.Module, args: Any, out: torch.Tensor
                         ) -> torch.Tensor:
        """Scale the conv front-end's gradient by ``feature_grad_mult`` (HuBERT: 0.1)."""
        g = self.feature_grad_mult
        if not self.training or g == 1.0:
            return out
        return out.detach() if g == 0 else out * g + out.detach() * (1 - g)

    @property
    def config(self) -> Any:
        return self.hubert.config

    def hidden(self, wav: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) audio -> (B, F, H) last hidden states; ``mask`` (B, F) bool frames get the
        learned mask embedding before the transformer."""
        return self.hubert_hidden(wav, mask, self.normalize)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, F, H) -> (B, F, K) cosine similarities / temperature."""
        proj = F.normalize(self.final_proj(hidden).float(), dim=-1)
        embs = F.normalize(self.label_embs.float(), dim=-1)
        return proj @ embs.T / self.head.temperature

    def forward(self, wav: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> SSLOutput:
        """Masked prediction loss.

        Args:
            wav: (B, T) float audio at 16 kHz (equal lengths, no padding).
            labels: (B, F) int64 k-means labels of each frame (-100: ignore).
            mask: (B, F) bool, True where frames are masked.
        """
        logits = self.logits(self.hidden(wav, mask))  # (B, F, K)
        if logits.shape[1] != labels.shape[1]:
            raise ValueError(f"model gives {logits.shape[1]} frames but labels have "
                             f"{labels.shape[1]}; targets must come from 50 Hz encoders")
        valid = labels >= 0
        ce = F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(),
                             reduction="none").view_as(labels)  # (B, F)
        pred = logits.argmax(-1) == labels
        m, u = mask & valid, ~mask & valid
        loss = (ce * m).sum() / m.sum().clamp(min=1)
        if self.head.unmasked_weight > 0:
            loss = loss + self.head.unmasked_weight * (ce * u).sum() / u.sum().clamp(min=1)
        acc_m = float(pred[m].float().mean()) if m.any() else float("nan")
        acc_u = float(pred[u].float().mean()) if u.any() else float("nan")
        return SSLOutput(loss, acc_m, acc_u, logits)

    # --- files ---------------------------------------------------------------------------

    def write_files(self, path: Path) -> None:
        """Write the HF encoder dir (config.json, model.safetensors, preprocessor_config.json)
        and the head (ssl_head.safetensors, ssl_config.json) into the existing dir ``path``."""
        from transformers.utils import logging as hf_logging

        path = Path(path)
        enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.hubert.save_pretrained(path, safe_serialization=True)
        finally:
            if enabled:
                hf_logging.enable_progress_bar()
        write_json(path / PREPROCESSOR, {
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
            "sampling_rate": 16000, "padding_value": 0.0, "do_normalize": self.normalize,
            "return_attention_mask": False})
        with atomic_path(path / HEAD_WEIGHTS) as tmp:
            save_file({"final_proj.weight": self.final_proj.weight.detach().contiguous(),
                       "final_proj.bias": self.final_proj.bias.detach().contiguous(),
                       "label_embs": self.label_embs.detach().contiguous()}, str(tmp))
        write_json(path / HEAD_CONFIG, {"head": self.head.to_dict(), "normalize": self.normalize,
                                        "feature_grad_mult": self.feature_grad_mult,
                                        "spokenlm_version": __version__})

    def save_pretrained(self, path: str | Path) -> Path:
        with atomic_dir(path, SSL_KIND) as tmp:
            self.write_files(tmp)
        return Path(path)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> HubertPretrainModel:
        """Load a dir written by :meth:`save_pretrained` (encoder + head)."""
        from transformers import HubertConfig, HubertModel

        path = Path(path)
        meta_path = path / HEAD_CONFIG
        if not (path / "config.json").exists() or not meta_path.exists():
            raise ArtifactError(f"{path}: not a spokenlm SSL model dir (needs config.json and "
                                f"{HEAD_CONFIG}); train one with `spokenlm ssl train`")
        meta = json.loads(meta_path.read_text())
        model = cls(HubertConfig.from_pretrained(str(path)), HeadConfig(**meta["head"]),
                    normalize=meta["normalize"], feature_grad_mult=meta["feature_grad_mult"])
        model.hubert = HubertModel.from_pretrained(str(path), local_files_only=True)
        model.hubert.feature_extractor.register_forward_hook(model._scale_conv_grad)
        model.load_head(path)
        return model

    def load_head(self, path: Path) -> None:
        weights = Path(path) / HEAD_WEIGHTS
        if not weights.exists():
            raise ArtifactError(f"{weights}: missing; the SSL dir is incomplete, re-run "
                                f"`spokenlm ssl train` (it resumes)")
        t = load_file(str(weights))
        if tuple(t["label_embs"].shape) != tuple(self.label_embs.shape):
            raise ArtifactError(f"{weights}: {tuple(t['label_embs'].shape)} label embeddings, "
                                f"model expects {tuple(self.label_embs.shape)}; use the same "
                                f"--n-clusters and --size as the saved run")
        with torch.no_grad():
            self.final_proj.weight.copy_(t["final_proj.weight"])
            self.final_proj.bias.copy_(t["final_proj.bias"])
            self.label_embs.copy_(t["label_embs"])
