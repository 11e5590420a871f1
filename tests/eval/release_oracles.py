"""Test oracles: re-implementations of the reference scorers of the released benchmarks,
written from their source, to check spokenlm's decisions against.

- slamkit (github.com/slp-rl/slamkit): ``slamkit/metric/modelling_metric.py``
  (``ModellingMetricDataset``, ``SalmonDataset``, ``modelling_metric``),
  ``slamkit/model/unit_lm.py`` (``UnitLM.log_likelihood``),
  ``slamkit/utils/calculation_utils.py`` (``calc_nll``) and
  ``slamkit/tokeniser/unit_tokeniser.py`` (the ``<S> $0 <S>`` template);
- the ZeroSpeech 2021 tools (github.com/zerospeech/zerospeech2021): ``lexical.py``,
  ``syntactic.py``, ``leaderboard.py`` (in-vocabulary score), ``meta.py`` and
  ``cli/validate.py`` with ``phonetic.py`` / ``semantic.py`` (submission validation);
  ``zerospeech/benchmarks`` ``tasks/lm/prosody.py`` (ProsAudit).

Each follows its reference step by step (with pandas where the reference uses pandas), not
spokenlm's code. Where a reference depends on the order a directory is listed in
(``Path.glob``), the oracle lists it sorted by name.
"""

from __future__ import annotations

import collections
import json
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import yaml
from torch.nn.functional import cross_entropy
from torch.nn.utils.rnn import pad_sequence

# ---------------------------------------------------------------------------- slamkit


def _glob_wavs(folder: Path) -> list[Path]:
    """``Path(folder).glob("*.wav")``, in name order."""
    return [Path(folder) / n for n in sorted(os.listdir(folder)) if n.endswith(".wav")]


def slamkit_pairs(path: Path, sep: str = "_", subfolder: bool = False) -> list[tuple[Path, Path]]:
    """``ModellingMetricDataset``: the wavs sorted by the integer before ``sep`` (each
    subfolder on its own with ``subfolder``), files 2i and 2i+1 a (positive, negative) pair."""
    data: list[Path] = []
    key = lambda x: int(x.name.split(sep)[0])  # noqa: E731
    if subfolder:
        for f in sorted(Path(path).iterdir()):
            if f.is_dir():
                data += sorted(_glob_wavs(f), key=key)
    else:
        data += sorted(_glob_wavs(path), key=key)
    return [(data[2 * i], data[2 * i + 1]) for i in range(len(data) // 2)]


def salmon_pairs(salmon_path: Path, part: str) -> list[tuple[str, str]]:
    """``SalmonDataset``: files grouped by the second ``_`` field of the stem, each group
    sorted; (first, second) per sample."""
    paths = list(_glob_wavs(Path(salmon_path) / part))
    top = max(int(p.stem.split("_")[1]) for p in paths)
    data: list[list[str]] = [[] for _ in range(top + 1)]
    for p in paths:
        data[int(p.stem.split("_")[1])].append(str(p))
    for lst in data:
        lst.sort()
    return [(lst[0], lst[1]) for lst in data if lst]


class SlamkitScorer:
    """slamkit's ``SpeechLM.log_likelihood`` (``bos``/``eos`` ids: its ``<S> $0 <S>``
    template), or with ``bos = eos = None`` SALMon's ``SLMInferenceModel`` (TWIST: units
    shifted by ``offset``, nothing around them), over a spokenlm tokenizer's units."""

    def __init__(self, tokenizer_dir: Path, model, *, bos: int | None, eos: int | None,
                 pad: int, offset: int) -> None:
        from spokenlm.tokenize.tokenizer import SpeechTokenizer

        self.tokenizer = SpeechTokenizer.from_pretrained(tokenizer_dir, device="cpu")
        self.model = model.eval()
        self.bos, self.eos, self.pad, self.offset = bos, eos, pad, offset

    @classmethod
    def from_spokenlm(cls, tokenizer_dir: Path, lm_dir: Path) -> SlamkitScorer:
        """slamkit's template with the ids of a spokenlm LM dir (``spokenlm_lm.json``)."""
        from transformers import AutoModelForCausalLM

        meta = json.loads((Path(lm_dir) / "spokenlm_lm.json").read_text())
        return cls(tokenizer_dir, AutoModelForCausalLM.from_pretrained(lm_dir),
                   bos=meta["bos_id"], eos=meta["eos_id"], pad=meta["pad_id"],
                   offset=meta["unit_offset"])

    @classmethod
    def from_slamkit(cls, tokenizer_dir: Path, slam_dir: Path, model) -> SlamkitScorer:
        """``UnitTokeniser`` from a slamkit dir's ``tokeniser_config.json``: units placed
        after the specials (``max(eos, bos, pad) + 1``)."""
        cfg = json.loads((Path(slam_dir) / "tokeniser_config.json").read_text())
        bos = cfg["bos_eos_token_id"]
        pad = cfg["pad_token_id"]
        return cls(tokenizer_dir, model, bos=bos, eos=bos, pad=pad, offset=max(bos, pad) + 1)

    @classmethod
    def salmon_twist(cls, tokenizer_dir: Path, twist_dir: Path, model) -> SlamkitScorer:
        """SALMon's ``SLMInferenceModel`` for a TWIST dir: ``config.offset``, padding with
        ``config.pad_token_id``, no BOS / EOS."""
        cfg = json.loads((Path(twist_dir) / "config.json").read_text())
        return cls(tokenizer_dir, model, bos=None, eos=None, pad=cfg["pad_token_id"],
                   offset=cfg["offset"])

    def units(self, path: str | Path) -> list[int]:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
        assert sr == 16000
        return self.tokenizer.encode(wav[:, 0], dedup=True).units.tolist()

    def tokens(self, path: str | Path) -> torch.Tensor:
        """The ``<S> $0 <S>`` template: BOS, the units shifted past the specials, EOS
        (SALMon / TWIST: the shifted units alone)."""
        head = [] if self.bos is None else [self.bos]
        tail = [] if self.eos is None else [self.eos]
        return torch.tensor(head + [u + self.offset for u in self.units(path)] + tail)

    @torch.inference_mode()
    def log_likelihood(self, paths: list, mean_nll: bool) -> torch.Tensor:
        """``UnitLM.log_likelihood`` (and SALMon's) of a batch: right-padded, no attention
        mask, targets equal to PAD masked, ``calc_nll`` / ``nll`` (sum, or mean over the
        unmasked targets)."""
        x = pad_sequence([self.tokens(p) for p in paths], batch_first=True,
                         padding_value=self.pad)
        logits = self.model(input_ids=x).logits
        shifted_x = x[..., 1:].clone()
        shifted_logits = logits[..., :-1, :]
        shifted_x[shifted_x == self.pad] = -100
        mask = shifted_x.ne(-100)
        losses = cross_entropy(shifted_logits.contiguous().view(-1, shifted_logits.size(-1)),
                               shifted_x.long().contiguous().view(-1), reduction="none")
        ll = (losses.view(*shifted_x.size()) * mask).sum(dim=-1)
        if mean_nll:
            ll = ll / mask.sum(dim=-1)
        return -ll

    def modelling_metric(self, pairs: list[tuple], mean_nll: bool, batch_size: int = 1
                         ) -> list[float]:
        """Per pair 1 / 0.5 / 0 (positive above / equal to / below negative)."""
        out: list[float] = []
        for i in range(0, len(pairs), batch_size):
            batch = pairs[i: i + batch_size]
            pos = self.log_likelihood([p for p, _ in batch], mean_nll)
            neg = self.log_likelihood([n for _, n in batch], mean_nll)
            res = torch.zeros_like(pos)
            res[pos > neg] = 1
            res[pos == neg] = 0.5
            res[pos < neg] = 0
            out += res.tolist()
        return out

    def file_scores(self, paths: list, mean_nll: bool) -> dict[str, float]:
        """Stem -> score, one file at a time (what a ZeroSpeech submission line holds)."""
        return {Path(p).stem: float(self.log_likelihood([p], mean_nll)[0]) for p in paths}


# ------------------------------------------------------------------- ZeroSpeech tools


def write_submission_file(path: Path, scores: dict[str, float]) -> Path:
    path.write_text("".join(f"{k} {v!r}\n" for k, v in scores.items()))
    return path


def zr_lexical(gold_file: Path, submission_file: Path) -> dict:
    """``lexical.load_data`` + ``evaluate_by_pair`` / ``_by_frequency`` / ``_by_length``,
    and ``leaderboard.LexicalScores`` (``lexical_all``, ``lexical_invocab``)."""
    gold = pd.read_csv(gold_file, header=0, index_col="filename").astype(
        {"frequency": pd.Int64Dtype()})
    score = pd.read_csv(submission_file, sep=" ", header=None, names=["filename", "score"],
                        index_col="filename")
    assert set(gold.index) == set(score.index), "MismatchError"
    data = pd.merge(gold, score, on="filename", how="inner")
    data.reset_index(inplace=True)
    if data[data.correct == 0]["word"].isnull().sum() == len(data[data.correct == 0]):
        data["word"] = data["phones"]
    data.drop(columns=["phones", "filename"], inplace=True)
    words = data.loc[data["correct"] == 1].reset_index().rename(lambda x: "w_" + x, axis=1)
    non_words = data.loc[data["correct"] == 0].reset_index().rename(lambda x: "nw_" + x, axis=1)
    data = pd.merge(words, non_words, left_on=["w_voice", "w_id"], right_on=["nw_voice", "nw_id"])
    s = data[["w_score", "nw_score"]].to_numpy()
    data["score"] = 0.5 * (s[:, 0] == s[:, 1]) + (s[:, 0] > s[:, 1])
    pairs = {(str(r.w_id), str(r.w_voice)): float(r.score) for r in data.itertuples()}
    by_pair = data.groupby("w_id").agg(frequency=("w_frequency", "first"),
                                       length=("w_length", "first"), score=("score", "mean"))
    bands = pd.cut(by_pair.frequency.astype(float), [0, 1, 5, 20, 100, float("inf")],
                   labels=["oov", "1-5", "6-20", "21-100", ">100"], right=False)
    by_frequency = by_pair.score.groupby(bands, observed=True).agg(
        n="count", score="mean", std="std").reset_index()
    by_length = by_pair.score.groupby(by_pair.length).agg(
        n="count", score="mean", std="std").reset_index()
    invocab = by_frequency[by_frequency["frequency"] != "oov"]
    return {"pairs": pairs, "all": float(by_pair.score.mean()),
            "invocab": float(np.average(invocab["score"].to_numpy(),
                                        weights=invocab["n"].to_numpy())),
            "by_frequency": {str(r.frequency): (int(r.n), float(r.score))
                             for r in by_frequency.itertuples()},
            "by_length": {int(r.length): (int(r.n), float(r.score))
                          for r in by_length.itertuples()}}


def _positional(gold_file: Path, submission_file: Path) -> pd.DataFrame:
    """``syntactic.load_data`` (and ``ProsodicTask.run_prosodic_comparison``): gold and
    scores side by side, the k-th correct=1 row beside the k-th correct=0 row."""
    gold = pd.read_csv(gold_file, header=0, index_col="filename")
    score = pd.read_csv(submission_file, sep=" ", header=None, names=["filename", "score"],
                        index_col="filename")
    assert set(gold.index) == set(score.index), "MismatchError"
    data = pd.concat([gold, score], axis=1)
    data.reset_index(drop=True, inplace=True)
    data = pd.concat([
        data.loc[data["correct"] == 1].reset_index().rename(lambda x: "s_" + x, axis=1),
        data.loc[data["correct"] == 0].reset_index().rename(lambda x: "ns_" + x, axis=1)],
        axis=1)
    s = data[["s_score", "ns_score"]].to_numpy()
    data["score"] = 0.5 * (s[:, 0] == s[:, 1]) + (s[:, 0] > s[:, 1])
    return data


def zr_syntactic(gold_file: Path, submission_file: Path) -> dict:
    """``syntactic.evaluate_by_pair`` / ``evaluate_by_type``; the leaderboard's mean."""
    data = _positional(gold_file, submission_file)
    by_pair = data.groupby(["s_type", "s_subtype", "s_id"])["score"].mean().reset_index()
    by_type = by_pair.score.groupby(by_pair["s_type"]).agg(n="count", score="mean")
    return {"pairs": {(str(r.s_id), str(r.s_voice)): float(r.score) for r in data.itertuples()},
            "all": float(by_pair.score.mean()),
            "by_type": {k: (int(r.n), float(r.score)) for k, r in by_type.iterrows()}}


def zr_prosody(gold_file: Path, submission_file: Path) -> dict:
    """``ProsodicTask.prosodic_by_pair`` (per (type, id), over voices) / ``prosodic_by_type``."""
    data = _positional(gold_file, submission_file)
    by_pair = data.groupby(["s_type", "s_id"])["score"].mean().reset_index()
    by_type = by_pair.score.groupby(by_pair["s_type"]).agg(n="count", score="mean")
    return {"pairs": {(str(r.s_id), str(r.s_voice)): float(r.score) for r in data.itertuples()},
            "by_type": {k: (int(r.n), float(r.score)) for k, r in by_type.iterrows()}}


# ---------------------------------------------------------- submission validation


def _entries(meta: dict, entries: dict, prefix: str = "") -> None:
    assert sorted(meta) == sorted(entries), f"invalid entries in {prefix}: {sorted(meta)}"
    for name, (tp, values) in entries.items():
        value = meta[name]
        assert isinstance(value, tp), f"{prefix}/{name} must be a {tp}"
        if values:
            assert value in values, f"{prefix}/{name} must be in {values}"
        if tp is str:
            assert value, f"{prefix}/{name} must not be an empty string"


def validate_meta(submission: Path) -> bool:
    """``meta.validate``; returns ``open_source``."""
    from scipy.spatial.distance import cdist

    meta = yaml.safe_load((submission / "meta.yaml").read_text().replace("\t", " "))
    assert isinstance(meta, dict), "meta.yaml file is not valid"
    _entries(meta, {"author": (str, None), "affiliation": (str, None),
                    "description": (str, None), "open_source": (bool, None),
                    "train_set": (str, None), "visually_grounded": (bool, None),
                    "gpu_budget": (numbers.Number, None), "parameters": (dict, None)})
    params = meta["parameters"]
    _entries(params, {"phonetic": (dict, None), "semantic": (dict, None)}, "parameters")
    _entries(params["phonetic"], {"metric": (str, ["cosine", "euclidean", "kl",
                                                   "kl_symmetric"]),
                                  "frame_shift": (numbers.Number, None)}, "phonetic")
    _entries(params["semantic"], {"metric": (str, None), "pooling": (
        str, ["min", "max", "mean", "sum", "last", "lastlast", "off"])}, "semantic")
    cdist(np.ones((5, 2)), np.ones((5, 2)), params["semantic"]["metric"])
    return meta["open_source"]


def _directory(directory: Path, expected: list[str]) -> None:
    observed = {str(f.relative_to(directory)) for f in Path(directory).glob("*")}
    assert set(expected) == observed, f"mismatch in directory {directory}: {observed}"


def _matrix_cols(path: Path) -> int:
    array = np.loadtxt(str(path))
    assert array.dtype == np.dtype("float"), f"{path}: not float"
    assert array.ndim == 2, f"{path}: not a 2D array"
    return array.shape[1]


def _scores_file(submission_file: Path, wav_dir: Path) -> None:
    names = []
    for line in open(submission_file):
        fields = line.strip().split(" ")
        assert len(fields) == 2, f'must be "<filename> <score>": {line!r}'
        float(fields[1])
        names.append(fields[0])
    assert not [f for f, n in collections.Counter(names).items() if n > 1], "duplicates"
    assert {w.stem for w in wav_dir.glob("*.wav")} == set(names), "mismatch in filenames"


def validate_submission(dataset: Path, submission: Path, only_dev: bool = False,
                        skip: tuple[str, ...] = ()) -> None:
    """``zerospeech2021-validate`` (meta.yaml, root folder, then phonetic, lexical, syntactic,
    semantic unless in ``skip``: ``--no-<task>``), raising AssertionError where the tool
    raises a ValidationError."""
    kinds = ["dev"] if only_dev else ["dev", "test"]
    open_source = validate_meta(submission)
    root = ["meta.yaml", "phonetic", "lexical", "syntactic", "semantic"]
    if open_source:
        root.append("code")
        assert list((submission / "code").iterdir()), "code folder is empty"
    _directory(submission, root)
    if "phonetic" not in skip:
        _validate_phonetic(dataset, submission, kinds)
    for task in ("lexical", "syntactic"):
        if task not in skip:
            _directory(submission / task, [f"{k}.txt" for k in kinds])
            for kind in kinds:
                _scores_file(submission / task / f"{kind}.txt", dataset / task / kind)
    if "semantic" not in skip:
        _validate_semantic(dataset, submission, kinds)


def _validate_phonetic(dataset: Path, submission: Path, kinds: list[str]) -> None:
    subsets = [f"{k}-{p}" for k in kinds for p in ("clean", "other")]
    _directory(submission / "phonetic", subsets)
    for kind in kinds:
        inputs = [f for s in (f"{kind}-clean", f"{kind}-other")
                  for f in (dataset / "phonetic" / s).rglob("*.wav")]
        submitted = [f for s in (f"{kind}-clean", f"{kind}-other")
                     for f in (submission / "phonetic" / s).rglob("*")]
        assert inputs and submitted
        assert all(f.suffix == ".txt" for f in submitted), "extra files found"
        targets, ncols = [], set()
        for f in inputs:
            target = (submission / "phonetic" / f.relative_to(dataset / "phonetic")
                      ).with_suffix(".txt")
            assert target.is_file(), f"missing {target}"
            ncols.add(_matrix_cols(target))
            targets.append(target)
        assert len(ncols) == 1, "all files must have the same number of columns"
        assert collections.Counter(submitted) == collections.Counter(targets)


def _validate_semantic(dataset: Path, submission: Path, kinds: list[str]) -> None:
    _directory(submission / "semantic", kinds)
    for kind in kinds:
        _directory(submission / "semantic" / kind, ["librispeech", "synthetic"])
        for subset in ("librispeech", "synthetic"):
            required = {f.stem for f in (dataset / "semantic" / kind / subset).glob("*.wav")}
            submitted = set((submission / "semantic" / kind / subset).glob("*"))
            assert all(f.suffix == ".txt" for f in submitted), "extra files found"
            assert {f.stem for f in submitted} == required, "files mismatch"
            assert len({_matrix_cols(f) for f in submitted}) == 1
