"""``UnitLM``: a Hugging Face causal LM over discrete units, plus the metadata that maps units
to token ids (``spokenlm_lm.json``).

The directory is a plain HF model directory (``AutoModelForCausalLM.from_pretrained`` loads
it), so any causal LM architecture works; models trained here are LLaMA (see ``config.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ..audio.framing import Framing
from ..common.errors import ArtifactError
from ..common.files import atomic_dir, read_json, write_json
from ..common.hub import local_or_hub
from ..common.paths import ArtifactKind, resolve_path, store_path
from .config import LMConfig, build_llama_config, special_ids
from .score import LogLik, log_likelihood
from .sampling import SamplingOptions, generate

META_FILE = "spokenlm_lm.json"
LM_KIND = ArtifactKind("unit LM", (META_FILE,))
META_KEYS = ("n_units", "unit_offset", "bos_id", "eos_id", "pad_id")


class UnitLM:
    """A causal LM whose vocabulary holds units at ``unit_offset + u`` and BOS/EOS/PAD."""

    def __init__(self, model: torch.nn.Module, n_units: int, *, unit_offset: int = 0,
                 bos_id: int | None = None, eos_id: int | None = None,
                 pad_id: int | None = None, tokenizer: str | None = None,
                 frame_rate: float | None = None, add_bos: bool = True) -> None:
        ids = special_ids(n_units, unit_offset)
        self.model = model
        self.n_units = int(n_units)
        self.unit_offset = int(unit_offset)
        self.bos_id = int(ids["bos_id"] if bos_id is None else bos_id)
        self.eos_id = int(ids["eos_id"] if eos_id is None else eos_id)
        self.pad_id = int(ids["pad_id"] if pad_id is None else pad_id)
        self.tokenizer = None if tokenizer is None else str(tokenizer)
        #: frames per second of the units it models (None: not recorded, read as 50 Hz)
        self.frame_rate = None if frame_rate is None else float(frame_rate)
        #: whether sequences start with BOS (False for TWIST, fed units alone)
        self.add_bos = bool(add_bos)
        #: "twist" / "slam" for a released checkpoint loaded as it is, else None
        self.release: str | None = None
        self._check_vocab(source="UnitLM(...)")

    # ---- construction, saving, loading -------------------------------------------------
    @classmethod
    def build(cls, n_units: int, cfg: LMConfig | str = "tiny", *, seed: int | None = 0,
              tokenizer: str | None = None) -> UnitLM:
        """A freshly initialised LLaMA over ``n_units`` units (deterministic for a seed)."""
        from transformers import LlamaForCausalLM

        cfg = LMConfig.named(cfg) if isinstance(cfg, str) else cfg
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = LlamaForCausalLM(build_llama_config(n_units, cfg))
        model.generation_config.bos_token_id = model.config.bos_token_id
        model.generation_config.eos_token_id = model.config.eos_token_id
        model.generation_config.pad_token_id = model.config.pad_token_id
        return cls(model, n_units, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> UnitLM:
        """Load a unit LM dir (HF model files + ``spokenlm_lm.json``), or a hub id."""
        from transformers import AutoModelForCausalLM

        path = local_or_hub(path, "unit LM")
        if not path.is_dir():
            raise ArtifactError(f"{path}: unit LM directory not found; train one with "
                                "`spokenlm lm train` or pass the run's final/ folder")
        meta_path = path / META_FILE
        if not meta_path.exists():
            from .released import load_released

            released = load_released(path, device=device, dtype=dtype)
            if released is not None:
                return released
            raise ArtifactError(
                f"{path}: no {META_FILE}, so this is not a spokenlm unit LM dir (a plain HF "
                "text LM needs a warm start first: `spokenlm lm train --init-from TEXT_LM_DIR`); "
                "pass a dir written by `spokenlm lm train`")
        meta = read_json(meta_path)
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ArtifactError(f"{meta_path}: missing keys {missing}; re-save the LM with "
                                "UnitLM.save_pretrained")
        if not (path / "config.json").exists():
            raise ArtifactError(f"{path}: no config.json; the model files are missing or the "
                                "save was interrupted: use the last checkpoint instead")
        try:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True,
                                                         dtype=dtype or "auto")
        except (OSError, ValueError) as e:
            raise ArtifactError(f"{path}: cannot load the HF model ({e}); the dir is corrupt "
                                "or from an incompatible version") from e
        lm = cls.__new__(cls)
        lm.model = model.to(device).eval()
        lm.n_units, lm.unit_offset = int(meta["n_units"]), int(meta["unit_offset"])
        lm.bos_id, lm.eos_id, lm.pad_id = (int(meta[k]) for k in ("bos_id", "eos_id", "pad_id"))
        tokenizer = resolve_path(meta.get("tokenizer") or None, meta_path)
        lm.tokenizer = None if tokenizer is None else str(tokenizer)
        lm.frame_rate = None if meta.get("frame_rate") is None else float(meta["frame_rate"])
        lm.add_bos, lm.release = bool(meta.get("add_bos", True)), None
        lm._check_vocab(source=str(path))
        return lm

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the LM dir atomically: into a temporary sibling, then renamed over ``path``."""
        with atomic_dir(path, LM_KIND) as tmp:
            self.write_files(tmp)
        return Path(path)

    @contextlib.contextmanager
    def exporting(self, state_dict: dict[str, torch.Tensor] | None) -> Iterator[None]:
        """Within it, :meth:`write_files` writes ``state_dict`` (the whole model gathered
        from an FSDP-sharded one) instead of the model's own tensors; None: its own."""
        self._export_state = state_dict
        try:
            yield
        finally:
            self._export_state = None

    def write_files(self, path: Path) -> None:
        """Write the HF model files and ``spokenlm_lm.json`` into the existing dir ``path``."""
        from transformers.utils import logging as hf_logging

        enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # one-shard "Writing model shards" bars are noise
        try:
            self.model.save_pretrained(path, safe_serialization=True,
                                       state_dict=getattr(self, "_export_state", None))
        finally:
            if enabled:
                hf_logging.enable_progress_bar()
        meta = path / META_FILE  # the tokenizer relative to it within <run>/<lm run>/final
        write_json(meta, {**self.metadata(),
                          "tokenizer": store_path(self.tokenizer, meta, levels=2)})

    def metadata(self) -> dict[str, Any]:
        return {"n_units": self.n_units, "unit_offset": self.unit_offset, "bos_id": self.bos_id,
                "eos_id": self.eos_id, "pad_id": self.pad_id, "tokenizer": self.tokenizer,
                "frame_rate": self.frame_rate, "add_bos": self.add_bos}

    @property
    def framing(self) -> Framing:
        """The frame rate of the units this LM models (50 Hz when not recorded)."""
        return Framing.from_json({"frame_rate": self.frame_rate}, "unit LM")

    # ---- vocabulary ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> UnitLM:
        self.model.to(device)
        return self

    def _check_vocab(self, source: str) -> None:
        need = max(self.unit_offset + self.n_units, self.bos_id + 1, self.eos_id + 1,
                   self.pad_id + 1)
        if self.vocab_size < need:
            raise ArtifactError(
                f"{source}: tokenizer and LM have mismatched vocabularies: {self.n_units} units "
                f"at offset {self.unit_offset} plus BOS/EOS/PAD need {need} token ids but the "
                f"model's embedding has {self.vocab_size}; retrain the LM for this tokenizer")

    def check_tokenizer(self, n_units: int | str | os.PathLike) -> None:
        """Raise unless a tokenizer with ``n_units`` units (or a tokenizer dir) fits this LM."""
        source = "tokenizer"
        if not isinstance(n_units, int):
            source = str(n_units)
            n_units = int(read_json(Path(n_units) / "config.json")["n_units"])
        if n_units != self.n_units:
            raise ArtifactError(
                f"{source}: tokenizer and LM have mismatched vocabularies: the tokenizer has "
                f"{n_units} units, the LM was trained on {self.n_units} units "
                f"(tokenizer recorded by the LM: {self.tokenizer}); use the tokenizer the LM "
                "was trained with, or retrain the LM on units from this tokenizer")

    def to_tokens(self, units: Sequence[int], add_bos: bool = True,
                  add_eos: bool = False) -> list[int]:
        """Unit ids -> token ids (offset added, optional BOS/EOS); checks the unit range.
        LMs trained without BOS (``self.add_bos`` False: TWIST) never get one."""
        out = [self.bos_id] if add_bos and self.add_bos else []
        for u in units:
            u = int(u)
            if not 0 <= u < self.n_units:
                raise ValueError(f"unit {u} is outside [0, {self.n_units}); the units come "
                                 "from a different tokenizer than this LM's")
            out.append(u + self.unit_offset)
        if add_eos:
            out.append(self.eos_id)
        return out

    def to_units(self, tokens: Sequence[int]) -> list[int]:
        """Token ids -> unit ids, dropping every non-unit token."""
        lo, hi = self.unit_offset, self.unit_offset + self.n_units
        return [int(t) - lo for t in tokens if lo <= int(t) < hi]

    # ---- scoring and sampling (implemented in score.py / sampling.py) -------------------
    def log_likelihood(self, seqs: Sequence[Sequence[int]], batch_tokens: int | None = None,
                       add_bos: bool = True, add_eos: bool = False) -> list[LogLik]:
        """Log-probability of each unit sequence; batched by a token budget, input order kept."""
        return log_likelihood(self, seqs, batch_tokens=batch_tokens, add_bos=add_bos,
                              add_eos=add_eos)

    def generate(self, prompts: Sequence[Sequence[int]], sampling: SamplingOptions | None = None,
                 *, batch_size: int = 64, **overrides: Any) -> list[list[int]]:
        """Continue each unit prompt; returns only the new units, drawn as ``sampling`` says
        (default :class:`~spokenlm.lm.sampling.SamplingOptions`; loose keywords such as
        ``temperature=0`` replace its fields). See :func:`~spokenlm.lm.sampling.generate`."""
        return generate(self, prompts, sampling, batch_size=batch_size, **overrides)
