"""Building blocks shared by SpeechLM and SLAM: speech front-end, conformer and transformer
layers, text embeddings, padding masks and text masking.

The speech front-end *is* HuBERT's (transformers ``HubertFeatureEncoder`` +
``HubertFeatureProjection`` + ``HubertPositionalConvEmbedding``), built from the same
``transformers.HubertConfig`` presets as ``spokenlm ssl train`` (:mod:`spokenlm.ssl.config`),
so ``T`` samples give ``floor((T - 400) / 320) + 1`` frames at 50 Hz like every spokenlm
encoder. Frame masking reuses :func:`spokenlm.ssl.masking.span_mask`; text masking is
SpanBERT-style spans over tokens with BERT's 80/10/10 corruption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..ssl.config import hubert_config
from ..ssl.masking import span_mask
from ..tokenize.encoders.base import num_frames

__all__ = ["ConformerLayer", "ConformerStack", "SpeechFrontend", "TextEmbedding", "TrunkConfig",
           "additive_mask", "bert_corrupt", "frame_lengths", "frontend_config", "padding_mask",
           "span_mask", "text_span_mask"]


@dataclass
class TrunkConfig:
    """The sizes SpeechLM and SLAM share: width, attention heads, feed-forward width, conv
    front-end channels, speech-only and shared layers (SpeechLM: transformer layers, SLAM:
    conformers), and dropout. Each model's config extends it."""

    hidden: int = 96
    heads: int = 4
    ffn: int = 384
    conv_dim: int = 64
    speech_layers: int = 2
    shared_layers: int = 2
    dropout: float = 0.0


def frontend_config(hidden: int = 96, conv_dim: int = 64, heads: int = 4, ffn: int = 384,
                    layers: int = 2, *, norm: str = "group", pos_kernel: int = 32,
                    pos_groups: int = 4, dropout: float = 0.0) -> Any:
    """A ``transformers.HubertConfig`` for a joint model's speech side (HuBERT's conv kernels
    and strides; widths and depth from the arguments). ``norm="layer"`` gives convs that
    do not mix padding into real frames (needed when batches are zero-padded)."""
    return hubert_config("tiny", conv_dim=(conv_dim,) * 7, hidden_size=hidden,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=ffn, num_conv_pos_embeddings=pos_kernel,
                         num_conv_pos_embedding_groups=pos_groups, feat_extract_norm=norm,
                         conv_bias=norm == "layer", dropout=dropout)


def frame_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Samples (B,) -> 50 Hz frames (B,) of the conv front-end."""
    return torch.tensor([num_frames(int(t)) for t in lengths], dtype=torch.long,
                        device=lengths.device)


def padding_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B,) lengths -> (B, width) bool, True on padding."""
    return torch.arange(width, device=lengths.device)[None] >= lengths[:, None]


def additive_mask(pad: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, L) bool padding -> (B, 1, 1, L) additive attention mask for HF attention layers."""
    if pad is None or not bool(pad.any()):
        return None
    return torch.zeros(pad.shape, dtype=dtype, device=pad.device).masked_fill(
        pad, torch.finfo(dtype).min)[:, None, None, :]


class SpeechFrontend(nn.Module):
    """wav (B, T) -> (hidden (B, F, H), conv features (B, F, C), frames (B,)).

    HuBERT's conv feature encoder, LayerNorm + projection, learned ``mask_emb`` on masked
    frames, conv positional embedding and LayerNorm (as ``HubertModel`` before its stack).
    ``grad_mult`` scales the gradient reaching the conv encoder (fairseq's
    ``feature_grad_mult``, 0.1 in wav2vec 2.0 / HuBERT pretraining); the forward is unchanged.
    """

    def __init__(self, config: Any, normalize: bool = True, grad_mult: float = 1.0) -> None:
        from transformers.models.hubert.modeling_hubert import (
            HubertFeatureEncoder, HubertFeatureProjection, HubertPositionalConvEmbedding)

        super().__init__()
        self.normalize = normalize
        self.grad_mult = grad_mult
        self.feature_extractor = HubertFeatureEncoder(config)
        self.feature_projection = HubertFeatureProjection(config)
        self.pos_conv = HubertPositionalConvEmbedding(config)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mask_emb = nn.Parameter(torch.empty(config.hidden_size).uniform_())
        self.dim = int(config.hidden_size)
        self.conv_dim = int(config.conv_dim[-1])

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None,
                mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[1], device=wav.device)
        if self.normalize:  # per utterance over its real samples only
            valid = padding_mask(lengths, wav.shape[1]).logical_not().to(wav.dtype)
            n = valid.sum(1, keepdim=True).clamp(min=1)
            mean = (wav * valid).sum(1, keepdim=True) / n
            var = (((wav - mean) * valid) ** 2).sum(1, keepdim=True) / n
            wav = (wav - mean) / torch.sqrt(var + 1e-7) * valid
        feats = self.feature_extractor(wav).transpose(1, 2)  # (B, F, C)
        if self.training and self.grad_mult != 1.0:  # same values, gradient x grad_mult
            feats = feats * self.grad_mult + feats.detach() * (1.0 - self.grad_mult)
        frames = frame_lengths(lengths).clamp(max=feats.shape[1])
        h = self.feature_projection(feats)  # (B, F, H)
        if mask is not None:
            h = torch.where(mask[..., None], self.mask_emb.to(h.dtype), h)
        pad = padding_mask(frames, h.shape[1])
        h = h.masked_fill(pad[..., None], 0.0)
        h = self.norm(h + self.pos_conv(h))
        return h, feats, frames


class _FeedForward(nn.Sequential):
    def __init__(self, d: int, ffn: int, dropout: float) -> None:
        super().__init__(nn.LayerNorm(d), nn.Linear(d, ffn), nn.SiLU(), nn.Dropout(dropout),
                         nn.Linear(ffn, d), nn.Dropout(dropout))


class _ConvModule(nn.Module):
    """Conformer convolution module: LN, pointwise conv + GLU, depthwise conv, norm, SiLU,
    pointwise conv. (B, L, d) -> (B, L, d); padded frames are zeroed before the depthwise
    conv so they never leak into real frames."""

    def __init__(self, d: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.dw_norm = nn.LayerNorm(d)  # LayerNorm, not BatchNorm: padding-safe, small batches
        self.pw2 = nn.Conv1d(d, d, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        y = F.glu(self.pw1(self.norm(x).transpose(1, 2)), dim=1)  # (B, d, L)
        if pad is not None:
            y = y.masked_fill(pad[:, None, :], 0.0)
        y = self.dw_norm(self.dw(y).transpose(1, 2))  # (B, L, d)
        return self.drop(self.pw2(F.silu(y).transpose(1, 2)).transpose(1, 2))


class ConformerLayer(nn.Module):
    """Conformer block (Gulati et al. 2020): x + FFN/2, + MHSA, + conv module, + FFN/2, LN.

    (B, L, d) -> (B, L, d); ``pad`` (B, L) bool, True on padding.
    """

    def __init__(self, d: int, heads: int, ffn: int, kernel: int = 15,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.ff1 = _FeedForward(d, ffn, dropout)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.attn_drop = nn.Dropout(dropout)
        self.conv = _ConvModule(d, kernel, dropout)
        self.ff2 = _FeedForward(d, ffn, dropout)
        self.out_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        y = self.attn_norm(x)
        y = self.attn(y, y, y, key_padding_mask=pad, need_weights=False)[0]
        x = x + self.attn_drop(y)
        x = x + self.conv(x, pad)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x)


class ConformerStack(nn.Module):
    """``n`` conformer layers; ``forward`` returns the last output, ``forward_all`` every
    layer's output (list of (B, L, d))."""

    def __init__(self, n: int, d: int, heads: int, ffn: int, kernel: int = 15,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConformerLayer(d, heads, ffn, kernel, dropout)
                                    for _ in range(n))

    def forward_all(self, x: torch.Tensor, pad: torch.Tensor | None = None
                    ) -> list[torch.Tensor]:
        pad = pad if pad is not None and bool(pad.any()) else None
        out = []
        for layer in self.layers:
            x = layer(x, pad)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, pad)[-1] if len(self.layers) else x


class TextEmbedding(nn.Module):
    """Token ids (B, L) -> (B, L, d): token embedding + learned absolute positions + LN."""

    def __init__(self, vocab_size: int, d: int, max_len: int = 1024,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d)
        self.positions = nn.Embedding(max_len, d)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        self.max_len = max_len

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] > self.max_len:
            raise ValueError(f"text of {ids.shape[1]} tokens is longer than the model's "
                             f"{self.max_len} positions; shorten it or raise max_text_len")
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(self.norm(self.tokens(ids) + self.positions(pos)[None]))


def text_span_mask(lengths: Sequence[int], mask_prob: float = 0.15, span: int = 3,
                   seed: int | Sequence[int] = 0, max_len: int | None = None
                   ) -> torch.Tensor:
    """SpanBERT-style text mask (B, L) bool: spans of ``span`` tokens covering about
    ``mask_prob`` of each sequence (at least one span), from :func:`span_mask`."""
    return span_mask(lengths, mask_prob, span, min_masks=1, seed=seed, max_frames=max_len)


def bert_corrupt(ids: torch.Tensor, mask: torch.Tensor, mask_id: int, vocab_size: int,
                 generator: torch.Generator | None = None, first_id: int = 1) -> torch.Tensor:
    """BERT corruption of masked positions: 80% ``mask_id``, 10% a random token in
    ``[first_id, vocab_size)``, 10% unchanged. ids (B, L) -> (B, L)."""
    r = torch.rand(ids.shape, generator=generator).to(ids.device)
    rand_tok = torch.randint(first_id, vocab_size, ids.shape, generator=generator).to(ids.device)
    out = torch.where(mask & (r < 0.8), torch.full_like(ids, mask_id), ids)
    return torch.where(mask & (r >= 0.8) & (r < 0.9), rand_tok, out)
