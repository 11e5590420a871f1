"""ABX discriminability (Schatz et al.), the ZeroSpeech / libri-light definition.

Tokens are segments with a label (the phone, or the word), a context (the triphone's
(previous, next) phones; empty for words) and a speaker. For labels a != b in the same
context:

- within speaker: A and X are two different tokens of (c, a, s), B a token of (c, b, s);
- across speaker: A and B are tokens of (c, a, s_A) and (c, b, s_A), X a token of
  (c, a, s_X) with s_X != s_A.

A triplet is an error when d(B, X) < d(A, X) (a tie counts half); d is the DTW cost of
frame distances, normalised by the path length. The error of a group (c, a, b, s) or
(c, a, b, s_A, s_X) is its mean over triplets; groups are averaged over speakers (or
speaker pairs), then over contexts, then over the (a, b) pairs, as libri-light does.
Categories are subsampled to ``max_size_group`` tokens and X to ``max_x_across`` tokens
per category (libri-light's defaults: 10 and 5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.errors import InputError
from ..common.files import write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log
from .dtw import dtw_pairs
from .skips import Skips, fmt, set_or_reason


@dataclass(frozen=True)
class Token:
    """One ABX token: which label, in which context, said by whom."""

    label: str
    context: str
    speaker: str


def _mean_over(groups: dict[tuple, float], keep: int) -> dict[tuple, float]:
    """Average ``groups`` over all key positions after the first ``keep`` ones."""
    acc: dict[tuple, list[float]] = defaultdict(list)
    for key, v in groups.items():
        acc[key[:keep]].append(v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _aggregate(groups: dict[tuple, float]) -> float:
    """(c, a, b, speakers...) -> mean over speakers, then contexts, then (a, b)."""
    if not groups:
        return float("nan")
    by_cab = _mean_over(groups, 3)
    by_ab = _mean_over({(a, b, c): v for (c, a, b), v in by_cab.items()}, 2)
    return float(np.mean(list(by_ab.values())))


def _triplet_error(d_ax: np.ndarray, d_bx: np.ndarray, same: bool) -> float:
    """Mean error over triplets. d_ax: (nA, nX), d_bx: (nB, nX); ``same`` means A and X
    are drawn from the same tokens (A != X is enforced: the diagonal is left out)."""
    diff = d_ax[:, None, :] - d_bx[None, :, :]  # (nA, nB, nX): > 0 is an error
    err = (diff > 0) + 0.5 * (diff == 0)
    if same:
        keep = ~np.eye(d_ax.shape[0], dtype=bool)[:, None, :]  # (nA, 1, nX)
        keep = np.broadcast_to(keep, err.shape)
        return float(err[keep].mean()) if keep.any() else float("nan")
    return float(err.mean())


def abx_error(reps: Sequence[torch.Tensor], tokens: Sequence[Token], *,
              distance: str = "angular", partners: dict[str, set[str]] | None = None,
              max_size_group: int = 10, max_x_across: int = 5, seed: int = 0,
              modes: Sequence[str] = ("within", "across")) -> dict[str, float | int | str | None]:
    """Within- and across-speaker ABX error rates (fractions in [0, 1]).

    Args:
        reps: per token, frames (L_i, D) float (``angular``/``euclidean``) or (L_i,) int
            unit ids (``onehot``); L_i >= 1.
        tokens: label, context and speaker of each token.
        partners: if given, B's label must be in ``partners[a]`` (e.g. a word's
            pseudo-word); by default every other label of the same context.
    Returns:
        ``{"within", "across", "n_within_groups", "n_across_groups", "n_pairs"}``; an error
        with no triplet to average is None, with ``within_reason`` / ``across_reason``.
    """
    rng = np.random.default_rng(seed)
    cats: dict[tuple[str, str, str], np.ndarray] = defaultdict(list)  # type: ignore[assignment]
    for i, t in enumerate(tokens):
        cats[(t.context, t.label, t.speaker)].append(i)
    for key, idx in cats.items():
        idx = np.asarray(idx)
        cats[key] = idx if len(idx) <= max_size_group else rng.choice(idx, max_size_group,
                                                                       replace=False)
    labels_of: dict[tuple[str, str], list[str]] = defaultdict(list)  # (c, s) -> labels
    speakers_of: dict[str, set[str]] = defaultdict(set)
    for c, a, s in cats:
        labels_of[(c, s)].append(a)
        speakers_of[c].add(s)

    def b_labels(c: str, s: str, a: str) -> list[str]:
        return [b for b in labels_of[(c, s)] if b != a and (partners is None
                                                          or b in partners.get(a, ()))]

    within: list[tuple] = []  # (key, A idx, B idx, X idx)
    across: list[tuple] = []
    if "within" in modes:
        for (c, s), labels in labels_of.items():
            for a in labels:
                if len(cats[(c, a, s)]) < 2:
                    continue
                for b in b_labels(c, s, a):
                    within.append(((c, a, b, s), cats[(c, a, s)], cats[(c, b, s)],
                                   cats[(c, a, s)]))
    if "across" in modes:
        for c, speakers in speakers_of.items():
            for s_a in speakers:
                for s_x in speakers - {s_a}:
                    for a in labels_of[(c, s_a)]:
                        x = cats.get((c, a, s_x))
                        if x is None:
                            continue
                        for b in b_labels(c, s_a, a):
                            across.append(((c, a, b, s_a, s_x), cats[(c, a, s_a)],
                                           cats[(c, b, s_a)], x[:max_x_across]))
    # every distance any triplet needs, computed once, in batches
    n_tok = len(tokens)
    chunks = []
    for _, A, B, X in within + across:
        for left in (A, B):
            ii, jj = np.meshgrid(left, X, indexing="ij")
            chunks.append(np.stack([ii.ravel(), jj.ravel()], 1))
    if not chunks:
        log("ABX: no group has the tokens it needs (two tokens of a label per speaker "
            "for within, one label said by two speakers for across)")
        return _with_reasons({"within": float("nan"), "across": float("nan"),
                              "n_within_groups": 0, "n_across_groups": 0, "n_pairs": 0}, modes)
    pairs = np.concatenate(chunks)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    keys = np.unique(pairs[:, 0] * n_tok + pairs[:, 1])
    uniq = np.stack([keys // n_tok, keys % n_tok], 1)
    dists = dtw_pairs(list(reps), torch.from_numpy(uniq), kind=distance).numpy()

    def lookup(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        ii, jj = np.meshgrid(left, right, indexing="ij")
        lo, hi = np.minimum(ii, jj), np.maximum(ii, jj)
        pos = np.searchsorted(keys, lo * n_tok + hi)
        out = dists[np.minimum(pos, len(dists) - 1)]
        return np.where(lo == hi, 0.0, out)

    scores = {}
    for name, groups, same in (("within", within, True), ("across", across, False)):
        errs = {key: _triplet_error(lookup(A, X), lookup(B, X), same) for key, A, B, X in groups}
        scores[name] = _aggregate({k: v for k, v in errs.items() if not np.isnan(v)})
    return _with_reasons({"within": scores["within"], "across": scores["across"],
                          "n_within_groups": len(within), "n_across_groups": len(across),
                          "n_pairs": int(len(uniq))}, modes)


#: why an ABX mode has no triplet
NO_TRIPLET = {
    "within": "no label has two tokens by one speaker in one context (within-speaker ABX "
              "needs repeated tokens per speaker)",
    "across": "no label of a context is said by two speakers (across-speaker ABX needs "
              "several speakers per label)",
}


def _with_reasons(result: dict, modes: Sequence[str]) -> dict:
    """NaN errors (no triplet) as None with a ``<mode>_reason``."""
    for mode in ("within", "across"):
        reason = NO_TRIPLET[mode] if mode in modes else f"not computed (modes={list(modes)})"
        set_or_reason(result, mode, result[mode], reason)
    return result


# ---- command --------------------------------------------------------------------------


#: representation name -> (tensor kind from abx_items.representations, distance)
REPRESENTATIONS = {"features": ("features", "angular"), "units": ("units", "onehot"),
                   "unit_embedding": ("embedding", "angular")}


@dataclass
class ABXOptions:
    tokenizer: Path = arg(help="tokenizer directory (its encoder gives features, k-means units)")
    item_file: Path | None = arg(None, help="ZeroSpeech .item file (phone triphones)")
    manifest: Path | None = arg(None, help="audio manifest naming the item file's files")
    audio_dir: Path | None = arg(None, help="or a folder of audio (ids = file stems)")
    benchmark: Path | None = arg(None, help="or a spokenlm benchmark dir of word pairs "
                                            "spoken by several voices (word ABX)")
    representations: list[str] = arg(["features", "units"], help="features, units "
                                      "(one-hot distance), unit_embedding (centroid distance)")
    max_size_group: int = arg(10, help="tokens kept per (context, label, speaker)")
    max_x_across: int = arg(5, help="X tokens per category in across-speaker ABX")
    seed: int = arg(0, help="seed for subsampling")
    output: Path = arg(Path("abx.json"), help="metrics JSON to write")


@command("eval abx", ABXOptions)
def evaluate_abx(opts: ABXOptions) -> dict:
    """Within- and across-speaker ABX error of features and units (DTW, vectorised)."""
    from ..tokenize.tokenizer import SpeechTokenizer
    from .abx_items import load_audio_rows, read_item_file, representations, word_segments

    unknown = [r for r in opts.representations if r not in REPRESENTATIONS]
    if unknown:
        raise InputError(f"representations {unknown}: choose from {sorted(REPRESENTATIONS)}")
    partners = None
    if opts.item_file is not None:
        segments = read_item_file(opts.item_file)
        audio = load_audio_rows(opts.manifest, opts.audio_dir)
    elif opts.benchmark is not None:
        segments, partners, audio = word_segments(opts.benchmark)
    else:
        raise InputError("pass --item-file (with --manifest/--audio-dir) or --benchmark")
    source = opts.item_file if opts.item_file is not None else opts.benchmark
    tokenizer = SpeechTokenizer.from_pretrained(opts.tokenizer)
    kinds = [REPRESENTATIONS[r][0] for r in opts.representations]
    skips = Skips("ABX", "tokens")
    reps, tokens = representations(segments, audio, tokenizer, kinds, skips)
    skips.require(len(tokens), source)
    results = {}
    for name in opts.representations:
        kind, distance = REPRESENTATIONS[name]
        results[name] = {"distance": distance, **abx_error(
            reps[kind], tokens, distance=distance, partners=partners,
            max_size_group=opts.max_size_group, max_x_across=opts.max_x_across,
            seed=opts.seed)}
        log(f"ABX {name}: within {fmt(results[name]['within'], '.4f')}, "
            f"across {fmt(results[name]['across'], '.4f')}")
    if all(r["within"] is None and r["across"] is None for r in results.values()):
        raise InputError(f"{source}: none of the {len(tokens)} tokens forms an ABX triplet: "
                         f"{NO_TRIPLET['within']}, and {NO_TRIPLET['across']}")
    metrics = {"metric": "abx", "mode": "phone" if opts.item_file else "word",
               "n_items": len(tokens), **skips.report(), **results,
               "inputs": stored_fields(opts, opts.output, drop_none=True)}
    write_json(opts.output, metrics)
    return metrics
