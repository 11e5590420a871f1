"""ABX discriminability (Schatz et al.), as libri-light / ZeroSpeech 2021 compute it.

Tokens are segments with a label (the phone, or the word), a context (the triphone's
(previous, next) phones; empty for words) and a speaker. For labels a != b:

- within speaker: A and X are two different tokens of (c, a, s), B a token of (c, b, s);
- across speaker: A and B are tokens of (c, a, s_A) and (c, b, s_A), X a token of
  (c, a, s_X) with s_X != s_A.

With ``context="within"`` (triphone ABX) all three share the context c; with ``"any"``
(phone ABX) the context is ignored. A triplet is an error when d(B, X) < d(A, X) (a tie
counts half); d is the DTW cost of frame distances, normalised by the path length
(:mod:`spokenlm.eval.dtw`). The error of a group -- (c, a, b, s) or (c, a, b, s_A, s_X) --
is its mean over triplets; groups are averaged over contexts (and X speakers), then over
speakers, then over the (a, b) pairs, as libri-light does.

The reference is libri-light's ABX as packaged in ``zerospeech-libriabx2`` (``zrc_abx2``,
the ZeroSpeech toolkit): the groups, its subsampling (``max_size_group`` tokens per
category, ``max_x_across`` X speakers per (A, B), drawn with Python's ``random`` seeded per
condition, default seed 3459) and its DTW are reproduced exactly
(:mod:`~spokenlm.eval.abx_groups`), so the scores match it to float rounding on the same
frames; what differs is the cost (:mod:`~spokenlm.eval.abx_score`: distances per context
block, each pair aligned once, everything batched). The frames of an item are chosen by
:func:`~spokenlm.eval.abx_items.frame_span`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.files import write_json
from ..common.options import arg, command
from ..common.paths import stored_fields
from ..common.progress import log, progress
from .abx_groups import Categories, Token, across_groups, encode, within_groups
from .abx_score import score_groups
from .dtw import FrameBank
from .skips import Skips, fmt, set_or_reason

#: speaker conditions and context modes, as libri-light names them
SPEAKER_MODES = ("within", "across")
CONTEXT_MODES = ("within", "any")
#: libri-light's default seed (``zrc_abx2.eval_ABX.SEED``)
REFERENCE_SEED = 3459


def condition_name(speaker: str, context: str) -> str:
    """Result key: ``within`` / ``across`` for triphone ABX, ``within_any`` / ``across_any``
    for context-free ABX."""
    return speaker if context == "within" else f"{speaker}_any"


def aggregate(keys: np.ndarray, errors: np.ndarray) -> float:
    """libri-light's average of group errors: ``keys`` (G, 4) = (c, a, b, s) or (G, 5) =
    (c, a, b, s_A, s_X). Mean over contexts (and X speakers) per (s, a, b), then over
    speakers per (a, b), then over (a, b). NaN when there is no group."""
    if len(errors) == 0:
        return float("nan")
    sab_keys, sab = _means(keys[:, [3, 1, 2]], errors)  # (s, a, b): over c (and s_X)
    _, ab = _means(sab_keys[:, 1:], sab)  # (a, b): over speakers
    return float(ab.mean())


def _means(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per distinct row of ``keys`` -> (distinct rows, means)."""
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return uniq, np.bincount(inv, values, len(uniq)) / np.bincount(inv, minlength=len(uniq))


def abx_error(reps: Sequence[torch.Tensor], tokens: Sequence[Token], *,
              distance: str = "angular", partners: dict[str, set[str]] | None = None,
              max_size_group: int | None = 10, max_x_across: int | None = 5,
              seed: int = REFERENCE_SEED, speaker_modes: Sequence[str] = SPEAKER_MODES,
              context_modes: Sequence[str] = ("within",),
              id_order: Sequence[Token] | None = None, device: str | torch.device = "cpu",
              max_cells: int = 4_000_000) -> dict[str, float | int | str | None]:
    """ABX error rates (fractions in [0, 1]) of each speaker condition and context mode.

    Args:
        reps: per token, frames (L_i, D) float (``angular``/``euclidean``) or (L_i,) int
            unit ids (``onehot``); L_i >= 1.
        tokens: label, context and speaker of each token, in item-file order.
        partners: if given, B's label must be in ``partners[a]`` (e.g. a word's
            pseudo-word); by default every other label of the same context.
        max_size_group, max_x_across: libri-light's subsampling; None keeps everything.
        id_order: the tokens whose first appearances number contexts, labels and speakers
            (libri-light numbers them over every line of the item file, dropped ones
            included, and that order decides its sampling); default ``tokens``.
        device: where distances and DTW run (``cuda`` for a GPU).
    Returns:
        ``{"within", "across"}`` (triphone ABX) and/or ``{"within_any", "across_any"}``,
        ``n_<condition>_groups``, ``n_pairs`` (DTWs run); an error with no triplet to
        average is None, with a ``<condition>_reason``.
    """
    bad = [m for m in speaker_modes if m not in SPEAKER_MODES] + \
        [m for m in context_modes if m not in CONTEXT_MODES]
    if bad:
        raise ValueError(f"modes {bad}: speaker modes are {SPEAKER_MODES}, context modes "
                         f"{CONTEXT_MODES}")
    if max_size_group is not None and max_size_group < 2:
        raise ValueError(f"max_size_group={max_size_group}: needs at least 2 (A and X)")
    if len(reps) != len(tokens):
        raise ValueError(f"{len(reps)} representations for {len(tokens)} tokens")
    keys = [(t.context, t.label, t.speaker) for t in tokens]
    codes = encode(keys, None if id_order is None else
                   [(t.context, t.label, t.speaker) for t in id_order])
    label_id = {lab: int(i) for lab, i in zip((t.label for t in tokens), codes.label)}
    partner_ids = None if partners is None else {
        label_id[a]: {label_id[b] for b in bs if b in label_id}
        for a, bs in partners.items() if a in label_id}
    # stored in triphone order: each context and (context, speaker) is a stretch of frames
    bank = FrameBank.build(reps, distance, device, order=Categories.build(codes, True).order) \
        if len(reps) else None
    result: dict[str, float | int | str | None] = {}
    n_pairs = 0
    started = time.perf_counter()
    k = max_size_group or max(1, len(tokens))
    for context in context_modes:
        use_context = context == "within"
        cats = Categories.build(codes, use_context)
        common = dict(max_size_group=k, seed=seed, partners=partner_ids)
        streams = {}
        if "within" in speaker_modes:
            streams[condition_name("within", context)] = within_groups(cats, **common)
        if "across" in speaker_modes:
            streams[condition_name("across", context)] = across_groups(
                cats, max_x_across=max_x_across or len(tokens), **common)
        if bank is None:
            scored = None
        else:
            with progress(desc=f"ABX ({context} context)", unit="group") as bar:
                scored = score_groups(bank, cats, streams, use_context, max_size_group=k,
                                      max_cells=max_cells, on_groups=bar.update)
            n_pairs += scored.n_dtw
        for name in streams:
            g_keys, errs = scored.arrays(name) if scored else (np.zeros((0, 4)), np.zeros(0))
            result[name] = aggregate(g_keys, errs)
            result[f"n_{name}_groups"] = int(len(errs))
    result["n_pairs"] = n_pairs
    if n_pairs == 0:
        log("ABX: no group has the tokens it needs (two tokens of a label per speaker "
            "for within, one label said by two speakers for across)")
    log(f"ABX: {n_pairs} DTWs in {time.perf_counter() - started:.1f} s")
    return _with_reasons(result, speaker_modes, context_modes)


#: why an ABX mode has no triplet
NO_TRIPLET = {
    "within": "no label has two tokens by one speaker in one context (within-speaker ABX "
              "needs repeated tokens per speaker)",
    "across": "no label of a context is said by two speakers (across-speaker ABX needs "
              "several speakers per label)",
}


def _with_reasons(result: dict, speaker_modes: Sequence[str],
                  context_modes: Sequence[str]) -> dict:
    """NaN errors (no triplet) as None with a ``<condition>_reason``; triphone ABX's keys
    are always there (None when not computed)."""
    for context in dict.fromkeys(["within", *context_modes]):
        for mode in SPEAKER_MODES:
            name = condition_name(mode, context)
            if mode in speaker_modes and context in context_modes:
                reason = NO_TRIPLET[mode] if context == "within" else \
                    NO_TRIPLET[mode].replace(" in one context", "")
            else:
                reason = (f"not computed (speaker modes {list(speaker_modes)}, context modes "
                          f"{list(context_modes)})")
            set_or_reason(result, name, result.get(name, float("nan")), reason)
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
    context_modes: list[str] = arg(["within"], help="within: triphone ABX (the context is "
                                   "kept, ZeroSpeech 2021's score); any: phone ABX (ignored)")
    speaker_modes: list[str] = arg(["within", "across"], help="within- and/or across-speaker")
    max_size_group: int = arg(10, help="tokens kept per (context, label, speaker) "
                              "(libri-light's subsampling; 0 keeps all)")
    max_x_across: int = arg(5, help="X speakers drawn per (A, B) in across-speaker ABX "
                            "(libri-light's; 0 keeps all)")
    seed: int = arg(REFERENCE_SEED, help="seed for subsampling (libri-light's default)")
    device: str = arg("cpu", help="where distances and DTW run: cpu, cuda, auto")
    output: Path = arg(Path("abx.json"), help="metrics JSON to write")


@command("eval abx", ABXOptions)
def evaluate_abx(opts: ABXOptions) -> dict:
    """Within- and across-speaker ABX error of features and units.

    Libri-light's triplets and sampling; distances per context block, batched DTW."""
    from ..tokenize.tokenizer import SpeechTokenizer
    from .abx_items import load_audio_rows, read_item_file, representations, word_segments

    unknown = [r for r in opts.representations if r not in REPRESENTATIONS]
    if unknown:
        raise InputError(f"representations {unknown}: choose from {sorted(REPRESENTATIONS)}")
    bad = [m for m in opts.context_modes if m not in CONTEXT_MODES] + \
        [m for m in opts.speaker_modes if m not in SPEAKER_MODES]
    if bad or not opts.context_modes or not opts.speaker_modes:
        raise InputError(f"--context-modes {opts.context_modes} --speaker-modes "
                         f"{opts.speaker_modes}: choose context modes from {CONTEXT_MODES} "
                         f"and speaker modes from {SPEAKER_MODES}")
    if opts.max_size_group == 1 or opts.max_size_group < 0 or opts.max_x_across < 0:
        raise InputError(f"--max-size-group {opts.max_size_group} --max-x-across "
                         f"{opts.max_x_across}: a group needs at least 2 tokens (0 keeps all)")
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
    device = resolve_device(opts.device)
    conditions = [condition_name(s, x) for x in opts.context_modes for s in opts.speaker_modes]
    order = [seg.token for seg in segments]  # libri-light numbers ids over every item line
    results = {}
    for name in opts.representations:
        kind, distance = REPRESENTATIONS[name]
        results[name] = {"distance": distance, **abx_error(
            reps[kind], tokens, distance=distance, partners=partners,
            max_size_group=opts.max_size_group or None, max_x_across=opts.max_x_across or None,
            seed=opts.seed, speaker_modes=opts.speaker_modes, context_modes=opts.context_modes,
            id_order=order, device=device)}
        log(f"ABX {name}: " + ", ".join(f"{c} {fmt(results[name][c], '.4f')}"
                                        for c in conditions))
    if all(r[c] is None for r in results.values() for c in conditions):
        raise InputError(f"{source}: none of the {len(tokens)} tokens forms an ABX triplet: "
                         f"{NO_TRIPLET['within']}, and {NO_TRIPLET['across']}")
    metrics = {"metric": "abx", "mode": "phone" if opts.item_file else "word",
               "n_items": len(tokens), **skips.report(), **results,
               "inputs": stored_fields(opts, opts.output, drop_none=True)}
    write_json(opts.output, metrics)
    return metrics
