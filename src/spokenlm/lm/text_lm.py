"""``spokenlm lm pretrain-text``: pretrain a small text LM, the starting point of a TWIST warm
start (``spokenlm lm train --init-from <output>/final``).

The text is split by a word- or character-level :class:`TextTokenizer` of our own (the point
is the transformer blocks, not the text vocabulary), written as packed ids in the same format
as speech units, and trained by :func:`spokenlm.lm.train.train_lm`, so the model is a LLaMA
of the same size presets as the unit LM and the run resumes the same way. Layout::

    <output>/data/text.jsonl         one row per sentence: id, text, units (token ids)
    <output>/data/text.{bin,idx.npy,meta.json}   the packed ids
    <output>/run/                    the train_lm run dir (checkpoints/, log.jsonl, ...)
    <output>/final/                  plain HF LlamaForCausalLM dir + text_tokenizer.json
                                     (no spokenlm_lm.json: it is a text LM, not a unit LM)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..common.errors import InputError
from ..common.files import atomic_dir, iter_jsonl, write_jsonl
from ..common.options import arg, command
from ..common.paths import ArtifactKind
from ..common.progress import log
from ..training import TrainerOptions
from .model import META_FILE
from .text_tokenizer import TOKENIZER_FILE, UNK, TextTokenizer  # noqa: F401  (re-exported)
from .train import LM_TRAINER

TEXT_LM_KIND = ArtifactKind("text LM", (TOKENIZER_FILE,))


def read_text(path: Path) -> list[str]:
    """Sentences of a text file (one a line), a JSONL with ``text`` fields (an audio
    manifest), or a synthetic corpus dir (the ``text`` of its ``train.jsonl``)."""
    if path.is_dir():
        if not (path / "train.jsonl").exists():
            raise InputError(f"{path}: a directory without train.jsonl; pass a text file (one "
                             "sentence a line) or a synthetic corpus dir")
        path = path / "train.jsonl"
    if not path.exists():
        raise InputError(f"{path}: text not found; pass a text file or a corpus dir")
    if path.suffix == ".jsonl":
        lines = [r.get("text") or "" for r in iter_jsonl(path)]
    else:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    lines = [x.strip() for x in lines if x.strip()]
    if not lines:
        raise InputError(f"{path}: no text in it (manifest rows need a `text` field)")
    return lines


@dataclass
class TextLMOptions:
    text: Path = arg(positional=True, help="text file (one sentence a line), JSONL with "
                     "`text` fields, or a synthetic corpus dir (its train.jsonl transcripts)")
    output: Path = arg(help="output dir (data/, run/, final/ = the text LM for --init-from)")
    extra_sentences: int = arg(0, help="add this many sentences from spokenlm's grammar "
                               "(text the speech corpus does not contain)")
    extra_seed: int = arg(1, help="grammar seed of --extra-sentences (use one the corpus "
                          "did not use)")
    level: Literal["word", "char"] = arg("word", help="tokenizer: words or characters")
    min_count: int = arg(1, help="rarer symbols become <unk>")
    size: Literal["tiny", "small", "base", "350m", "1b"] = arg("small", help="LLaMA preset, "
                                                               "as for `lm train`")
    seq_len: int = arg(256, help="tokens per training sequence")
    batch_size: int = arg(16, help="sequences per micro-batch, over all processes")
    valid_fraction: float = arg(0.02, help="held-out share of sentences")
    trainer: TrainerOptions = arg(LM_TRAINER.replace(max_steps=1000), help="training loop "
                                  "options, as for `lm train`")


@command("lm pretrain-text", TextLMOptions)
def pretrain_text_lm(opts: TextLMOptions) -> Path:
    """Train a small LLaMA text LM to warm-start a unit LM from (TWIST).

    Trained on ``opts.text``; returns ``<output>/final``, a plain HF causal LM dir that
    ``spokenlm lm train --init-from`` warm-starts from."""
    from ..data.grammar import generate_sentences
    from ..tokenize.pack import pack_units
    from .train import train_lm

    lines = read_text(opts.text)
    if opts.extra_sentences > 0:
        seen = set(lines)
        extra = [s for s in generate_sentences(opts.extra_sentences, seed=opts.extra_seed)
                 if s not in seen]
        log(f"{len(extra)} grammar sentences added to {len(lines)} of {opts.text}")
        lines += extra
    tok = TextTokenizer.fit(lines, opts.level, opts.min_count)
    data = opts.output / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i:07d}", "text": t, "units": tok.encode(t)} for i, t in enumerate(lines)]
    write_jsonl(data / "text.jsonl", [r for r in rows if r["units"]])
    tok.save(data / TOKENIZER_FILE)
    prefix = pack_units(data / "text.jsonl", n_units=len(tok))
    log(f"text LM data: {len(rows)} sentences, {len(tok)} {opts.level} symbols")
    final = train_lm(units=prefix, output=opts.output / "run", size=opts.size,
                     seq_len=opts.seq_len, batch_size=opts.batch_size,
                     valid_fraction=opts.valid_fraction, trainer=opts.trainer)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 exports
        return opts.output / "final"
    return export_text_lm(final, tok, opts.output / "final")


def export_text_lm(run_final: Path, tok: TextTokenizer, out: Path) -> Path:
    """Copy the trained model files to ``out`` without ``spokenlm_lm.json`` (so --init-from
    sees a text LM), with the text tokenizer beside them; atomic."""
    with atomic_dir(out, TEXT_LM_KIND) as tmp:
        for f in run_final.iterdir():
            if f.is_file() and f.name != META_FILE:
                shutil.copy2(f, tmp / f.name)
        tok.save(tmp / TOKENIZER_FILE)
    log(f"text LM written to {out}")
    return out
