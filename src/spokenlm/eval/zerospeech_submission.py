"""``spokenlm eval zerospeech-submission``: a ZeroSpeech 2021 submission folder that the
official tools (``zerospeech2021-validate`` / ``zerospeech2021-evaluate``, package
``zerospeech2021``) accept, from a spokenlm tokenizer and unit LM.

The layout is the one ``zerospeech2021/cli/validate.py`` checks::

    meta.yaml                 author, affiliation, description, open_source, train_set,
                              visually_grounded, gpu_budget, parameters: {phonetic:
                              {metric, frame_shift}, semantic: {metric, pooling}}
    phonetic/dev-clean/<f>.txt   one per dataset wav (same relative path): a 2-D float
    phonetic/dev-other/...       matrix, one row per frame (frame_shift = 1 / frame rate)
    lexical/dev.txt           "<filename> <score>" per wav of lexical/dev (no path, no .wav)
    syntactic/dev.txt         the same for syntactic/dev
    semantic/dev/{librispeech,synthetic}/<f>.txt   features, as for phonetic
    code/README.md            with open_source: how this submission was made

and ``test`` alongside ``dev`` (``test-clean``/``test-other``, ``test.txt``) when the dataset
has them. A wav's score is its log-likelihood under the unit LM, summed (``--score sum``) or
per scored token (``mean``), with BOS and EOS as :mod:`spokenlm.eval.releases.scoring`
scores files (``eval official`` on the same folder gives the pairs these scores decide).
Features are the tokenizer encoder's frames (``--features features``, compared with cosine
ABX) or one-hot units (``units``). A wav shorter than two frames is padded with silence to
two, since ``numpy.loadtxt`` reads a one-row file as 1-D, which the validator refuses.
Tasks left out of ``--tasks`` (or missing from the dataset's folders) get an empty folder,
so the root still validates; check those with ``--no-<task>``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .. import __version__
from ..audio.load import AudioError, load_audio
from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.files import atomic_dir, atomic_path
from ..common.options import arg, command
from ..common.paths import ArtifactKind
from ..common.progress import log, progress
from ..lm.model import UnitLM
from ..tokenize.tokenizer import SpeechTokenizer
from .official import ReleaseScoringOptions
from .releases.scoring import resolve_eos, score_units

SUBMISSION_KIND = ArtifactKind("ZeroSpeech 2021 submission", ("meta.yaml",))
TASKS = ("phonetic", "lexical", "syntactic", "semantic")
PHONETIC_METRICS = ("cosine", "euclidean", "kl", "kl_symmetric")
POOLINGS = ("min", "max", "mean", "sum", "last", "lastlast", "off")
SEMANTIC_SUBSETS = ("librispeech", "synthetic")


@dataclass
class SubmissionOptions(ReleaseScoringOptions):
    dataset: Path = arg(positional=True, scanned=True, help="ZeroSpeech 2021 dataset root "
                        "(phonetic/, lexical/, syntactic/, semantic/)")
    output: Path = arg(Path("zr2021_submission"), help="submission folder to write")
    tasks: list[str] = arg(list(TASKS), help="tasks to fill: phonetic lexical syntactic "
                           "semantic")
    sets: list[str] = arg(["dev", "test"], help="dev, test (drop test if the dataset has "
                          "none, and validate with --only-dev)")
    score: Literal["sum", "mean"] = arg("sum", help="lexical/syntactic score of a wav: "
                                        "summed or per-token log-likelihood")
    features: Literal["features", "units"] = arg("features", help="phonetic/semantic "
                                                 "frames: encoder features or one-hot units")
    author: str = arg("anonymous", help="meta.yaml author (set it before submitting)")
    affiliation: str = arg("unknown", help="meta.yaml affiliation")
    description: str = arg("", help="meta.yaml description (default: what spokenlm used)")
    train_set: str = arg("unknown", help="meta.yaml train_set: the data the LM was trained on")
    open_source: bool = arg(True, help="meta.yaml open_source (adds code/README.md)")
    visually_grounded: bool = arg(False, help="meta.yaml visually_grounded")
    gpu_budget: float = arg(0.0, help="meta.yaml gpu_budget (GPU hours of training)")
    phonetic_metric: Literal["cosine", "euclidean", "kl", "kl_symmetric"] = arg(
        "cosine", help="ABX distance the evaluator uses on the phonetic features")
    semantic_metric: str = arg("cosine", help="scipy cdist metric for the semantic task")
    semantic_pooling: Literal["min", "max", "mean", "sum", "last", "lastlast", "off"] = arg(
        "mean", help="pooling of semantic features over frames")


def _check(opts: SubmissionOptions) -> None:
    bad = [t for t in opts.tasks if t not in TASKS]
    if bad:
        raise InputError(f"--tasks {bad[0]}: choose from {', '.join(TASKS)}")
    bad = [s for s in opts.sets if s not in ("dev", "test")]
    if bad or not opts.sets:
        raise InputError(f"--sets {bad[0] if bad else '(none)'}: choose dev and/or test")
    if not opts.dataset.is_dir():
        raise InputError(f"{opts.dataset}: dataset folder not found; pass the ZeroSpeech "
                         "2021 dataset root (the folder holding lexical/, syntactic/, ...)")
    for task in opts.tasks:
        for s in opts.sets:
            for folder in task_folders(opts.dataset, task, [s]):
                if not folder.is_dir():
                    hint = "--sets dev" if s == "test" else f"--tasks without {task}"
                    raise InputError(f"{folder}: missing from the dataset; re-extract it or "
                                     f"pass {hint}")


def task_folders(dataset: Path, task: str, sets: Sequence[str]) -> list[Path]:
    """The dataset folders of ``task`` whose wavs the submission covers."""
    if task == "phonetic":
        return [dataset / "phonetic" / f"{s}-{part}" for s in sets for part in ("clean", "other")]
    if task == "semantic":
        return [dataset / "semantic" / s / sub for s in sets for sub in SEMANTIC_SUBSETS]
    return [dataset / task / s for s in sets]


def _wav(path: Path) -> np.ndarray:
    try:
        return load_audio(path, validate=False, max_duration=None)
    except AudioError as e:
        raise InputError(f"{e}; the submission needs every file of the dataset") from e


def _frames(tokenizer: SpeechTokenizer, path: Path, kind: str) -> np.ndarray:
    """(F, D) float frames of ``path``, F >= 2 (short files padded with silence)."""
    wav = _wav(path)
    framing = tokenizer.framing
    need = framing.win_length + framing.hop_length  # two frames
    if len(wav) < need:
        wav = np.pad(wav, (0, need - len(wav)))
    feats = tokenizer.features(wav)
    if kind == "units":
        units = tokenizer.units_from_features(feats, dedup=False).units
        return np.eye(tokenizer.n_units, dtype=np.float32)[units]
    if feats.ndim != 2 or feats.shape[1] < 2:
        raise InputError(f"{path}: the encoder gives {feats.shape[-1]}-dim features; the "
                         "validator needs 2 or more columns: pass --features units")
    return feats


def _write_matrix(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, frames, fmt="%.7g")


def _features(tokenizer: SpeechTokenizer, opts: SubmissionOptions, task: str, out: Path
              ) -> dict[str, int]:
    counts = {}
    for folder in task_folders(opts.dataset, task, opts.sets):
        rel = folder.relative_to(opts.dataset)
        wavs = sorted(folder.rglob("*.wav") if task == "phonetic" else folder.glob("*.wav"))
        if not wavs:
            raise InputError(f"{folder}: no wav files; re-extract the dataset")
        for wav in progress(wavs, desc=f"features {rel}", unit="file"):
            target = out / rel / wav.relative_to(folder).with_suffix(".txt")
            _write_matrix(target, _frames(tokenizer, wav, opts.features))
        counts[str(rel)] = len(wavs)
    return counts


def _scores(tokenizer: SpeechTokenizer, lm: UnitLM, opts: SubmissionOptions,
            tasks: Sequence[str], out: Path) -> dict[str, int]:
    files: dict[str, list[Path]] = {}
    for task in tasks:
        for folder in task_folders(opts.dataset, task, opts.sets):
            wavs = sorted(folder.glob("*.wav"))
            if not wavs:
                raise InputError(f"{folder}: no wav files; re-extract the dataset")
            files[f"{task}/{folder.name}"] = wavs
    units = {}
    for key, wavs in files.items():
        for wav in progress(wavs, desc=f"tokenize {key}", unit="file"):
            units[f"{key}/{wav.stem}"] = tokenizer.encode(_wav(wav), dedup=True).units.tolist()
    scores = score_units(units, lm, eos=resolve_eos(lm, opts.eos),
                         batch_tokens=opts.batch_tokens)
    for key, wavs in files.items():
        lines = [f"{w.stem} {getattr(scores[f'{key}/{w.stem}'], opts.score)!r}\n" for w in wavs]
        with atomic_path(out / f"{key}.txt") as tmp:
            tmp.write_text("".join(lines))
    return {key: len(wavs) for key, wavs in files.items()}


def meta_yaml(opts: SubmissionOptions, frame_shift: float, eos: bool) -> str:
    """meta.yaml as ``zerospeech2021/meta.py`` validates it (exactly these keys)."""
    def q(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar

    description = opts.description or (
        f"spokenlm {__version__}: units of tokenizer {opts.tokenizer}, unit LM {opts.lm}; "
        f"lexical/syntactic scores: {'summed' if opts.score == 'sum' else 'per-token'} "
        f"log-likelihood (BOS, units"
        f"{', EOS' if eos else ''}); phonetic/semantic: {opts.features}")
    return (f"author: {q(opts.author)}\naffiliation: {q(opts.affiliation)}\n"
            f"description: {q(description)}\n"
            f"open_source: {str(opts.open_source).lower()}\ntrain_set: {q(opts.train_set)}\n"
            f"visually_grounded: {str(opts.visually_grounded).lower()}\n"
            f"gpu_budget: {float(opts.gpu_budget)!r}\nparameters:\n  phonetic:\n"
            f"    metric: {opts.phonetic_metric}\n    frame_shift: {frame_shift!r}\n"
            f"  semantic:\n    metric: {q(opts.semantic_metric)}\n"
            f"    pooling: {opts.semantic_pooling}\n")


def _code_readme(opts: SubmissionOptions) -> str:
    command = " ".join(sys.argv) if sys.argv and "spokenlm" in sys.argv[0] else (
        f"spokenlm eval zerospeech-submission {opts.dataset} --tokenizer {opts.tokenizer} "
        f"--lm {opts.lm} --score {opts.score} --features {opts.features}")
    return (f"# How this submission was made\n\nWith spokenlm {__version__}, an open-source "
            f"toolkit for spoken language modelling:\n\n"
            f"    {command}\n\nTokenizer: {opts.tokenizer}\nUnit LM: {opts.lm}\n")


def official_commands(opts: SubmissionOptions) -> dict[str, str]:
    """The ``zerospeech2021-validate`` / ``-evaluate`` command lines for this submission."""
    skip = "".join(f" --no-{t}" for t in TASKS if t not in opts.tasks)
    only_dev = "" if "test" in opts.sets else " --only-dev"
    base = f"{opts.dataset} {opts.output}"
    return {"validate": f"zerospeech2021-validate {base}{only_dev}{skip}",
            "evaluate": f"zerospeech2021-evaluate {base}{skip} -o {opts.output}_scores"}


@command("eval zerospeech-submission", SubmissionOptions)
def zerospeech_submission(opts: SubmissionOptions) -> dict:
    """Write a ZeroSpeech 2021 submission folder for the official zerospeech2021 tools.

    meta.yaml, phonetic and semantic features, lexical and syntactic scores per wav; the
    folder passes ``zerospeech2021-validate`` and ``zerospeech2021-evaluate`` scores it."""
    _check(opts)
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer, device=opts.device)
    lm = UnitLM.from_pretrained(opts.lm, device=resolve_device(opts.device))
    lm.check_tokenizer(tokenizer.n_units)
    frame_shift = 1.0 / tokenizer.frame_rate
    counts: dict[str, int] = {}
    with atomic_dir(opts.output, SUBMISSION_KIND) as out:
        eos = resolve_eos(lm, opts.eos)
        (out / "meta.yaml").write_text(meta_yaml(opts, frame_shift, eos))
        for task in TASKS:
            (out / task).mkdir()
        for task in ("phonetic", "semantic"):
            if task in opts.tasks:
                counts.update(_features(tokenizer, opts, task, out))
        scored = [t for t in ("lexical", "syntactic") if t in opts.tasks]
        if scored:
            counts.update(_scores(tokenizer, lm, opts, scored, out))
        if opts.open_source:
            (out / "code").mkdir()
            (out / "code" / "README.md").write_text(_code_readme(opts))
    commands = official_commands(opts)
    log(f"wrote the ZeroSpeech 2021 submission {opts.output} ({sum(counts.values())} files "
        f"covered); check it with `{commands['validate']}`")
    return {"output": str(opts.output), "files": counts, "frame_shift": frame_shift, **commands}
