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
from typing import Any, Literal

import numpy as np
import torch

from ..asr.batching import CTCBatches
from ..audio.constants import SAMPLE_RATE
from ..audio.load import row_num_samples
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.options import arg, command
from ..ssl.data import CropBatches
from ..ssl.masking import span_mask
from ..tokenize.encoders.base import num_frames
from ..training import Env, fit, init, shard_slice
from .blocks import text_span_mask
from .data import TextBatches, char_vocab, text_char_ids
from .loop import JointRecipe, speech_shard, step_generator, text_shard, write_final
from .losses import stm_negatives
from .pretrain_options import SpeechTextOptions
from .slam import SLAMConfig, SLAMModel


@dataclass
class SLAMTrainOptions(SpeechTextOptions):
    manifest: Path = arg(positional=True, help="speech manifest (unlabelled audio)")
    output: Path = arg(help="run dir (checkpoints/, log.jsonl, final/)")
    paired_manifest: Path | None = arg(None, help="paired speech+text manifest for TLM/STM")
    schedule: Literal["all", "staged"] = arg("all", help="all losses from the start, or "
                                             "unsupervised first then alignment losses")
    alignment_start: int = arg(500, help="(staged) step at which TLM/STM start")
    tlm: bool = arg(True, help="translation LM on paired data")
    stm: bool = arg(True, help="speech-text matching on paired data")
    speech_layers: int = arg(2, help="speech conformer layers (contrastive module)")
    shared_layers: int = arg(2, help="shared conformer layers (MLM module)")
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
    text_mask_prob: float = arg(0.15, help="text span-mask probability")
    text_mask_length: int = arg(3, help="text span length (characters)")
    text_weight: float = arg(1.0, help="text MLM loss weight")
    paired_batch_size: int = arg(4, help="pairs per step")
    max_seconds: float = arg(4.0, help="longest unpaired speech crop (s)")
    max_paired_seconds: float = arg(6.0, help="paired utterances longer than this are skipped")
    tau_anneal_fraction: float = arg(0.7, help="Gumbel temperature reaches its minimum after "
                                     "this share of --max-steps (wav2vec 2.0: ~0.7)")


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


class SLAMRecipe(JointRecipe):
    """w2v-BERT on speech crops, text MLM, and TLM/STM on pairs, drawn by (seed, step)."""

    unused_parameters = True  # the TLM/STM heads wait for --alignment-start

    def __init__(self, model: SLAMModel, speech: CropBatches, text: TextBatches,
                 pairs: CTCBatches | None, paired: list[dict], opts: SLAMTrainOptions,
                 env: Env) -> None:
        super().__init__("slam", model, env)
        self.speech, self.text, self.pairs, self.paired, self.opts = (speech, text, pairs,
                                                                      paired, opts)

    def shard(self, step: int, shard: int, n_shards: int) -> Any:
        o, seed = self.opts, self.opts.trainer.seed
        wav, _, mask = speech_shard(self.speech, step, shard, n_shards, o.mask_prob,
                                    o.mask_length, seed)
        ids, lens, _, tmask = text_shard(self.text, step, shard, n_shards, o.text_mask_prob,
                                         o.text_mask_length, seed, min_masks=1)  # SpanBERT
        batch = {"wav": wav, "mask": mask, "ids": ids, "lens": lens, "shard": shard,
                 "tmask": tmask}
        if self.pairs is not None and alignment_active(o, step):
            batch.update(self._pairs(step, shard, n_shards))
        return batch

    def _pairs(self, step: int, shard: int, n_shards: int) -> dict[str, Any]:
        """This shard's paired rows of ``step`` with their TLM masks (drawn for all rows)."""
        o, seed, pairs = self.opts, self.opts.trainer.seed, self.pairs
        assert pairs is not None
        n = len(pairs.epoch_batches(0))
        every = pairs.epoch_batches(step // n)[step % n]
        part = shard_slice(len(every), shard, n_shards, "--paired-batch-size")
        idx = every[part]
        pw, pl, targets = pairs.load(idx)
        pids = torch.zeros(len(idx), max(len(x) for x in targets), dtype=torch.long)
        for b, x in enumerate(targets):
            pids[b, : len(x)] = torch.tensor(x)
        plens = torch.tensor([len(x) for x in targets])
        out: dict[str, Any] = {"pw": pw, "pl": pl, "pids": pids, "plens": plens, "idx": idx}
        if o.tlm:
            samples = [pairs.length(i) for i in every]
            samples[part] = pl.tolist()
            tl_all = [len(pairs.targets[i]) for i in every]
            nf = [num_frames(int(x)) for x in samples]
            out["sm"] = span_mask(nf, o.mask_prob, o.mask_length, seed=(seed, 9, step),
                                  max_frames=max(nf))[part, :max(nf[part])]
            out["tm"] = text_span_mask(tl_all, o.text_mask_prob, o.text_mask_length,
                                       seed=(seed, 10, step), max_len=max(tl_all)
                                       )[part, :pids.shape[1]]
        return out

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> dict[str, Any]:
        o, d = self.opts, self.env.device
        assert isinstance(model, SLAMModel)
        g = step_generator(o.trainer.seed, step, batch["shard"])
        model.quantizer.set_step(step, o.trainer.max_steps or 1, o.tau_anneal_fraction)
        out = model.speech_loss(batch["wav"].to(d), None, batch["mask"].to(d), g)
        t = model.text_loss(batch["ids"].to(d), batch["lens"].to(d), batch["tmask"].to(d), g)
        loss = out["loss"] + o.text_weight * t["loss"]
        parts = {**out, **t}
        if "pw" in batch:
            pw, pl, pids, plens = (batch[k].to(d) for k in ("pw", "pl", "pids", "plens"))
            if o.tlm:
                tl = model.tlm_loss(pw, pl, pids, plens, batch["sm"].to(d), batch["tm"].to(d),
                                    g)
                loss, parts = loss + tl["loss"], {**parts, **tl}
            if o.stm:
                neg = stm_negatives([self.paired[i]["text"] for i in batch["idx"]], g)
                st = model.stm_loss(pw, pl, pids, plens, neg)
                loss, parts = loss + st["loss"], {**parts, **st}
        return {**parts, "loss": loss}


@command("joint slam train", SLAMTrainOptions)
def train_slam(opts: SLAMTrainOptions) -> Path:
    """SLAM pretraining (w2v-BERT, text MLM, TLM, STM); returns final/."""
    t, env = opts.trainer, init(opts.trainer)
    torch.manual_seed(t.seed)
    opts.output.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(opts.manifest)
    paired = [r for r in read_manifest(opts.paired_manifest) if r.get("text")
              and float(r.get("duration") or 0) <= opts.max_paired_seconds] \
        if opts.paired_manifest else []
    if opts.paired_manifest and not paired:
        raise InputError(f"{opts.paired_manifest}: no row with text of at most "
                         f"{opts.max_paired_seconds} s; add transcripts or raise "
                         f"--max-paired-seconds")
    text_rows = opts.unpaired_text([r.get("text", "") for r in rows + paired])
    vocab = char_vocab([r["text"] for r in text_rows + paired])
    chars = text_char_ids(text_rows, vocab)
    text = TextBatches(chars, chars, opts.text_batch_size, t.seed, 500)
    speech = CropBatches(rows, frame_placeholders(rows), opts.batch_size,
                         int(opts.max_seconds * SAMPLE_RATE), t.seed, opts.manifest)
    pairs = (CTCBatches(paired, vocab, opts.paired_batch_size, t.seed,
                        opts.paired_manifest) if paired else None)
    cfg = SLAMConfig(vocab_size=len(vocab), **opts.trunk(opts.speech_layers, opts.shared_layers),
                     code_entries=opts.code_entries, quantizer_grad=opts.quantizer_grad,
                     frozen_code_assignment=opts.frozen_code_assignment,
                     code_input=opts.code_input)
    model = SLAMModel(cfg)
    env.log(f"joint slam train ({opts.schedule}{'' if opts.tlm else ', no TLM'}"
            f"{'' if opts.stm else ', no STM'}): {len(speech.rows)} utterances, {len(paired)} "
            f"pairs, {len(text_rows)} unpaired sentences")
    result = fit(SLAMRecipe(model, speech, text, pairs, paired, opts, env), t, env,
                 opts.output, record=opts)
    final = write_final(model, result, opts, env, "slam_train", vocab)
    env.log(f"SLAM written to {final}; fine-tune with `spokenlm asr train --encoder joint "
            f"--encoder-path {final}`")
    return final
