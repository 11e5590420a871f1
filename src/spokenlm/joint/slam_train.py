"""``spokenlm joint slam train``: SLAM pretraining (w2v-BERT + text MLM + TLM + STM).

Each step: w2v-BERT on an equal-length crop batch of unlabelled speech, span-masked
character MLM on unpaired text (grammar with ``--text-seed`` or ``--text-file``; the
speech's transcripts are removed) and, when alignment losses are on, TLM and STM on a batch
of the paired manifest (``--paired-manifest``, rows with ``text``). Schedules (the paper's
two): ``all`` uses every loss from step 0; ``staged`` trains the unsupervised losses alone
for ``--alignment-start`` steps, then adds TLM and STM. ``--no-tlm`` / ``--no-stm`` are the
paper's ablations. The w2v-BERT targets default to a frozen random hash of fixed log-mel
frames with a learned codebook (BEST-RQ-like): w2v-BERT's learned quantiser over the conv
features (``--no-frozen-code-assignment --code-input conv``) collapsed to one code within
~150 steps of a 1200-step run at laptop scale; watch ``code_ppl`` in ``log.jsonl``.
Run dir: ``checkpoints/``, ``log.jsonl``, ``final/`` (SLAM dir +
``vocab.json``; fine-tune with ``spokenlm asr train --encoder joint --encoder-path final``),
``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..asr.ctc_train import CTCBatches
from ..audio.constants import SAMPLE_RATE
from ..audio.load import row_num_samples
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log
from ..ssl.data import CropBatches
from ..ssl.masking import span_mask
from ..tokenize.encoders.base import num_frames
from .blocks import text_span_mask
from .data import TEXT_SEED, TextBatches, char_vocab, speech_batch, text_char_ids, \
    unpaired_text
from .loop import LoopSettings, device_of, step_generator, train_loop
from .losses import stm_negatives
from .slam import SLAMConfig, SLAMModel


@dataclass
class SLAMTrainOptions:
    manifest: Path = arg(positional=True, help="speech manifest (unlabelled audio)")
    output: Path = arg(help="run dir (checkpoints/, log.jsonl, final/)")
    paired_manifest: Path | None = arg(None, help="paired speech+text manifest for TLM/STM")
    schedule: Literal["all", "staged"] = arg("all", help="all losses from the start, or "
                                             "unsupervised first then alignment losses")
    alignment_start: int = arg(500, help="(staged) step at which TLM/STM start")
    tlm: bool = arg(True, help="translation LM on paired data")
    stm: bool = arg(True, help="speech-text matching on paired data")
    text_file: Path | None = arg(None, help="unpaired text, one sentence per line")
    text_sentences: int = arg(2000, help="unpaired sentences (from the grammar when no file)")
    text_seed: int = arg(TEXT_SEED, help="grammar seed of the unpaired text")
    hidden: int = arg(96, help="model width")
    heads: int = arg(4, help="attention heads")
    speech_layers: int = arg(2, help="speech conformer layers (contrastive module)")
    shared_layers: int = arg(2, help="shared conformer layers (MLM module)")
    conv_dim: int = arg(64, help="conv front-end channels")
    code_entries: int = arg(64, help="quantiser codebook entries (= MLM classes)")
    quantizer_grad: bool = arg(False, help="let the quantiser's gradient reach the conv "
                               "encoder (wav2vec 2.0 does; at small scale the codes collapse)")
    frozen_code_assignment: bool = arg(True, help="freeze the quantiser's logit projection "
                                       "(codes: a fixed random hash of --code-input; the "
                                       "codebook still learns). --no-frozen-code-assignment "
                                       "--code-input conv is w2v-BERT's learned quantiser, "
                                       "which collapsed to one code at laptop scale")
    code_input: Literal["conv", "logmel"] = arg("logmel", help="quantiser input: fixed "
                                                "log-mel frames, or the conv features")
    mask_prob: float = arg(0.65, help="speech span-mask probability")
    mask_length: int = arg(10, help="speech span length in frames")
    text_mask_prob: float = arg(0.15, help="text span-mask probability")
    text_mask_length: int = arg(3, help="text span length (characters)")
    text_weight: float = arg(1.0, help="text MLM loss weight")
    batch_size: int = arg(8, help="speech utterances per step")
    text_batch_size: int = arg(8, help="text sentences per step")
    paired_batch_size: int = arg(4, help="pairs per step")
    max_seconds: float = arg(4.0, help="longest unpaired speech crop (s)")
    max_paired_seconds: float = arg(6.0, help="paired utterances longer than this are skipped")
    lr: float = arg(5e-4, help="peak learning rate")
    warmup_steps: int = arg(100, help="linear warmup steps")
    max_steps: int = arg(1000, help="optimizer steps")
    tau_anneal_fraction: float = arg(0.7, help="Gumbel temperature reaches its minimum after "
                                     "this share of --max-steps (wav2vec 2.0: ~0.7)")
    dropout: float = arg(0.0, help="dropout")
    device: str = arg("auto", help="auto, cpu, cuda, ...")
    seed: int = arg(0, help="seed of init, batches and masks")
    log_every: int = arg(10, help="steps between log lines")
    save_every: int = arg(200, help="steps between checkpoints")
    resume: bool = arg(True, help="continue from checkpoints/latest when present")


def frame_placeholders(rows: list[dict]) -> dict[str, np.ndarray]:
    """``id`` -> zeros (F,) frame labels (the crop loader's label slot; SLAM's targets are
    its own quantiser's codes)."""
    out = {}
    for r in rows:
        n = row_num_samples(r, SAMPLE_RATE)
        out[r["id"]] = np.zeros(num_frames(n), dtype=np.int64)
    return out


def alignment_active(opts: SLAMTrainOptions, step: int) -> bool:
    """Whether TLM/STM run at ``step`` under the schedule."""
    if opts.paired_manifest is None or not (opts.tlm or opts.stm):
        return False
    return opts.schedule == "all" or step >= opts.alignment_start


@command("joint slam train", SLAMTrainOptions)
def train_slam(opts: SLAMTrainOptions) -> Path:
    """SLAM pretraining (w2v-BERT, text MLM, TLM, STM); returns final/."""
    torch.manual_seed(opts.seed)
    opts.output.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(opts.manifest)
    paired = [r for r in read_manifest(opts.paired_manifest) if r.get("text")
              and float(r.get("duration") or 0) <= opts.max_paired_seconds] \
        if opts.paired_manifest else []
    if opts.paired_manifest and not paired:
        raise InputError(f"{opts.paired_manifest}: no row with text of at most "
                         f"{opts.max_paired_seconds} s; add transcripts or raise "
                         f"--max-paired-seconds")
    text_rows = unpaired_text(opts.text_sentences, opts.text_seed, opts.text_file,
                              exclude=[r.get("text", "") for r in rows + paired])
    vocab = char_vocab([r["text"] for r in text_rows + paired])
    chars = text_char_ids(text_rows, vocab)
    text = TextBatches(chars, chars, opts.text_batch_size, opts.seed, 500)
    speech = CropBatches(rows, frame_placeholders(rows), opts.batch_size,
                         int(opts.max_seconds * SAMPLE_RATE), opts.seed, opts.manifest)
    pairs = (CTCBatches(paired, vocab, opts.paired_batch_size, opts.seed,
                        opts.paired_manifest) if paired else None)
    cfg = SLAMConfig(vocab_size=len(vocab), hidden=opts.hidden, heads=opts.heads,
                     ffn=4 * opts.hidden, conv_dim=opts.conv_dim,
                     speech_layers=opts.speech_layers, shared_layers=opts.shared_layers,
                     code_entries=opts.code_entries, quantizer_grad=opts.quantizer_grad,
                     frozen_code_assignment=opts.frozen_code_assignment,
                     code_input=opts.code_input,
                     dropout=opts.dropout)
    device = device_of(LoopSettings(device=opts.device))
    model = SLAMModel(cfg).to(device)

    def step_fn(step: int) -> dict[str, torch.Tensor]:
        g = step_generator(opts.seed, step)
        model.quantizer.set_step(step, opts.max_steps, opts.tau_anneal_fraction)
        wav, lab = speech_batch(speech, step)
        mask = span_mask([lab.shape[1]] * len(wav), opts.mask_prob, opts.mask_length,
                         seed=(opts.seed, 7, step))
        out = model.speech_loss(wav.to(device), None, mask.to(device), g)
        ids, lens, _ = text.batch(step)
        tmask = text_span_mask(lens.tolist(), opts.text_mask_prob, opts.text_mask_length,
                               seed=(opts.seed, 8, step), max_len=ids.shape[1])
        t = model.text_loss(ids.to(device), lens.to(device), tmask.to(device), g)
        loss = out["loss"] + opts.text_weight * t["loss"]
        parts = {**out, **t}
        if pairs is not None and alignment_active(opts, step):
            n = len(pairs.epoch_batches(0))
            idx = pairs.epoch_batches(step // n)[step % n]
            pw, pl, targets = pairs.load(idx)
            pids = torch.zeros(len(idx), max(len(x) for x in targets), dtype=torch.long)
            for b, x in enumerate(targets):
                pids[b, : len(x)] = torch.tensor(x)
            plens = torch.tensor([len(x) for x in targets])
            pw, pl, pids, plens = pw.to(device), pl.to(device), pids.to(device), plens.to(device)
            if opts.tlm:
                nf = [num_frames(int(x)) for x in pl]
                sm = span_mask(nf, opts.mask_prob, opts.mask_length, seed=(opts.seed, 9, step))
                tm = text_span_mask(plens.tolist(), opts.text_mask_prob, opts.text_mask_length,
                                    seed=(opts.seed, 10, step), max_len=pids.shape[1])
                tl = model.tlm_loss(pw, pl, pids, plens, sm.to(device), tm.to(device), g)
                loss, parts = loss + tl["loss"], {**parts, **tl}
            if opts.stm:
                neg = stm_negatives([paired[i]["text"] for i in idx], g)
                st = model.stm_loss(pw, pl, pids, plens, neg)
                loss, parts = loss + st["loss"], {**parts, **st}
        return {**parts, "loss": loss}

    log(f"joint slam train ({opts.schedule}{'' if opts.tlm else ', no TLM'}"
        f"{'' if opts.stm else ', no STM'}): {len(speech.rows)} utterances, {len(paired)} "
        f"pairs, {len(text_rows)} unpaired sentences, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
    settings = LoopSettings(max_steps=opts.max_steps, lr=opts.lr, warmup_steps=opts.warmup_steps,
                            log_every=opts.log_every, save_every=opts.save_every,
                            resume=opts.resume, device=opts.device)
    metrics = train_loop(model, step_fn, opts.output, settings, "slam")
    final = model.cpu().save_pretrained(opts.output / "final")
    vocab.save(final / "vocab.json")
    write_json(opts.output / "metrics.json", {"metric": "slam_train", **metrics,
                                              "options": stored_fields(
                                                  opts, opts.output / "metrics.json")})
    log(f"SLAM written to {final}; fine-tune with `spokenlm asr train --encoder joint "
        f"--encoder-path {final}`")
    return final
