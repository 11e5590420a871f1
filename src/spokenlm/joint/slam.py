"""SLAM (Bapna et al. 2021): one conformer encoder for speech and text.

Speech: HuBERT conv front-end -> ``speech_layers`` conformer layers (w2v-BERT's
"contrastive module") -> shared conformer stack ("MLM module"). Text: character embedding +
learned positions -> the same shared stack. A modality embedding is added before the shared
stack. Objectives (each a method returning a scalar):

- :meth:`SLAMModel.speech_loss` (w2v-BERT): span-masked frames; contrastive loss of the
  speech-layer output against a Gumbel quantiser's vectors of the unmasked conv features,
  plus MLM over the quantiser's code ids at the top, plus the codebook diversity loss;
- :meth:`SLAMModel.text_loss`: span-masked character MLM (BERT 80/10/10 corruption);
- :meth:`SLAMModel.tlm_loss`: masked speech and masked text of a pair, concatenated through
  the shared stack; code MLM on masked frames + character MLM on masked tokens;
- :meth:`SLAMModel.stm_loss`: binary speech-text matching on the mean-pooled shared output,
  negatives = another utterance's transcript in the batch.

Saved dir: ``config.json`` (``{"type": "spokenlm-slam", ...}``), ``model.safetensors``,
``vocab.json`` (characters). :meth:`SLAMModel.speech_path` is what CTC fine-tuning uses
(encoder ``joint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import InputError
from ..tokenize.encoders.spectral import LogMelEncoder, LogMelOptions
from .blocks import (ConformerStack, SpeechFrontend, TextEmbedding, TrunkConfig, bert_corrupt,
                     frontend_config, padding_mask)
from .losses import contrastive_loss, masked_ce
from .quantizer import GumbelQuantizer
from .weights import ModelDir

SLAM_TYPE = "spokenlm-slam"


@dataclass
class SLAMConfig(TrunkConfig):
    vocab_size: int = 32  # characters incl. blank/pad 0; the [MASK] id is vocab_size
    kernel: int = 15
    code_entries: int = 64
    code_groups: int = 1
    code_dim: int = 64
    max_text_len: int = 512
    temperature: float = 0.1
    n_negatives: int = 20
    diversity_weight: float = 0.1
    feature_grad_mult: float = 0.1  # wav2vec 2.0: gradient into the conv encoder x 0.1
    quantizer_grad: bool = False  # let the targets' gradient reach the conv encoder
    frozen_code_assignment: bool = False  # codes = fixed random hash (BEST-RQ-like)
    code_input: Literal["conv", "logmel"] = "conv"  # quantiser input (conv features or
    # fixed log-mel frames); "conv" for dirs saved before the option existed


@dataclass
class SpeechOut:
    """speech (B, F, H) after the speech layers, top (B, F, H) after the shared stack,
    feats (B, F, C) conv features, frames (B,), pad (B, F) bool."""

    speech: torch.Tensor
    top: torch.Tensor
    feats: torch.Tensor
    frames: torch.Tensor
    pad: torch.Tensor


class SLAMModel(ModelDir, nn.Module):
    TYPE = SLAM_TYPE
    CONFIG = SLAMConfig
    TRAIN_HINT = "spokenlm joint slam train"

    def __init__(self, config: SLAMConfig) -> None:
        super().__init__()
        c = self.config = config
        self.frontend = SpeechFrontend(frontend_config(c.hidden, c.conv_dim, c.heads, c.ffn,
                                                       norm="layer", dropout=c.dropout),
                                       grad_mult=c.feature_grad_mult)
        self.speech = ConformerStack(c.speech_layers, c.hidden, c.heads, c.ffn, c.kernel,
                                     c.dropout)
        self.text_emb = TextEmbedding(c.vocab_size + 1, c.hidden, c.max_text_len, c.dropout)
        self.modality = nn.Embedding(2, c.hidden)  # 0 speech, 1 text
        self.shared = ConformerStack(c.shared_layers, c.hidden, c.heads, c.ffn, c.kernel,
                                     c.dropout)
        if c.code_input not in ("conv", "logmel"):
            raise InputError(f"SLAM code_input {c.code_input!r}: use 'conv' or 'logmel'")
        self.code_features = LogMelEncoder(LogMelOptions()) if c.code_input == "logmel" else None
        q_dim = self.code_features.dim if self.code_features is not None else c.conv_dim
        self.quantizer = GumbelQuantizer(q_dim, c.code_entries, c.code_groups, c.code_dim)
        if c.frozen_code_assignment:  # which code a frame gets never trains; codebook does
            self.quantizer.norm.requires_grad_(False)
            self.quantizer.logits.requires_grad_(False)
        self.context_proj = nn.Linear(c.hidden, c.code_dim)
        self.code_head = nn.Linear(c.hidden, self.quantizer.n_codes)
        self.text_head = nn.Linear(c.hidden, c.vocab_size)
        self.stm_head = nn.Linear(c.hidden, 1)

    def quantizer_input(self, wav: torch.Tensor, out: SpeechOut) -> torch.Tensor:
        """The quantiser's input (B, F, D): the conv features through a stop-gradient
        (unless ``quantizer_grad``), or with ``code_input="logmel"`` log-mel frames of the
        waveform on the same 50 Hz grid, which no training step can move (BEST-RQ's
        fixed targets)."""
        if self.code_features is None:
            return out.feats if self.config.quantizer_grad else out.feats.detach()
        with torch.no_grad():
            mel = self.code_features(wav.float())[:, : out.feats.shape[1]]
        return mel.to(out.feats.dtype)

    @property
    def mask_id(self) -> int:
        return self.config.vocab_size

    # --- encoders ------------------------------------------------------------------------

    def encode_speech(self, wav: torch.Tensor, lengths: torch.Tensor | None = None,
                      mask: torch.Tensor | None = None, shared: bool = True) -> SpeechOut:
        """wav (B, T) zero-padded, lengths (B,) samples, mask (B, F) bool masked frames."""
        h, feats, frames = self.frontend(wav, lengths, mask)
        pad = padding_mask(frames, h.shape[1])
        s = self.speech(h, pad)
        top = self.shared(s + self.modality.weight[0], pad) if shared else s
        return SpeechOut(s, top, feats, frames, pad)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, H) input of the shared stack."""
        return self.text_emb(ids) + self.modality.weight[1]

    def speech_path(self, wav: torch.Tensor, lengths: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine-tuning encoder: (B, T) -> ((B, F, H) shared-stack output, frames (B,))."""
        out = self.encode_speech(wav, lengths)
        return out.top, out.frames

    # --- objectives ----------------------------------------------------------------------

    def speech_loss(self, wav: torch.Tensor, lengths: torch.Tensor | None, mask: torch.Tensor,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """w2v-BERT: ``contrastive`` (+ diversity) at the speech layers, ``code_mlm`` at the
        top; mask (B, F) bool. Returns the parts and their weighted sum ``loss``.

        The quantiser's input is :meth:`quantizer_input`: with ``code_input="conv"`` the conv
        features through a stop-gradient unless ``config.quantizer_grad`` (with the
        gradient, the conv encoder learns to give every frame the same code within ~100
        steps: contrastive and code MLM then drop to 0, because distractors equal to the
        positive are ignored, and the diversity loss, at most ``diversity_weight``, cannot
        outweigh that)."""
        out = self.encode_speech(wav, lengths, mask)
        mask = mask[:, : out.speech.shape[1]] & ~out.pad
        q = self.quantizer(self.quantizer_input(wav, out))
        con = contrastive_loss(self.context_proj(out.speech), q.vectors, mask,
                               self.config.n_negatives, self.config.temperature, generator)
        mlm, acc = masked_ce(self.code_head(out.top), q.codes.detach(), mask)
        div = q.diversity * self.config.diversity_weight
        return {"loss": con + mlm + div, "contrastive": con, "code_mlm": mlm,
                "diversity": q.diversity, "code_acc": torch.tensor(acc),
                "code_ppl": torch.tensor(q.perplexity),
                "code_entropy": torch.tensor(q.entropy)}

    def text_loss(self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Span-masked character MLM: ids (B, L) (0 = padding), mask (B, L) bool."""
        pad = padding_mask(lengths, ids.shape[1])
        mask = mask & ~pad
        x = bert_corrupt(ids, mask, self.mask_id, self.config.vocab_size, generator)
        top = self.shared(self.embed_text(x), pad)
        loss, acc = masked_ce(self.text_head(top), ids, mask)
        return {"loss": loss, "text_mlm": loss, "text_acc": torch.tensor(acc)}

    def _joint(self, wav: torch.Tensor, lengths: torch.Tensor, ids: torch.Tensor,
               tlens: torch.Tensor, smask: torch.Tensor | None, text_in: torch.Tensor
               ) -> tuple[SpeechOut, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Speech layers, then [speech; text] through the shared stack.
        Returns (speech out, shared output (B, F + L, H), joint padding, text padding)."""
        out = self.encode_speech(wav, lengths, smask, shared=False)
        tpad = padding_mask(tlens, ids.shape[1])
        x = torch.cat([out.speech + self.modality.weight[0], self.embed_text(text_in)], 1)
        pad = torch.cat([out.pad, tpad], 1)
        return out, self.shared(x, pad), pad, tpad

    def tlm_loss(self, wav: torch.Tensor, lengths: torch.Tensor, ids: torch.Tensor,
                 tlens: torch.Tensor, smask: torch.Tensor, tmask: torch.Tensor,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Translation LM on pairs: masked frames predict their codes, masked characters
        their ids, both seeing the other modality. smask (B, F), tmask (B, L) bool."""
        tmask = tmask & ~padding_mask(tlens, ids.shape[1])
        text_in = bert_corrupt(ids, tmask, self.mask_id, self.config.vocab_size, generator)
        out, top, _, _ = self._joint(wav, lengths, ids, tlens, smask, text_in)
        n = out.speech.shape[1]
        smask = smask[:, :n] & ~out.pad
        with torch.no_grad():
            codes = self.quantizer(self.quantizer_input(wav, out)).codes
        s_loss, s_acc = masked_ce(self.code_head(top[:, :n]), codes, smask)
        t_loss, t_acc = masked_ce(self.text_head(top[:, n:]), ids, tmask)
        return {"loss": s_loss + t_loss, "tlm_speech": s_loss, "tlm_text": t_loss,
                "tlm_text_acc": torch.tensor(t_acc)}

    def stm_loss(self, wav: torch.Tensor, lengths: torch.Tensor, ids: torch.Tensor,
                 tlens: torch.Tensor, negatives: list[int]) -> dict[str, torch.Tensor]:
        """Speech-text matching: each utterance with its transcript (label 1) and with the
        transcript of ``negatives[i]`` (label 0; -1 = no negative)."""
        neg = [j for j in negatives if j >= 0]
        keep = [i for i, j in enumerate(negatives) if j >= 0]
        wav2 = torch.cat([wav, wav[keep]])
        len2 = torch.cat([lengths, lengths[keep]])
        ids2 = torch.cat([ids, ids[neg]])
        tl2 = torch.cat([tlens, tlens[neg]])
        labels = torch.cat([torch.ones(len(wav)), torch.zeros(len(keep))]).to(wav.device)
        _, top, pad, _ = self._joint(wav2, len2, ids2, tl2, None, ids2)
        valid = (~pad).to(top.dtype)[..., None]
        pooled = (top * valid).sum(1) / valid.sum(1).clamp(min=1)
        logit = self.stm_head(pooled).squeeze(-1).float()
        loss = F.binary_cross_entropy_with_logits(logit, labels)
        acc = ((logit > 0).float() == labels).float().mean()
        return {"loss": loss, "stm": loss, "stm_acc": acc.detach()}

    # --- files ---------------------------------------------------------------------------
