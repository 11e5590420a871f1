"""Text-to-unit model for SpeechLM-H (FastSpeech-like, non-autoregressive).

phones (B, P) -> phone encoder (embedding + positions + transformer) -> duration predictor
(two convs -> log(1 + frames) per phone) -> length regulator (each phone state repeated by
its duration) -> unit decoder (positions + transformer) -> logits over hidden units per
50 Hz frame. Trained on the paired subset: phone durations from forced alignments
(``spokenlm asr align``; ``sil`` intervals included) or, without them, spread evenly over the
utterance's frames; unit targets are the speech's frame-level k-means units.
Predicted durations are at least 1 frame, so the output has ``sum(durations)`` frames.

Saved dir: ``config.json`` (``{"type": "spokenlm-t2u", "phones": [...], ...}``) +
``model.safetensors``. The training command is :mod:`spokenlm.joint.t2u_train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import InputError
from .blocks import padding_mask
from .losses import masked_ce
from .weights import ModelDir

T2U_TYPE = "spokenlm-t2u"
SILENCE = "sil"


@dataclass
class T2UConfig:
    phones: list[str] = field(default_factory=lambda: [SILENCE])  # id = index + 1; 0 = pad
    n_units: int = 50
    hidden: int = 96
    heads: int = 2
    ffn: int = 256
    encoder_layers: int = 2
    decoder_layers: int = 2
    kernel: int = 3
    dropout: float = 0.1
    max_len: int = 4096


def _stack(c: T2UConfig, n: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(c.hidden, c.heads, c.ffn, c.dropout, batch_first=True,
                                       norm_first=True, activation="gelu")
    return nn.TransformerEncoder(layer, n, enable_nested_tensor=False)


def length_regulate(h: torch.Tensor, durations: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat phone states by their durations: h (B, P, H), durations (B, P) int >= 0 ->
    (frames (B, F, H) zero-padded, lengths (B,) = durations.sum(1))."""
    lengths = durations.sum(1)
    out = h.new_zeros(h.shape[0], max(int(lengths.max()), 1), h.shape[2])
    for b in range(h.shape[0]):
        rep = torch.repeat_interleave(h[b], durations[b].clamp(min=0), dim=0)
        out[b, : rep.shape[0]] = rep
    return out, lengths


class T2UModel(ModelDir, nn.Module):
    TYPE = T2U_TYPE
    CONFIG = T2UConfig
    TRAIN_HINT = "spokenlm joint t2u train"

    def __init__(self, config: T2UConfig) -> None:
        super().__init__()
        c = self.config = config
        self.index = {p: i + 1 for i, p in enumerate(c.phones)}
        self.phone_emb = nn.Embedding(len(c.phones) + 1, c.hidden, padding_idx=0)
        self.enc_pos = nn.Embedding(c.max_len, c.hidden)
        self.encoder = _stack(c, c.encoder_layers)
        self.enc_norm = nn.LayerNorm(c.hidden)
        self.dur_conv = nn.ModuleList(nn.Conv1d(c.hidden, c.hidden, c.kernel,
                                                padding=c.kernel // 2) for _ in range(2))
        self.dur_norm = nn.ModuleList(nn.LayerNorm(c.hidden) for _ in range(2))
        self.dur_out = nn.Linear(c.hidden, 1)
        self.dec_pos = nn.Embedding(c.max_len, c.hidden)
        self.decoder = _stack(c, c.decoder_layers)
        self.dec_norm = nn.LayerNorm(c.hidden)
        self.out = nn.Linear(c.hidden, c.n_units)

    def phone_ids(self, phones: Sequence[str], source: str = "<text>") -> list[int]:
        missing = sorted({p for p in phones if p not in self.index})
        if missing:
            raise InputError(f"{source}: phones {missing} are unknown to the text-to-unit "
                             f"model; retrain it (`spokenlm joint t2u train`) on data with them")
        return [self.index[p] for p in phones]

    def encode(self, ids: torch.Tensor, plen: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
        """ids (B, P) -> (phone states (B, P, H), log-duration predictions (B, P))."""
        pad = padding_mask(plen, ids.shape[1])
        x = self.phone_emb(ids) + self.enc_pos(torch.arange(ids.shape[1], device=ids.device))
        h = self.enc_norm(self.encoder(x, src_key_padding_mask=pad))
        d = h.masked_fill(pad[..., None], 0.0)
        for conv, norm in zip(self.dur_conv, self.dur_norm):
            d = F.relu(norm(conv(d.transpose(1, 2)).transpose(1, 2)))
        return h, self.dur_out(d).squeeze(-1).masked_fill(pad, 0.0)

    def decode(self, h: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """Phone states (B, P, H) + durations (B, P) -> (unit logits (B, F, K), frames (B,))."""
        x, lengths = length_regulate(h, durations)
        x = x + self.dec_pos(torch.arange(x.shape[1], device=x.device))
        pad = padding_mask(lengths, x.shape[1])
        return self.out(self.dec_norm(self.decoder(x, src_key_padding_mask=pad))), lengths

    def loss(self, ids: torch.Tensor, plen: torch.Tensor, durations: torch.Tensor,
             units: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss with ground-truth durations (teacher forcing of the length
        regulator): MSE on log(1 + d) + unit cross-entropy. units (B, F) (-100: pad)."""
        h, log_d = self.encode(ids, plen)
        valid = ~padding_mask(plen, ids.shape[1])
        dur = F.mse_loss(log_d[valid], torch.log1p(durations[valid].float()))
        logits, lengths = self.decode(h, durations)
        n = min(logits.shape[1], units.shape[1])
        sel = ~padding_mask(lengths, n)
        ce, acc = masked_ce(logits[:, :n], units[:, :n], sel)
        return {"loss": ce + dur, "unit_ce": ce, "duration_mse": dur,
                "unit_acc": torch.tensor(acc)}

    @torch.no_grad()
    def predict_durations(self, ids: torch.Tensor, plen: torch.Tensor,
                          scale: float = 1.0) -> torch.Tensor:
        """(B, P) -> durations (B, P) int64, >= 1 on real phones, 0 on padding."""
        _, log_d = self.encode(ids, plen)
        d = torch.clamp(torch.round((torch.exp(log_d) - 1) * scale), min=1).long()
        return d.masked_fill(padding_mask(plen, ids.shape[1]), 0)

    @torch.no_grad()
    def generate(self, phone_lists: Sequence[Sequence[str]], scale: float = 1.0
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Phone lists -> [(frame units (sum d,) int64, durations (P,) int64)] per text;
        ``sil`` is added at both ends as in training."""
        was = self.training
        self.eval()
        dev = self.out.weight.device
        seqs = [self.phone_ids([SILENCE, *p, SILENCE]) for p in phone_lists]
        plen = torch.tensor([len(s) for s in seqs], device=dev)
        ids = torch.zeros(len(seqs), int(plen.max()), dtype=torch.long, device=dev)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
        h, _ = self.encode(ids, plen)
        dur = self.predict_durations(ids, plen, scale)
        logits, lengths = self.decode(h, dur)
        units = logits.argmax(-1).cpu().numpy()
        self.train(was)
        return [(units[b, : int(lengths[b])], dur[b, : int(plen[b])].cpu().numpy())
                for b in range(len(seqs))]

    # --- files ---------------------------------------------------------------------------
