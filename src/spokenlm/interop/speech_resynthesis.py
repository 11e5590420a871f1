"""speech-resynthesis / textlesslib / fairseq unit HiFi-GAN <-> spokenlm ``hifigan`` vocoder.

The original generator (``CodeGenerator`` in facebookresearch/speech-resynthesis and
fairseq's ``codehifigan.py``, used by textlesslib) is saved by its trainer as
``torch.save({"generator": state_dict}, "g_XXXXXXXX")`` next to the training
``config.json`` (``num_embeddings``, ``embedding_dim``, ``model_in_dim``,
``upsample_rates``, ``upsample_kernel_sizes``, ``upsample_initial_channel``, ``resblock``,
``resblock_kernel_sizes``, ``resblock_dilation_sizes``, ``multispkr``,
``dur_predictor_params``, ``f0``, ...). Its layers are spokenlm's
:class:`~spokenlm.vocoder.hifigan.UnitHifiGan` layers under other names:

=============================================  ==============================================
original key                                   spokenlm key
=============================================  ==============================================
``dict.weight``                                ``embedding.weight``
``spkr.weight`` (multispkr)                    ``speaker_embedding.weight``
``dur_predictor.conv1.0`` / ``ln1``            ``duration.convs.0`` / ``duration.norms.0``
``dur_predictor.conv2.0`` / ``ln2`` / ``proj`` ``duration.convs.1`` / ``norms.1`` / ``proj``
``<conv>.weight_g`` / ``<conv>.weight_v``      ``<conv>.parametrizations.weight.original0/1``
``f0_dict.weight`` (F0 quantizer)              ``f0.embedding.weight``
``quantizer.<key>`` (F0 quantizer)             ``f0.quantizer.<key>``
=============================================  ==============================================

(``<conv>``: ``conv_pre``, ``ups.N``, ``resblocks.N.convs1.M`` / ``convs2.M`` / ``convs.M``,
``conv_post``; a generator saved after ``remove_weight_norm`` has plain ``<conv>.weight``,
split here into norm and direction.) F0-conditioned generators (``"f0": true``, raw F0 or
through the F0 VQ-VAE of ``f0_quantizer_path``) are imported with their F0 options and
stats (:mod:`.speech_resynthesis_f0`); generators with a jointly trained F0 VQ
(``lambda_commit``), VQ-VAE code inputs (``lambda_commit_code``) or a speaker embedder
(``embedder_params``) are refused with a clear error::

    spokenlm interop vocoder-import g_00500000 --config config.json --output vocoder-hubert100
    spokenlm interop vocoder-import g_00400000 --config hubert100_lut.json \
        --f0-quantizer lj_f0_vq/g_00400000 --f0-stats f0_stats.pth --output vocoder-lj-f0
    spokenlm interop vocoder-export vocoder-hubert100 --output hifigan-original/
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..audio.constants import HOP_LENGTH, SAMPLE_RATE
from ..common.errors import InputError
from ..common.files import atomic_path, read_json, write_json
from ..common.options import arg, command
from ..common.progress import log
from ..vocoder.base import load_vocoder
from ..vocoder.hifigan import UnitHifiGan
from .speech_resynthesis_f0 import (F0_INVERSE_MAP, F0_KEY_MAP, describe, f0_config,
                                    f0_hop_and_channels, original_f0_fields, read_state,
                                    write_f0_files)

_CONV = r"(conv_pre|conv_post|ups\.\d+|resblocks\.\d+\.convs[12]?\.\d+)"
#: (original name, spokenlm name) of each generator tensor; ``{conv}`` stands for any conv
#: of the generator, ``{param}`` for weight or bias
TENSOR_NAMES: list[tuple[str, str]] = [
    ("dict.weight", "embedding.weight"),
    ("spkr.weight", "speaker_embedding.weight"),
    ("dur_predictor.conv1.0.{param}", "duration.convs.0.{param}"),
    ("dur_predictor.ln1.{param}", "duration.norms.0.{param}"),
    ("dur_predictor.conv2.0.{param}", "duration.convs.1.{param}"),
    ("dur_predictor.ln2.{param}", "duration.norms.1.{param}"),
    ("dur_predictor.proj.{param}", "duration.proj.{param}"),
    ("{conv}.bias", "{conv}.bias"),
    ("{conv}.weight_g", "{conv}.parametrizations.weight.original0"),
    ("{conv}.weight_v", "{conv}.parametrizations.weight.original1"),
]


def _key_map(names: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(regex of the first name, replacement giving the second) for :func:`_rename`."""
    def pattern(name: str) -> str:
        return re.escape(name).replace(r"\{conv\}", _CONV).replace(r"\{param\}", "(weight|bias)")

    return [(pattern(a), b.replace("{conv}", r"\1").replace("{param}", r"\1")) for a, b in names]


#: original key regex -> spokenlm key (weight-normed conv weights handled separately)
KEY_MAP: list[tuple[str, str]] = [*_key_map(TENSOR_NAMES), *F0_KEY_MAP]
#: config keys of generator inputs spokenlm does not have -> what they are
_UNSUPPORTED = {
    "lambda_commit": "an F0 VQ trained inside the generator (import generators whose F0 "
                     "quantizer is a separate f0_quantizer_path, or raw-F0 ones)",
    "lambda_commit_code": "VQ-VAE code inputs instead of unit ids (the vqvae256 configs)",
    "embedder_params": "a speaker embedder network instead of a speaker-id table",
}


def _rename(state: dict[str, torch.Tensor], table: list[tuple[str, str]]
            ) -> tuple[dict[str, torch.Tensor], list[str]]:
    compiled = [(re.compile(p + r"\Z"), r) for p, r in table]
    out, unknown = {}, []
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value.float()
                break
        else:
            unknown.append(key)
    return out, unknown


def _split_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain ``<conv>.weight`` (weight norm removed) -> ``weight_g`` (norm over all dims
    but 0, as ``weight_norm(dim=0)``) and ``weight_v``."""
    out = {}
    for key, value in state.items():
        if re.fullmatch(_CONV + r"\.weight", key):
            out[key[:-len("weight")] + "weight_g"] = value.pow(2).sum(
                dim=tuple(range(1, value.dim())), keepdim=True).sqrt()
            out[key[:-len("weight")] + "weight_v"] = value
        else:
            out[key] = value
    return out


def _refuse_unsupported(h: dict[str, Any], source: str) -> None:
    if "f0_encoder_params" in h and "num_embeddings" not in h:
        raise InputError(f"{source}: this is an F0 VQ-VAE config (train_f0_vq.py), not a unit "
                         f"generator's; import the generator and pass this quantizer's "
                         f"g_XXXXXXXX with --f0-quantizer")
    bad = {k: why for k, why in _UNSUPPORTED.items() if h.get(k)}
    if bad:
        raise InputError(f"{source}: this generator has inputs spokenlm's HiFi-GAN does not "
                         f"have: " + "; ".join(f"{k} ({why})" for k, why in bad.items()))


def spokenlm_config(h: dict[str, Any], state: dict[str, torch.Tensor], source: str,
                    f0: dict[str, Any] | None = None) -> dict[str, Any]:
    """spokenlm ``hifigan`` config from an original ``config.json``, generator weights and
    the ``"f0"`` block (:func:`.speech_resynthesis_f0.f0_config`, None without F0)."""
    _refuse_unsupported(h, source)
    if h.get("f0") and f0 is None:
        raise InputError(f"{source}: an F0-conditioned generator; build its F0 block with "
                         f"speech_resynthesis_f0.f0_config (load_resynthesis_generator does)")
    if int(h.get("sampling_rate", SAMPLE_RATE)) != SAMPLE_RATE:
        raise InputError(f"{source}: sampling_rate={h.get('sampling_rate')}; spokenlm "
                         f"vocoders work at {SAMPLE_RATE} Hz")
    code_hop = int(h.get("code_hop_size", HOP_LENGTH))
    if f0 is not None and code_hop != HOP_LENGTH:
        raise InputError(f"{source}: an F0-conditioned generator with code_hop_size={code_hop}"
                         f"; spokenlm imports F0 generators for {HOP_LENGTH}-sample (50 Hz) "
                         f"units only")
    required = ["num_embeddings", "embedding_dim", "upsample_rates", "upsample_kernel_sizes",
                "upsample_initial_channel", "resblock_kernel_sizes", "resblock_dilation_sizes"]
    missing = [k for k in required if k not in h]
    if missing:
        raise InputError(f"{source}: missing {missing}; pass the config.json the generator "
                         f"was trained with (--config)")
    dim = int(h["embedding_dim"])
    f0_hop, f0_channels = f0_hop_and_channels(f0, dim)
    hop = f0_hop or code_hop
    if math.prod(h["upsample_rates"]) != hop:
        why = ("a raw-F0 generator runs at the 200 Hz F0 rate, " if f0_hop == 80 else "")
        raise InputError(f"{source}: upsample_rates {h['upsample_rates']} multiply to "
                         f"{math.prod(h['upsample_rates'])}; {why}spokenlm needs {hop} "
                         f"samples per generator step (16 kHz audio, code_hop_size={code_hop})")
    n_speakers = int(state["spkr.weight"].shape[0]) if "spkr.weight" in state else 0
    in_dim = dim * (2 if n_speakers else 1) + f0_channels
    if int(h.get("model_in_dim", in_dim)) != in_dim:
        raise InputError(f"{source}: model_in_dim={h['model_in_dim']} is not embedding_dim "
                         f"+ F0 ({f0_channels}) + speaker embedding ({dim if n_speakers else 0})"
                         f" = {in_dim}; other extra conditioning is not supported")
    dur = h.get("dur_predictor_params") or {}
    has_dur = "dur_predictor.proj.weight" in state
    if has_dur and int(dur.get("var_pred_kernel_size", 3)) != 3:
        raise InputError(f"{source}: duration predictor kernel "
                         f"{dur['var_pred_kernel_size']}; spokenlm's predictor uses 3")
    cfg = {
        "n_units": int(h["num_embeddings"]), "embedding_dim": dim,
        "speakers": [str(i) for i in range(n_speakers)],
        "upsample_rates": list(h["upsample_rates"]),
        "upsample_kernel_sizes": list(h["upsample_kernel_sizes"]),
        "upsample_initial_channel": int(h["upsample_initial_channel"]),
        "resblock": str(h.get("resblock", "1")),
        "resblock_kernel_sizes": list(h["resblock_kernel_sizes"]),
        "resblock_dilation_sizes": [list(d) for d in h["resblock_dilation_sizes"]],
        "duration_predictor": has_dur,
        "duration_hidden": int(state["dur_predictor.proj.weight"].shape[1]) if has_dur else 128,
        "disc_channel_div": 1, "size": "imported", "hop_length": code_hop,
    }
    if f0 is not None:
        cfg["f0"] = f0
    return cfg


def load_resynthesis_generator(checkpoint: str | os.PathLike,
                               config: str | os.PathLike | None = None,
                               f0_quantizer: str | os.PathLike | None = None,
                               f0_stats: str | os.PathLike | None = None,
                               f0_fallback: str = "mean") -> UnitHifiGan:
    """Build a spokenlm :class:`UnitHifiGan` from an original ``g_XXXXXXXX`` + config.json.

    ``config`` defaults to ``config.json`` beside the checkpoint. F0 generators also need
    the F0 quantizer weights (when the generator lacks them; default: the config's
    ``f0_quantizer_path``) and, with ``f0_normalize``, the ``f0_stats`` file (default: the
    config's). Files are read with ``torch.load(weights_only=True)`` (no code runs).
    """
    checkpoint = Path(checkpoint)
    config = Path(config) if config is not None else checkpoint.parent / "config.json"
    if not checkpoint.is_file():
        raise InputError(f"{checkpoint}: generator checkpoint not found (g_XXXXXXXX)")
    if not config.is_file():
        raise InputError(f"{config}: not found; pass the generator's training config with "
                         f"--config")
    h = read_json(config)
    _refuse_unsupported(h, str(config))
    state = _split_weight_norm(read_state(checkpoint, "generator"))
    f0, extra = f0_config(h, state, config, None if f0_quantizer is None else Path(f0_quantizer),
                          None if f0_stats is None else Path(f0_stats), f0_fallback)
    state.update(extra)
    cfg = spokenlm_config(h, state, str(config), f0)
    renamed, unknown = _rename(state, KEY_MAP)
    try:
        model = UnitHifiGan(cfg)
        if unknown:
            raise RuntimeError(f"unexpected keys {unknown[:6]}")
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise InputError(f"{checkpoint}: weights do not fit {config} ({detail}); pass the "
                         f"matching config.json") from e
    return model.eval()


def original_checkpoint(model: UnitHifiGan) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(generator state dict under original key names, original-style config.json)."""
    inverse = [*_key_map([(b, a) for a, b in TENSOR_NAMES]), *F0_INVERSE_MAP]
    state, unknown = _rename(model.state_dict(), inverse)
    if unknown:
        raise InputError(f"vocoder has tensors with no original counterpart: {unknown[:6]}")
    c = model.config
    dim, n_spk = int(c["embedding_dim"]), len(c.get("speakers") or [])
    f0_channels = 0 if model.f0 is None else model.f0.channels + model.f0.extra_channels
    h = {"resblock": str(c.get("resblock", "1")), "upsample_rates": c["upsample_rates"],
         "upsample_kernel_sizes": c["upsample_kernel_sizes"],
         "upsample_initial_channel": c["upsample_initial_channel"],
         "resblock_kernel_sizes": c["resblock_kernel_sizes"],
         "resblock_dilation_sizes": c["resblock_dilation_sizes"],
         "num_embeddings": model.n_units, "embedding_dim": dim,
         "model_in_dim": dim * (2 if n_spk else 1) + f0_channels, "sampling_rate": SAMPLE_RATE,
         "code_hop_size": model.hop_length, **original_f0_fields(model),
         "multispkr": bool(n_spk)}
    if n_spk:
        h["num_speakers"] = n_spk
    if model.duration is not None:
        h["dur_prediction_weight"] = 1.0
        h["dur_predictor_params"] = {"encoder_embed_dim": dim, "var_pred_hidden_dim": int(
            c.get("duration_hidden", 128)), "var_pred_kernel_size": 3, "var_pred_dropout": 0.5}
    return state, h


@dataclass
class VocoderImportOptions:
    checkpoint: Path = arg(positional=True, help="original generator checkpoint (g_XXXXXXXX)")
    config: Path | None = arg(None, help="its training config.json (default: beside it)")
    output: Path = arg(Path("vocoder"), help="spokenlm vocoder directory to write")
    f0_quantizer: Path | None = arg(None, help="F0 quantizer g_XXXXXXXX, when the generator "
                                               "does not carry its weights (default: the "
                                               "config's f0_quantizer_path)")
    f0_stats: Path | None = arg(None, help="F0 stats file (default: the config's f0_stats)")
    f0_fallback: Literal["mean", "error"] = arg(
        "mean", help="F0 vocoders given no F0 (units-only synthesis): speak on a flat "
                     "contour at the speaker's mean F0, or raise an error")
    overwrite: bool = arg(False, help="replace --output even when it is a non-empty folder "
                                      "that is not a vocoder (its files are deleted)")


@command("interop vocoder-import", VocoderImportOptions)
def import_vocoder(opts: VocoderImportOptions) -> Path:
    """Import a speech-resynthesis / fairseq unit HiFi-GAN as a spokenlm vocoder directory."""
    model = load_resynthesis_generator(opts.checkpoint, opts.config, opts.f0_quantizer,
                                       opts.f0_stats, opts.f0_fallback)
    if model.duration is not None and model.speakers:
        log("note: the original duration predictor sees unit embeddings only; spokenlm adds "
            "the speaker embedding when a speaker is given, so pass durations or no speaker "
            "for the original's durations")
    out = model.save_pretrained(opts.output, overwrite=opts.overwrite)
    log(f"imported {opts.checkpoint} -> {out} ({model.n_units} units, "
        f"{len(model.speakers)} speakers, duration predictor: {model.duration is not None}, "
        f"{describe(model)})")
    return out


@dataclass
class VocoderExportOptions:
    vocoder: Path = arg(positional=True, help="spokenlm hifigan vocoder directory")
    output: Path = arg(Path("hifigan-original"), help="folder for g_00000000 + config.json "
                                                      "(+ F0 quantizer and stats)")


@command("interop vocoder-export", VocoderExportOptions)
def export_vocoder(opts: VocoderExportOptions) -> Path:
    """Export a spokenlm HiFi-GAN as a speech-resynthesis generator (g_00000000 + config).

    F0 vocoders also get ``f0_quantizer/g_00000000`` and ``f0_stats.pth``."""
    model = load_vocoder(opts.vocoder)
    if not isinstance(model, UnitHifiGan):
        raise InputError(f"{opts.vocoder}: a {model.type!r} vocoder; only 'hifigan' vocoders "
                         f"have the speech-resynthesis format")
    state, h = original_checkpoint(model)
    opts.output.mkdir(parents=True, exist_ok=True)
    h.update(write_f0_files(model, state, opts.output))
    with atomic_path(opts.output / "g_00000000") as tmp:
        torch.save({"generator": state}, tmp)
    write_json(opts.output / "config.json", h)
    return opts.output
