"""What a run directory holds, found by content rather than by name.

A run made by ``spokenlm demo`` has a fixed layout (``tokenizer/``, ``lm/final``,
``vocoder/final``, ``resynth/``, ``generate/``, ``eval/``), but a run built step by step
with the CLI names its folders as its author likes (``tok/``, ``voc/``, ``gen/``), and
imported models come without training logs. So each artifact is recognised by the files it
always holds, anywhere in the first few levels of the run:

- tokenizer: ``config.json`` + ``centroids.safetensors`` (plus ``kmeans_stats.json`` when
  trained by spokenlm, ``spokenlm_conversion.json`` or none when imported);
- units: ``<name>.jsonl`` beside ``<name>.meta.json`` (``spokenlm tokenize run`` writes
  both);
- unit LM: ``spokenlm_lm.json``; vocoder: ``config.json`` + ``model.safetensors`` whose
  config names a ``type``; a training run: a folder with ``log.jsonl`` (and usually
  ``options.json`` / ``metrics.json``);
- resynthesis: ``resynth.jsonl``; continuations: ``generations.jsonl``;
- results: any JSON object with a ``"metric"`` key (what every ``spokenlm eval`` writes),
  with its ``<stem>.transcripts.jsonl`` / ``<stem>.items.jsonl`` beside it.

Nothing here imports torch, so the report of a large run is quick to write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..common.files import iter_jsonl

#: marker files, as written by their owners (tokenize.tokenizer, lm.model, vocoder.base)
TOKENIZER_FILES = ("config.json", "centroids.safetensors")
LM_META = "spokenlm_lm.json"
VOCODER_FILES = ("config.json", "model.safetensors")
KMEANS_STATS = "kmeans_stats.json"

#: how deep below the run root artifacts are looked for (``twist/text_lm/final`` is 3)
MAX_DEPTH = 4
#: folders never searched: checkpoints hold copies of the final model
SKIP_DIRS = {"checkpoints", "__pycache__", "wavs", "node_modules"}
#: JSON files that are configs, never results
NOT_RESULTS = {"config.json", "options.json", "generation_config.json", "speakers.json",
               "vocabulary.json", "demo_options.json", "timings.json", LM_META,
               KMEANS_STATS, "spokenlm_conversion.json", "tokenizer_config.json",
               "special_tokens_map.json", "tokenizer.json"}
#: largest JSON file read as a possible result (per-item lists can be large)
MAX_RESULT_BYTES = 20_000_000


@dataclass
class TrainingRun:
    """A folder with a ``log.jsonl`` training log (LM, vocoder, text LM, SSL, ...)."""

    path: Path
    kind: str  # "unit LM", "vocoder", "text LM", "training"
    log: list[dict]
    options: dict
    metrics: dict
    final: Path | None


@dataclass
class Result:
    """One metrics JSON written by an ``eval`` command (or by the demo's benchmark step)."""

    path: Path
    metric: str
    data: dict
    _items: list[dict] | None = field(default=None, repr=False)

    def cache_items(self) -> list[dict]:
        """Per-item rows of a benchmark result, read once: its scored items
        (``<stem>.items.jsonl``: ``ll_sum`` per candidate), else the items of the benchmark
        folder it names (``inputs.benchmark``/items.jsonl: ``candidates``); [] without."""
        if self._items is None:
            path = self.sidecar(".items.jsonl")
            bench = (self.data.get("inputs") or {}).get("benchmark")
            if path is None and isinstance(bench, str) and bench:
                path = resolve(f"{bench}/items.jsonl", self.path.parent)
            self._items = read_rows(path) if path else []
        return self._items

    def sidecar(self, suffix: str) -> Path | None:
        """``<stem><suffix>`` beside the result (``.transcripts.jsonl``, ``.items.jsonl``)."""
        path = self.path.with_suffix(suffix)
        return path if path.exists() else None


@dataclass
class Run:
    """Everything the report can show about one run directory."""

    root: Path
    label: str
    demo_options: dict | None = None
    demo_metrics: dict | None = None
    timings: dict[str, float] | None = None
    corpus: Path | None = None
    tokenizers: list[Path] = field(default_factory=list)
    units: list[Path] = field(default_factory=list)
    lms: list[Path] = field(default_factory=list)
    vocoders: list[Path] = field(default_factory=list)
    training: list[TrainingRun] = field(default_factory=list)
    resynth: list[Path] = field(default_factory=list)
    generate: list[Path] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    eval_all: Result | None = None
    #: values derived once per run (unit statistics)
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def tokenizer(self) -> Path | None:
        """The run's tokenizer: ``tokenizer/`` when there, else the first one found."""
        return _preferred(self.tokenizers, self.root / "tokenizer")

    @property
    def lm(self) -> Path | None:
        """The run's unit LM: ``lm/final`` when there, else the first one found."""
        return _preferred(self.lms, self.root / "lm" / "final")

    @property
    def vocoder(self) -> Path | None:
        return _preferred(self.vocoders, self.root / "vocoder" / "final")

    def training_of(self, kind: str) -> list[TrainingRun]:
        return [t for t in self.training if t.kind == kind]

    def results_of(self, *metrics: str) -> list[Result]:
        return [r for r in self.results if r.metric in metrics]

    def rel(self, path: Path | str | None) -> str:
        """``path`` relative to the run root when inside it (for captions)."""
        if path is None:
            return "-"
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def units_of(self, split: str) -> Path | None:
        """Units JSONL of a split (``train.jsonl``, ``units/test.jsonl``), if any."""
        named = [u for u in self.units if u.stem == split]
        return _preferred(named, self.root / "units" / f"{split}.jsonl")


def _preferred(paths: list[Path], wanted: Path) -> Path | None:
    for p in paths:
        if p == wanted:
            return p
    return paths[0] if paths else None


def collect_run(root: Path, label: str | None = None) -> Run:
    """Find every artifact the report can show in run directory ``root``."""
    root = Path(root)
    run = Run(root=root, label=label or root.name or str(root))
    for name, attr in (("demo_options.json", "demo_options"), ("metrics.json", "demo_metrics"),
                       ("timings.json", "timings")):
        data = load_json(root / name)
        if isinstance(data, dict):
            setattr(run, attr, data)
    for folder, files in _walk(root):
        names = set(files)
        if all(f in names for f in TOKENIZER_FILES):
            run.tokenizers.append(folder)
        if LM_META in names:
            run.lms.append(folder)
        if all(f in names for f in VOCODER_FILES) and _vocoder_type(folder) is not None:
            run.vocoders.append(folder)
        if "resynth.jsonl" in names:
            run.resynth.append(folder)
        if "generations.jsonl" in names:
            run.generate.append(folder)
        if run.corpus is None and {"train.jsonl", "test.jsonl"} <= names \
                and not any(n.endswith(".meta.json") for n in names):
            run.corpus = folder
        for f in sorted(names):
            if f.endswith(".jsonl") and f"{f[:-len('.jsonl')]}.meta.json" in names:
                run.units.append(folder / f)
        if "log.jsonl" in names:
            run.training.append(_training_run(folder))
        for f in sorted(names):
            if _maybe_result(f, top=folder == root):
                result = _result(folder / f)
                if result is None:
                    continue
                if result.metric == "all":
                    run.eval_all = result
                elif not result.metric.endswith("_train"):
                    run.results.append(result)
    return run


def _maybe_result(name: str, top: bool) -> bool:
    """Whether a file name can be a metrics JSON (the run's own ``metrics.json`` at the top
    is the demo's summary, read separately)."""
    return name.endswith(".json") and name not in NOT_RESULTS and not name.endswith(
        (".settings.json", ".meta.json")) and not (top and name == "metrics.json")


def _walk(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """(folder, file names) for ``root`` and its sub-folders down to :data:`MAX_DEPTH`,
    sorted; linked folders are followed (a corpus linked into the run) but each real folder
    is visited once, and :data:`SKIP_DIRS` never."""
    stack, seen = [(root, 0)], set()
    while stack:
        folder, depth = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        files = [e.name for e in entries if e.is_file()]
        yield folder, files
        if depth >= MAX_DEPTH:
            continue
        subdirs = [Path(e.path) for e in entries if e.is_dir()
                   and not e.name.startswith(".") and e.name not in SKIP_DIRS]
        stack += [(d, depth + 1) for d in reversed(subdirs)]


def load_json(path: Path) -> object | None:
    """The JSON in ``path``, or None when it is absent, too large or not JSON."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _result(path: Path) -> Result | None:
    data = load_json(path)
    if isinstance(data, dict) and isinstance(data.get("metric"), str):
        return Result(path, data["metric"], data)
    return None


def _vocoder_type(folder: Path) -> str | None:
    cfg = load_json(folder / "config.json")
    value = cfg.get("type") if isinstance(cfg, dict) else None
    return value if isinstance(value, str) else None


def _training_run(folder: Path) -> TrainingRun:
    try:
        log = [r for r in iter_jsonl(folder / "log.jsonl") if isinstance(r, dict)]
    except Exception:  # noqa: BLE001 - a damaged log is shown as empty, not fatal
        log = []
    options = load_json(folder / "options.json")
    metrics = load_json(folder / "metrics.json")
    final = folder / "final" if (folder / "final").is_dir() else None
    if final is not None and (final / LM_META).exists():
        kind = "unit LM"
    elif final is not None and all((final / f).exists() for f in VOCODER_FILES):
        kind = "vocoder"
    elif final is not None and (final / "text_tokenizer.json").exists():
        kind = "text LM"
    else:
        kind = "training"
    return TrainingRun(folder, kind, log, options if isinstance(options, dict) else {},
                       metrics if isinstance(metrics, dict) else {}, final)


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL index (``resynth.jsonl``, transcripts); [] when unreadable."""
    try:
        return [r for r in iter_jsonl(path) if isinstance(r, dict)]
    except Exception:  # noqa: BLE001 - the section then says the file is unreadable
        return []


def resolve(value: object, *bases: Path) -> Path | None:
    """An existing file named by an index row: absolute, or relative to one of ``bases``
    (the index's folder, the run root) or to the current directory."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    candidates = [path] if path.is_absolute() else [b / path for b in bases] + [path]
    for c in candidates:
        if c.is_file():
            return c
    return None


def config_of(folder: Path | None) -> dict:
    """``config.json`` of an artifact folder, {} when absent."""
    if folder is None:
        return {}
    data = load_json(folder / "config.json")
    return data if isinstance(data, dict) else {}


def kmeans_stats(tokenizer: Path | None) -> dict | None:
    if tokenizer is None or not (tokenizer / KMEANS_STATS).exists():
        return None
    data = load_json(tokenizer / KMEANS_STATS)
    return data if isinstance(data, dict) else None
