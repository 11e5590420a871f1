"""The official spoken-LM benchmarks as their authors release them, each read from its own
folder layout and aggregated as its reference tool reports it.

- sLM21 lexical (sWUGGY): ``lexical/dev`` or ``lexical/test``, wavs + ``gold.csv``; and
  syntactic (sBLIMP): ``syntactic/dev|test``: the ZeroSpeech 2021 tools
  (:mod:`~spokenlm.eval.releases.slm21`);
- ProsAudit: wavs + ``gold.csv`` with types ``protosyntax`` / ``lexical``: the ZeroSpeech
  benchmarks' prosody task (same module);
- spoken / topic StoryCloze (TWIST): ``<n>_*.wav``: slamkit
  (:mod:`~spokenlm.eval.releases.storycloze`);
- SALMon: ``salmon_benchmark/<part>/sample_<i>_<j>.wav``: SALMon's ``salmon.py`` and slamkit
  (:mod:`~spokenlm.eval.releases.salmon`).

:func:`load_release` recognises a folder (the first format whose ``detect`` accepts it);
:func:`spokenlm.eval.benchmark.Benchmark.load` calls it, so every likelihood ``eval``
command reads these folders (and scores them its own way), while
:func:`~spokenlm.eval.releases.scoring.evaluate_release` scores them the reference way
(``spokenlm eval official`` / ``eval salmon``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import InputError
from .base import Release
from .salmon import is_salmon, load_salmon
from .slm21 import is_gold_folder, load_gold_folder
from .storycloze import is_storycloze, load_storycloze


@dataclass(frozen=True)
class ReleaseFormat:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], Release]


#: tried in order; the spokenlm layout (manifest.jsonl + items.jsonl) is never a release
FORMATS: tuple[ReleaseFormat, ...] = (
    ReleaseFormat("ZeroSpeech 2021 / ProsAudit gold.csv folder", is_gold_folder,
                  load_gold_folder),
    ReleaseFormat("SALMon", is_salmon, load_salmon),
    ReleaseFormat("TWIST StoryCloze (sSC / tSC)", is_storycloze, load_storycloze),
)


def _is_spokenlm_layout(root: Path) -> bool:
    return (root / "items.jsonl").exists() or (root / "manifest.jsonl").exists()


def _is_slm21_root(root: Path) -> bool:
    return any((root / task / kind / "gold.csv").is_file() or (root / task / kind).is_dir()
               for task in ("lexical", "syntactic") for kind in ("dev", "test"))


def load_release(root: str | Path) -> Release | None:
    """The release in ``root``, or None when ``root`` is a spokenlm benchmark dir or no
    released layout (the caller reports it)."""
    root = Path(root)
    if not root.is_dir() or _is_spokenlm_layout(root):
        return None
    if _is_slm21_root(root):
        found = [str(p.relative_to(root)) for p in sorted(root.glob("*/*/gold.csv"))]
        raise InputError(f"{root}: a ZeroSpeech 2021 dataset root; pass one of its folders "
                         f"({', '.join(p.rsplit('/', 1)[0] for p in found) or 'lexical/dev'}), "
                         "or write a submission with `spokenlm eval zerospeech-submission`")
    for fmt in FORMATS:
        if fmt.detect(root):
            return fmt.load(root)
    return None


def require_release(root: str | Path) -> Release:
    """:func:`load_release`, raising a clear error when ``root`` is no released layout."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: benchmark folder not found; check the path")
    release = load_release(root)
    if release is None:
        names = "; ".join(f.name for f in FORMATS)
        raise InputError(f"{root}: not a released benchmark layout ({names}); pass the "
                         "benchmark's own folder (a spokenlm benchmark dir goes to `eval "
                         "spot-the-word / acceptability / story-cloze`)")
    return release
