"""``spokenlm joint speechlm train``: SpeechLM-P or SpeechLM-H pretraining.

Speech side: equal-length crops of the manifest's audio with frame units — P: frame phones
from ``spokenlm asr align`` (``--alignments``); H: k-means units of ``--target-encoder``
features (MFCC, or an SSL model's layer). Text side: unpaired sentences (``--text-file`` or
the grammar with ``--text-seed``; transcripts of the speech are removed) turned into frame
units — P: espeak-ng phones repeated by durations sampled from the alignments; H: the
text-to-unit model (``--t2u``, from ``spokenlm joint t2u train``). Run dir::

    targets/            (H) tokenizer + frame units of the manifest
    text_units.jsonl    unpaired text with its units (reused on rerun)
    checkpoints/, log.jsonl
    final/              SpeechLM dir + vocab.json + speech_encoder/ (HubertModel for
                        `spokenlm asr train --encoder hubert --encoder-path .../speech_encoder`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.manifest import read_manifest
from ..common.errors import InputError
from ..common.files import read_json, read_jsonl, write_json, write_jsonl
from ..common.options import arg, command
from ..data.phoneme_units import DurationModel, phone_inventory
from ..data.phonemes import split_phones
from ..ssl.data import CropBatches
from ..ssl.targets import TargetSpec, load_labels, make_targets
from ..training import Env, fit, init
from .data import (TextBatches, alignment_labels, char_vocab, hidden_unit_rows,
                   phoneme_unit_rows, text_char_ids)
from .loop import JointRecipe, speech_shard, step_generator, text_shard, write_final
from .pretrain_options import SpeechTextOptions
from .speechlm import SpeechLMConfig, SpeechLMModel


@dataclass
class SpeechLMTrainOptions(SpeechTextOptions):
    manifest: Path = arg(positional=True, help="speech manifest (unlabelled audio)")
    output: Path = arg(help="run dir (targets/, text_units.jsonl, checkpoints/, final/)")
    variant: Literal["P", "H"] = arg("P", help="P: phoneme units, H: hidden units")
    alignments: Path | None = arg(None, help="(P) `spokenlm asr align` JSONL of the manifest")
    t2u: Path | None = arg(None, help="(H) text-to-unit model dir (`spokenlm joint t2u train`)")
    target_encoder: str = arg("mfcc", help="(H) features clustered for speech units")
    target_encoder_path: Path | None = arg(None, help="(H) SSL model dir for the targets")
    target_layer: int = arg(6, help="(H) layer of --target-encoder-path")
    n_clusters: int = arg(50, help="(H) k-means units")
    targets: Path | None = arg(None, help="(H) tokenizer dir to use instead of fitting one "
                               "(must be the one the t2u model was trained on)")
    layers: int = arg(4, help="total transformer layers L (L/2 speech + L/2 shared)")
    mask_prob: float = arg(0.65, help="speech span-mask probability (HuBERT 0.65)")
    text_mask_prob: float = arg(0.3, help="text-unit span-mask probability")
    text_mask_length: int = arg(10, help="text-unit span length in frames")
    swap_prob: float = arg(0.1, help="random swapping probability (0 disables)")
    uctc_weight: float = arg(0.1, help="UCTC loss weight (paper: 0.1)")
    max_seconds: float = arg(4.0, help="longest speech crop (s)")
    max_text_frames: int = arg(600, help="longest text-unit sequence (frames)")


def _units(opts: SpeechLMTrainOptions, rows: list[dict], text_rows: list[dict]
           ) -> tuple[dict, list[dict], int]:
    """(speech frame labels by id, text rows with units, unit vocabulary size)."""
    if opts.variant == "P":
        if opts.alignments is None:
            raise InputError("SpeechLM-P needs frame phones of the speech: pass --alignments "
                             "(from `spokenlm asr align`), or use --variant H")
        ali = read_jsonl(opts.alignments)
        inventory = phone_inventory([a["phones"] for a in ali]
                                    + [split_phones(r["phonemes"]) for r in text_rows])
        write_json(opts.output / "phone_inventory.json", inventory)
        durations = DurationModel.fit(ali)
        return (alignment_labels(ali, inventory),
                phoneme_unit_rows(text_rows, durations, inventory, opts.trainer.seed),
                len(inventory))
    if opts.t2u is None:
        raise InputError("SpeechLM-H needs a text-to-unit model: pass --t2u DIR (from "
                         "`spokenlm joint t2u train`), or use --variant P")
    from .t2u import T2UModel

    spec = TargetSpec(opts.target_encoder, opts.target_encoder_path, opts.target_layer,
                      opts.n_clusters, seed=opts.trainer.seed, device=opts.trainer.device)
    tok, (lab,) = make_targets([opts.manifest], opts.output / "targets", spec, opts.targets)
    t2u = T2UModel.from_pretrained(opts.t2u)
    n_units = int(read_json(Path(tok) / "config.json")["n_units"])
    if t2u.config.n_units > n_units:
        raise InputError(f"{opts.t2u}: predicts {t2u.config.n_units} units but the speech "
                         f"tokenizer {tok} has {n_units}; pass --targets with the t2u's "
                         f"tokenizer")
    return load_labels(lab), hidden_unit_rows(text_rows, t2u), n_units


class SpeechLMRecipe(JointRecipe):
    """UMLM on masked speech crops + UCTC on masked text units, drawn by (seed, step)."""

    def __init__(self, model: SpeechLMModel, speech: CropBatches, text: TextBatches,
                 opts: SpeechLMTrainOptions, env: Env) -> None:
        super().__init__(f"speechlm-{opts.variant}", model, env)
        self.speech, self.text, self.opts = speech, text, opts

    def shard(self, step: int, shard: int, n_shards: int) -> Any:
        o, seed = self.opts, self.opts.trainer.seed
        wav, lab, mask = speech_shard(self.speech, step, shard, n_shards, o.mask_prob,
                                      o.mask_length, seed)
        ids, lens, chars, tmask = text_shard(self.text, step, shard, n_shards,
                                             o.text_mask_prob, o.text_mask_length, seed)
        return wav, lab, mask, ids, lens, tmask, chars, shard

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> dict[str, Any]:
        wav, lab, mask, ids, lens, tmask, chars, shard = batch
        d = self.env.device
        g = step_generator(self.opts.trainer.seed, step, shard)
        out = model.umlm_loss(wav.to(d), lab.to(d), mask.to(d), None, g)  # type: ignore
        u = model.uctc_loss(ids.to(d), lens.to(d), tmask.to(d), chars)  # type: ignore
        return {**out, **u, "loss": out["loss"] + self.opts.uctc_weight * u["loss"]}


@command("joint speechlm train", SpeechLMTrainOptions)
def train_speechlm(opts: SpeechLMTrainOptions) -> Path:
    """SpeechLM pretraining (UMLM + UCTC + random swapping); returns final/."""
    t, env = opts.trainer, init(opts.trainer)
    torch.manual_seed(t.seed)
    opts.output.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(opts.manifest)
    text_rows = opts.unpaired_text([r.get("text", "") for r in rows])
    labels, unit_rows, n_units = env.first(lambda: _cached_units(opts, rows, text_rows))
    vocab = char_vocab([r["text"] for r in unit_rows] + [r["text"] for r in rows
                                                        if r.get("text")])
    text = TextBatches([r["units"] for r in unit_rows], text_char_ids(unit_rows, vocab),
                       opts.text_batch_size, t.seed, opts.max_text_frames)
    speech = CropBatches(rows, labels, opts.batch_size, int(opts.max_seconds * SAMPLE_RATE),
                         t.seed, opts.manifest)
    if opts.layers < 2:
        raise InputError(f"--layers {opts.layers}: SpeechLM needs at least 2 (L/2 + L/2)")
    cfg = SpeechLMConfig(n_units=n_units, n_chars=len(vocab),
                         **opts.trunk(opts.layers // 2, opts.layers - opts.layers // 2),
                         swap_prob=opts.swap_prob, uctc_weight=opts.uctc_weight,
                         variant=opts.variant)
    model = SpeechLMModel(cfg)
    env.log(f"joint speechlm train ({opts.variant}): {len(speech.rows)} utterances, "
            f"{len(unit_rows)} unpaired sentences, {n_units} units, {len(vocab)} characters")
    result = fit(SpeechLMRecipe(model, speech, text, opts, env), t, env, opts.output,
                 record=opts)
    final = write_final(model, result, opts, env, "speechlm_train", vocab)
    env.log(f"SpeechLM-{opts.variant} written to {final}; fine-tune with `spokenlm asr train "
            f"--encoder hubert --encoder-path {final / 'speech_encoder'}`")
    return final


def _cached_units(opts: SpeechLMTrainOptions, rows: list[dict], text_rows: list[dict]
                  ) -> tuple[dict, list[dict], int]:
    """:func:`_units`, the text's units kept in ``text_units.jsonl`` (reused on rerun)."""
    labels, unit_rows, n_units = _units(opts, rows, text_rows)
    cache = opts.output / "text_units.jsonl"
    if cache.exists():
        unit_rows = read_jsonl(cache)
    else:
        write_jsonl(cache, unit_rows)
    return labels, unit_rows, n_units
