"""SpeechLM (Zhang et al. 2022): speech and text meet in a shared discrete unit space.

Model: speech transformer (a ``transformers.HubertModel`` with ``speech_layers`` layers:
conv front-end over the waveform, conv positions, post-norm transformer layers) + shared
transformer (``shared_layers`` more HuBERT encoder layers) + unit embedding (units + [MASK]).
Text enters as frame-level units (phoneme units for SpeechLM-P, text-to-unit hidden units
for SpeechLM-H) through the unit embedding, conv positions and the shared transformer.

- UMLM: frames masked by :func:`span_mask` predict their unit at the speech-transformer
  output and at the shared output (two linear heads, losses summed);
- UCTC: span-masked text units -> unit embedding -> shared transformer -> CTC over the
  text's characters (weight ``uctc_weight``, 0.1 in the paper);
- random swapping: unmasked speech frames replaced by their own unit's embedding between
  the two transformers with probability ``swap_prob``.

Because the shared layers are HuBERT encoder layers, the whole speech path (front-end +
speech layers + shared layers) is exported by :meth:`SpeechLMModel.export_speech_encoder`
as one ``transformers.HubertModel`` dir, which ``spokenlm asr train --encoder hubert
--encoder-path <run>/final/speech_encoder`` fine-tunes with CTC as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..common.files import atomic_dir, write_json
from ..ssl.model import HubertBody
from .blocks import TrunkConfig, additive_mask, frontend_config, padding_mask
from .losses import ctc_loss, masked_ce, random_swap
from .weights import ModelDir

SPEECHLM_TYPE = "spokenlm-speechlm"
SPEECH_ENCODER = "speech_encoder"


@dataclass
class SpeechLMConfig(TrunkConfig):
    n_units: int = 50  # unit vocabulary (phones or k-means clusters); [MASK] = n_units
    n_chars: int = 32  # CTC vocabulary incl. blank 0
    swap_prob: float = 0.1
    uctc_weight: float = 0.1
    normalize: bool = True
    variant: str = "P"  # "P" (phoneme units) or "H" (hidden units); informational


class SpeechLMModel(HubertBody, ModelDir, nn.Module):
    TYPE = SPEECHLM_TYPE
    CONFIG = SpeechLMConfig
    TRAIN_HINT = "spokenlm joint speechlm train"

    def __init__(self, config: SpeechLMConfig) -> None:
        from transformers import HubertModel
        from transformers.models.hubert.modeling_hubert import (HubertEncoderLayer,
                                                                HubertPositionalConvEmbedding)

        super().__init__()
        c = self.config = config
        hf = frontend_config(c.hidden, c.conv_dim, c.heads, c.ffn, c.speech_layers,
                             dropout=c.dropout)
        self.hubert = HubertModel(hf)
        hf = self.hubert.config  # attention implementation resolved
        self.shared = nn.ModuleList(HubertEncoderLayer(hf) for _ in range(c.shared_layers))
        self.unit_emb = nn.Embedding(c.n_units + 1, c.hidden)
        self.unit_pos = HubertPositionalConvEmbedding(hf)
        self.unit_norm = nn.LayerNorm(c.hidden, eps=hf.layer_norm_eps)
        self.head_speech = nn.Linear(c.hidden, c.n_units)
        self.head_shared = nn.Linear(c.hidden, c.n_units)
        self.ctc_head = nn.Linear(c.hidden, c.n_chars)

    @property
    def mask_id(self) -> int:
        return self.config.n_units

    def run_shared(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, H) -> (B, L, H) through the shared layers; pad (B, L) bool."""
        att = additive_mask(pad, x.dtype)
        for layer in self.shared:
            x = layer(x, attention_mask=att)
        return x

    def speech_hidden(self, wav: torch.Tensor, mask: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """(B, T) equal-length audio -> (B, F, H) speech-transformer output; masked frames
        (B, F) get HuBERT's learned mask embedding."""
        return self.hubert_hidden(wav, mask, self.config.normalize)

    def embed_units(self, units: torch.Tensor, pad: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """(B, L) unit ids (or ``mask_id``) -> (B, L, H) shared-transformer input."""
        x = self.unit_emb(units)
        if pad is not None:
            x = x.masked_fill(pad[..., None], 0.0)
        return self.unit_norm(x + self.unit_pos(x))

    def umlm_loss(self, wav: torch.Tensor, units: torch.Tensor, mask: torch.Tensor,
                  swap_prob: float | None = None, generator: torch.Generator | None = None
                  ) -> dict[str, torch.Tensor]:
        """UMLM with random swapping.

        Args:
            wav: (B, T) equal-length audio. units: (B, F) frame units (-100: none).
            mask: (B, F) bool masked frames.
        """
        p = self.config.swap_prob if swap_prob is None else swap_prob
        h = self.speech_hidden(wav, mask)  # (B, F, H)
        valid = units >= 0
        emb = self.unit_emb(units.clamp(min=0))
        swapped, swap = random_swap(h, emb, mask, valid, p, generator)
        top = self.run_shared(swapped)
        l1, a1 = masked_ce(self.head_speech(h), units, mask)
        l2, a2 = masked_ce(self.head_shared(top), units, mask)
        return {"loss": l1 + l2, "umlm_speech": l1, "umlm_shared": l2,
                "acc_speech": torch.tensor(a1), "acc_shared": torch.tensor(a2),
                "swap_rate": swap[~mask & valid].float().mean().detach()
                if bool((~mask & valid).any()) else torch.tensor(0.0)}

    def uctc_loss(self, units: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor,
                  chars: list[list[int]]) -> dict[str, torch.Tensor]:
        """UCTC: units (B, L) text-derived (padded anywhere past ``lengths``), mask (B, L)
        bool positions replaced by [MASK], chars (B, N_b) CTC targets (ids >= 1)."""
        pad = padding_mask(lengths, units.shape[1])
        x = torch.where(mask & ~pad, torch.full_like(units, self.mask_id), units.clamp(min=0))
        top = self.run_shared(self.embed_units(x, pad), pad)
        lp = torch.log_softmax(self.ctc_head(top).float(), -1)
        loss = ctc_loss(lp, lengths, chars)
        return {"loss": loss, "uctc": loss}

    # --- files ---------------------------------------------------------------------------

    def save_pretrained(self, path: str | Path, export: bool = True) -> Path:
        """Write the model dir (and ``speech_encoder/``, the CTC-ready HubertModel)."""
        with atomic_dir(path, self.artifact_kind()) as tmp:
            self.write_files(tmp)
            if export:
                self.export_speech_encoder(tmp / SPEECH_ENCODER)
        return Path(path)

    def export_speech_encoder(self, path: str | Path) -> Path:
        """Save front-end + speech layers + shared layers as one ``HubertModel`` dir with
        ``speech_layers + shared_layers`` layers (output = this model's shared output on
        speech without swapping)."""
        import copy

        from transformers import HubertModel
        from transformers.utils import logging as hf_logging

        path = Path(path)
        cfg = copy.deepcopy(self.hubert.config)
        cfg.num_hidden_layers = self.config.speech_layers + self.config.shared_layers
        full = HubertModel(cfg)
        state = {k: v for k, v in self.hubert.state_dict().items()}
        for i, layer in enumerate(self.shared):
            for k, v in layer.state_dict().items():
                state[f"encoder.layers.{self.config.speech_layers + i}.{k}"] = v
        full.load_state_dict(state)
        enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            full.save_pretrained(path, safe_serialization=True)
        finally:
            if enabled:
                hf_logging.enable_progress_bar()
        write_json(path / "preprocessor_config.json", {
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
            "sampling_rate": 16000, "padding_value": 0.0, "do_normalize": self.config.normalize,
            "return_attention_mask": False})
        return path
