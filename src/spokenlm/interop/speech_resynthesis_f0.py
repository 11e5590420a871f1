"""The F0 parts of speech-resynthesis generator import / export (``"f0": true`` configs).

An F0-conditioned ``CodeGenerator`` has, beyond the units-only one:

- ``f0_dict.weight`` (F0 code embedding) and ``quantizer.*`` (the F0 VQ-VAE: ``encoder``,
  ``vq``, ``decoder``) when the config names ``f0_quantizer_path`` + ``f0_quantizer``
  params. The trainer saves the quantizer inside the generator state (it is a submodule),
  and the original also loads it from ``f0_quantizer_path`` (``torch.save({"generator":
  quantizer_state}, ...)``, keys without the ``quantizer.`` prefix). The generator's own
  copy wins, as in the original (``load_state_dict`` runs after); the separate file is read
  only when the generator has none;
- F0 options ``f0_normalize`` / ``f0_median`` / ``f0_interp`` / ``f0_feats`` and the
  ``f0_stats`` file, which spokenlm copies into the vocoder's config so that the vocoder
  directory is self-contained (:class:`~spokenlm.vocoder.f0_norm.F0Config`);
- the F0 tracker: speech-resynthesis trains on YAAPT F0 (``get_yaapt_f0``), so an imported
  vocoder's config says ``"tracker": "yaapt"`` and resynthesis extracts the source's F0 with
  :mod:`spokenlm.vocoder.f0_yaapt` (``--f0 yin`` overrides it, faster but less voiced).

Relative paths in a config (``checkpoints/lj_f0_vq/g_00400000``, relative to the
speech-resynthesis checkout the trainer ran in) are looked up beside the config, in its
parent folders, then in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..common.errors import InputError
from ..common.files import atomic_path, write_json
from ..common.progress import log
from ..vocoder.f0 import VOCODER_F0_TRACKER
from ..vocoder.f0_norm import F0Config, load_f0_stats
from ..vocoder.f0_quantizer import check_quantizer_params, downsampling
from ..vocoder.hifigan import UnitHifiGan

#: original key regex -> spokenlm key, for the F0 tensors
F0_KEY_MAP: list[tuple[str, str]] = [(r"f0_dict\.weight", "f0.embedding.weight"),
                                     (r"quantizer\.(.+)", r"f0.quantizer.\1")]
F0_INVERSE_MAP: list[tuple[str, str]] = [(r"f0\.embedding\.weight", "f0_dict.weight"),
                                         (r"f0\.quantizer\.(.+)", r"quantizer.\1")]
QUANTIZER_DIR = "f0_quantizer"
STATS_NAME = "f0_stats.pth"


def read_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The ``"generator"`` state dict of a speech-resynthesis ``g_XXXXXXXX`` file (read with
    ``torch.load(weights_only=True)``: tensors only, no code runs)."""
    if not path.is_file():
        raise InputError(f"{path}: {what} checkpoint not found (g_XXXXXXXX)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: not a readable torch checkpoint ({e})") from e
    state = ckpt.get("generator") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"{path}: no 'generator' state dict (is it a do_XXXXXXXX "
                         f"discriminator file?); pass the g_XXXXXXXX file")
    return state


def find_file(value: str, config: Path, what: str, flag: str) -> Path:
    """A path named in ``config``: as given when absolute, else beside the config, in its
    parent folders, or in the working directory."""
    path = Path(value)
    tried = [path] if path.is_absolute() else \
        [d / path for d in [config.parent, *config.parent.parents][:4]] + [Path.cwd() / path]
    for p in tried:
        if p.is_file():
            return p
    raise InputError(f"{config}: {what} {value!r} not found (looked at "
                     f"{', '.join(str(p) for p in tried)}); pass it with {flag} PATH")


def f0_config(h: dict[str, Any], state: dict[str, torch.Tensor], config: Path,
              f0_quantizer: Path | None = None, f0_stats: Path | None = None,
              fallback: str = "mean") -> tuple[dict[str, Any] | None, dict[str, torch.Tensor]]:
    """(spokenlm ``"f0"`` config block or None, quantizer tensors to add to ``state``)."""
    if not h.get("f0"):
        if h.get("f0_quantizer_path"):
            raise InputError(f"{config}: f0_quantizer_path is set but f0 is not; the original "
                             f"refuses that too (set \"f0\": true)")
        if f0_quantizer is not None or f0_stats is not None:
            raise InputError(f"{config}: this generator is not F0-conditioned (f0 is false); "
                             f"drop --f0-quantizer / --f0-stats")
        return None, {}
    quantizer, extra = None, {}
    if h.get("f0_quantizer_path"):
        check_quantizer_params(h.get("f0_quantizer"), f"{config}: f0_quantizer")
        quantizer = h["f0_quantizer"]
        if any(k.startswith("quantizer.") for k in state):
            if f0_quantizer is not None:
                log(f"note: {f0_quantizer} not used: the generator checkpoint carries its own "
                    f"F0 quantizer weights (the original loads those over the file too)")
        else:
            path = f0_quantizer or find_file(h["f0_quantizer_path"], config,
                                             "f0_quantizer_path", "--f0-quantizer")
            extra = {f"quantizer.{k}": v for k, v in read_state(path, "F0 quantizer").items()}
    elif f0_quantizer is not None:
        raise InputError(f"{config}: no f0_quantizer_path, so this generator takes raw F0; "
                         f"drop --f0-quantizer")
    normalize = bool(h.get("f0_normalize"))
    stats = None
    if f0_stats is not None:
        stats = load_f0_stats(f0_stats)
    elif h.get("f0_stats"):
        try:
            stats = load_f0_stats(find_file(h["f0_stats"], config, "f0_stats", "--f0-stats"))
        except InputError:
            if normalize:
                raise
            log(f"note: {config}: f0_stats {h['f0_stats']!r} not found; F0 is fed in Hz, so "
                f"it is only needed for the no-F0 fallback contour")
    if normalize and stats is None:
        raise InputError(f"{config}: f0_normalize is set but no f0_stats file is named; pass "
                         f"the stats the generator was trained with (--f0-stats PATH)")
    cfg = F0Config(quantizer=quantizer, normalize=normalize, median=bool(h.get("f0_median")),
                   interp=bool(h.get("f0_interp")),
                   feats=bool(h.get("f0_feats")) and normalize,  # the dataset adds them then
                   stats=stats, fallback=fallback)  # type: ignore[arg-type]
    return {**cfg.to_json(), "tracker": VOCODER_F0_TRACKER}, extra


def f0_hop_and_channels(f0: dict[str, Any] | None, dim: int) -> tuple[int | None, int]:
    """(samples per generator input step, or None for units-only; F0 input channels incl.
    the two ``f0_feats`` ones) of an F0 config block."""
    if not f0:
        return None, 0
    extra = 2 if f0.get("feats") else 0
    if f0.get("quantizer") is None:
        return 80, 1 + extra
    return min(320, 80 * downsampling(f0["quantizer"]["f0_encoder_params"])), dim + extra


def original_f0_fields(model: UnitHifiGan) -> dict[str, Any]:
    """The F0 fields of an original config.json for ``model`` (paths added on export)."""
    if model.f0 is None:
        return {"f0": False}
    c = model.f0.config
    h: dict[str, Any] = {"f0": True, "f0_normalize": c.normalize, "f0_median": c.median,
                         "f0_interp": c.interp, "f0_feats": c.feats}
    if c.quantizer is not None:
        h["f0_quantizer"] = c.quantizer
    return h


def write_f0_files(model: UnitHifiGan, state: dict[str, torch.Tensor], out: Path
                   ) -> dict[str, str]:
    """Write the F0 quantizer checkpoint (``f0_quantizer/g_00000000`` + its config) and
    ``f0_stats.pth`` beside an exported generator; return the config fields naming them
    (absolute paths, as the original opens them from its working directory)."""
    if model.f0 is None:
        return {}
    fields: dict[str, str] = {}
    c = model.f0.config
    if c.stats is not None:
        with atomic_path(out / STATS_NAME) as tmp:
            torch.save(c.stats.to_original(), tmp)
        fields["f0_stats"] = str((out / STATS_NAME).resolve())
    if c.quantizer is not None:
        q = {k[len("quantizer."):]: v for k, v in state.items() if k.startswith("quantizer.")}
        (out / QUANTIZER_DIR).mkdir(parents=True, exist_ok=True)
        with atomic_path(out / QUANTIZER_DIR / "g_00000000") as tmp:
            torch.save({"generator": q}, tmp)
        write_json(out / QUANTIZER_DIR / "config.json",
                   {**c.quantizer, "f0_normalize": c.normalize, "f0_median": c.median,
                    "f0_interp": c.interp, "f0_feats": c.feats, **fields,
                    "sampling_rate": 16000})
        fields["f0_quantizer_path"] = str((out / QUANTIZER_DIR / "g_00000000").resolve())
    return fields


def describe(model: UnitHifiGan) -> str:
    """A few words on the F0 conditioning, for the import log."""
    if model.f0 is None:
        return "no F0"
    c = model.f0.config
    kind = "quantized F0" if c.quantizer is not None else "raw F0"
    opts = [n for n in ("normalize", "median", "interp", "feats") if getattr(c, n)]
    return (f"{kind} ({', '.join(opts) or 'Hz'}; no-F0 fallback: {c.fallback}; "
            f"source F0 by {model.f0.tracker})")
