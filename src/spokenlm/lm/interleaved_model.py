"""An interleaved speech-text LM: a :class:`~spokenlm.lm.model.UnitLM` that also reads and
writes the text of the text LM it was warm-started from.

Built from a text LM by the TWIST warm start with the text vocabulary kept
(:func:`~spokenlm.lm.twist.warm_start` ``keep_text_vocab=True``: text ids ``0..V-1`` keep
their trained rows, units at ``V..V+K-1``, BOS/EOS/PAD after them) plus two new rows for the
modality markers ``[TEXT]`` / ``[SPEECH]`` (the mean text embedding plus small noise, as the
warm start's ``mean`` init; see :mod:`spokenlm.lm.interleave` for the layout).

The directory is a unit LM dir (HF files + ``spokenlm_lm.json``: any unit-LM reader can
score and continue speech with it) plus::

    spokenlm_interleave.json   the interleaved vocabulary, the text LM it started from
    text_tokenizer/            that text LM's tokenizer (spokenlm's or Hugging Face's)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..common.errors import ArtifactError, InputError
from ..common.files import read_json, write_json
from ..common.paths import resolve_path, store_path
from .interleave import InterleavedVocab
from .model import META_FILE, UnitLM
from .text_codec import TextCodec
from .twist import MEAN_INIT_NOISE, Init, is_text_lm_dir, warm_start

SIDECAR = "spokenlm_interleave.json"
TEXT_TOKENIZER_DIR = "text_tokenizer"


class InterleavedLM(UnitLM):
    """A unit LM whose vocabulary also holds text tokens and the two modality markers."""

    vocab: InterleavedVocab
    codec: TextCodec
    text_lm: str | None

    @classmethod
    def wrap(cls, lm: UnitLM, vocab: InterleavedVocab, codec: TextCodec,
             text_lm: str | os.PathLike | None) -> InterleavedLM:
        """``lm`` (same model object) as an interleaved LM; checks the id layout agrees."""
        got = (lm.unit_offset, lm.n_units, lm.bos_id, lm.eos_id, lm.pad_id)
        want = (vocab.unit_offset, vocab.n_units, vocab.bos_id, vocab.eos_id, vocab.pad_id)
        if got != want or lm.vocab_size < vocab.vocab_size:
            raise ArtifactError(f"unit LM ids (offset, units, BOS, EOS, PAD) {got} with "
                                f"{lm.vocab_size} rows do not match the interleaved "
                                f"vocabulary {want} of {vocab.vocab_size}; train it with "
                                f"`spokenlm lm train --interleave`")
        out = cls.__new__(cls)
        out.__dict__.update(lm.__dict__)
        out.vocab, out.codec = vocab, codec
        out.text_lm = None if text_lm is None else str(text_lm)
        return out

    def write_files(self, path: Path) -> None:
        super().write_files(path)
        self.codec.save(path / TEXT_TOKENIZER_DIR)
        sidecar = path / SIDECAR
        write_json(sidecar, {**self.vocab.to_json(), "text_tokenizer": TEXT_TOKENIZER_DIR,
                             "text_tokenizer_kind": self.codec.kind,
                             "fingerprint": self.codec.fingerprint(),
                             "text_lm": store_path(self.text_lm, sidecar, levels=2)})

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> InterleavedLM:
        """Load an interleaved LM dir (written by ``lm train --interleave``)."""
        path = Path(path)
        sidecar = path / SIDECAR
        if not sidecar.is_file():
            raise ArtifactError(f"{path}: no {SIDECAR}, so not an interleaved speech-text LM; "
                                f"train one with `spokenlm lm train --interleave` on "
                                f"`spokenlm lm interleave-data` output")
        lm = UnitLM.from_pretrained(path, device=device, dtype=dtype)
        meta = read_json(sidecar)
        vocab = InterleavedVocab.from_json(meta, str(sidecar))
        codec = TextCodec.load(path / meta.get("text_tokenizer", TEXT_TOKENIZER_DIR),
                               text_vocab=vocab.text_vocab)
        text_lm = resolve_path(meta.get("text_lm"), sidecar)
        return cls.wrap(lm, vocab, codec, text_lm)

    def text_allowed(self) -> list[int]:
        """Token ids a text continuation may draw (the tokenizer's, less its specials)."""
        banned = set(self.codec.not_generated())
        return [i for i in range(min(self.codec.n_symbols, self.vocab.text_vocab))
                if i not in banned]


def is_interleaved_lm_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / SIDECAR).is_file() and (Path(path) / META_FILE).is_file()


def build_interleaved_lm(init_from: Path | None, meta: dict[str, Any], source: str, *,
                         init: Init = "mean", seed: int = 0,
                         tokenizer: str | None = None) -> InterleavedLM:
    """The model ``lm train --interleave`` starts from, for packed data with ``meta``.

    ``init_from``: the data's text LM (warm start, text vocabulary kept, marker rows added)
    or an interleaved LM dir of the same vocabulary (continue training it).
    """
    info = meta.get("interleaved")
    if not isinstance(info, dict):
        raise InputError(f"{source}: not interleaved data; write it with `spokenlm lm "
                         f"interleave-data` or drop --interleave")
    vocab = InterleavedVocab.from_json(info, source)
    data_text_lm = resolve_path(info.get("text_lm"), f"{source}.meta.json")
    if init_from is None:
        raise InputError(f"{source}: --interleave warm-starts from a text LM; pass --init-from "
                         f"{data_text_lm or 'TEXT_LM_DIR'} (the text LM the data was written "
                         f"for) or an interleaved LM dir")
    if is_interleaved_lm_dir(init_from):
        lm = InterleavedLM.from_pretrained(init_from)
        _check_same(lm.vocab, lm.codec, vocab, info, str(init_from), source)
        lm.tokenizer = tokenizer or lm.tokenizer
        return lm
    if not is_text_lm_dir(init_from):
        raise InputError(f"{init_from}: --interleave needs --init-from a Hugging Face text LM "
                         f"dir (the one the data was written for) or an interleaved LM dir")
    codec = TextCodec.load(init_from)
    _check_same(InterleavedVocab(codec.text_vocab, vocab.n_units), codec, vocab, info,
                str(init_from), source)
    lm = warm_start(init_from, vocab.n_units, init=init, keep_text_vocab=True, seed=seed,
                    tokenizer=tokenizer)
    add_marker_rows(lm.model, vocab, seed)
    return InterleavedLM.wrap(lm, vocab, codec, init_from)


def _check_same(got: InterleavedVocab, codec: TextCodec, want: InterleavedVocab, info: dict,
                model: str, data: str) -> None:
    if got != want:
        raise InputError(f"{model}: {got.text_vocab} text ids and {got.n_units} units, but the "
                         f"data {data} was written for {want.text_vocab} and {want.n_units}; "
                         f"pass the text LM the data was made with (`lm interleave-data "
                         f"--text-lm`)")
    if info.get("fingerprint") not in (None, codec.fingerprint()):
        raise InputError(f"{model}: its text tokenizer is not the one {data} was written with;"
                         f" pass the same text LM to `lm interleave-data` and `lm train`")


@torch.no_grad()
def add_marker_rows(model: Any, vocab: InterleavedVocab, seed: int = 0) -> None:
    """Grow the embedding (and an untied head) to ``vocab.vocab_size`` rows; the marker rows
    are the mean text row plus noise (``MEAN_INIT_NOISE`` x its std), as the warm start's
    ``mean`` init. The text and unit rows are left as they are."""
    emb = model.get_input_embeddings()
    tied = model.get_output_embeddings().weight is emb.weight
    start = int(emb.weight.shape[0])
    model.resize_token_embeddings(vocab.vocab_size, mean_resizing=False)
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    generator = torch.Generator().manual_seed(seed + 1)
    weights = [emb.weight] if tied else [emb.weight, head.weight]
    for w in weights:
        text = w[: vocab.text_vocab].float()
        noise = torch.randn((w.shape[0] - start, w.shape[1]), generator=generator)
        rows = text.mean(0, keepdim=True) + noise * (MEAN_INIT_NOISE * float(text.std()))
        w[start:] = rows.to(w.dtype)
    if not tied and getattr(head, "bias", None) is not None:
        head.bias[start:] = 0.0
    if getattr(emb, "padding_idx", None) is not None:
        emb.padding_idx = vocab.pad_id


def stream_offset(lm: UnitLM) -> int:
    """What the packed-data loader adds to stored ids: interleaved data holds the LM's own
    token ids (0), unit data holds units (``lm.unit_offset``)."""
    return 0 if isinstance(lm, InterleavedLM) else lm.unit_offset


def check_packed(meta: dict[str, Any], lm: UnitLM, source: str) -> None:
    """Raise unless packed data ``meta`` fits ``lm``: interleaved data of its vocabulary for
    an interleaved LM, unit data for a unit LM."""
    info = meta.get("interleaved")
    if not isinstance(lm, InterleavedLM):
        if info is not None:
            raise InputError(f"{source}: interleaved speech-text data; train on it with "
                             f"`spokenlm lm train --interleave`")
        return
    if not isinstance(info, dict):
        raise InputError(f"{source}: unit data, but --interleave trains on interleaved data; "
                         f"write it with `spokenlm lm interleave-data`")
    _check_same(InterleavedVocab.from_json(info, source), lm.codec, lm.vocab, info,
                source, "this run")
