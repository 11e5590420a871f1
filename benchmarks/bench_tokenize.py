"""Tokenization speed: audio -> deduplicated units with a HuBERT-Base-sized encoder (random
weights), layer 6, k = 500 units; spokenlm against two public recipes, same audio, same
centroids, same process.

- spokenlm: ``SpeechTokenizer.encode_batch`` (what ``spokenlm tokenize run`` calls): encoder
  truncated after layer 6 (``tokenize/encoders/hf.py``), utterances of equal length batched
  (``tokenize/features.py``; with realistic, all-different lengths every call holds one
  utterance), faiss nearest-centroid assignment, run-length dedup. fp32 (the default).
- baseline (a), slamkit's Hugging Face recipe (slamkit ``tokeniser`` with a HF HuBERT
  feature extractor + scikit-learn k-means): one file at a time, the *full* model forward
  with ``output_hidden_states=True``, ``hidden_states[6]``, then ``MiniBatchKMeans.predict``
  (a joblib-loaded scikit-learn model), then dedup.
- baseline (b), the fairseq / textlesslib recipe (fairseq
  ``examples/hubert/simple_kmeans/dump_hubert_feature.py`` + ``dump_km_label.py``;
  textlesslib ``HubertFeatureReader`` + ``KMeansQuantizer``): one file at a time,
  forward truncated at ``output_layer=6`` (here: conv front-end, projection, positional
  conv, LayerNorm, layers 1..6 of the same HF modules, written out in this script), then
  ``ApplyKmeans``: ``argmin(|x|^2 - 2 x C + |C|^2)`` in torch, then dedup.

Units must agree with both baselines frame for frame (reported: fraction of equal frames;
with one utterance per encoder call no padding is involved, so the math is the same and
differences are only float near-ties). bf16 autocast is measured (and its frame agreement
with fp32 reported) only where bf16 is native (``spokenlm.common.device.bf16_supported``);
elsewhere it is reported as unavailable. The encoder's achieved FLOP/s (FLOPs counted by
``torch.utils.flop_counter`` on the meta device) is reported as a fraction of this
machine's measured peak fp32 matmul FLOP/s (a 2048^2 matmul in the same process).

Bar (issue 6): >= 2.5x baseline (a), >= 1.8x baseline (b), identical units.

    python benchmarks/bench_tokenize.py [--full] [--device cuda] [--threads N]
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, peak_matmul_flops, setup, timed  # noqa: E402

LAYER = 6
N_UNITS = 500
#: HuBERT Base (``facebook/hubert-base-ls960``) architecture; weights are random
HUBERT_BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                   intermediate_size=3072, conv_dim=512, num_conv_pos_embeddings=128,
                   num_conv_pos_embedding_groups=16)


def make_audio(n: int, seconds: tuple[float, float], seed: int) -> list[np.ndarray]:
    """``n`` speech-like waveforms of random, all-different lengths (as a real corpus)."""
    from spokenlm.testing.audio import random_speech_like_wav

    rng = np.random.default_rng(seed)
    return [random_speech_like_wav(float(rng.uniform(*seconds)), seed=seed * 7919 + i)
            for i in range(n)]


def dedup(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding, as both recipes do it (``itertools.groupby``)."""
    if len(frames) == 0:
        return frames, frames
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
    return frames[starts], np.diff(np.r_[starts, len(frames)])


# ---- baseline (a): slamkit / HF full forward + sklearn predict -------------------------------
@torch.no_grad()
def slamkit_units(model, km, wavs, device) -> list[np.ndarray]:
    out = []
    for w in wavs:  # one file at a time
        x = torch.from_numpy(w)[None].to(device)
        hs = model(x, output_hidden_states=True).hidden_states[LAYER][0]  # (F, D)
        frames = km.predict(hs.float().cpu().numpy())
        out.append(dedup(frames.astype(np.int64)))
    return out


# ---- baseline (b): fairseq / textlesslib truncated forward + ApplyKmeans ---------------------
class ApplyKmeans:
    """fairseq ``examples/hubert/simple_kmeans/dump_km_label.py`` ``ApplyKmeans`` (torch)."""

    def __init__(self, centroids: np.ndarray, device: torch.device) -> None:
        self.C = torch.from_numpy(centroids.T.copy()).to(device)  # (D, K)
        self.Cnorm = self.C.pow(2).sum(0, keepdim=True)  # (1, K)

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        dist = x.pow(2).sum(1, keepdim=True) - 2 * torch.matmul(x, self.C) + self.Cnorm
        return dist.argmin(dim=1).cpu().numpy()


@torch.no_grad()
def fairseq_features(model, x: torch.Tensor, output_layer: int) -> torch.Tensor:
    """``extract_features(source=x, padding_mask=None, mask=False, output_layer=L)``:
    (1, T) -> (1, F, D), running only the layers up to ``output_layer``."""
    feats = model.feature_extractor(x).transpose(1, 2)  # (1, F, C)
    h = model.feature_projection(feats)  # LayerNorm + post_extract_proj
    enc = model.encoder
    h = h + enc.pos_conv_embed(h)
    h = enc.layer_norm(h)  # HuBERT Base: post-LN stack, LayerNorm before the layers
    for layer in enc.layers[:output_layer]:
        h = layer(h, attention_mask=None)
    return h


@torch.no_grad()
def fairseq_units(model, apply_km, wavs, device) -> list[np.ndarray]:
    out = []
    for w in wavs:  # one file at a time
        x = torch.from_numpy(w)[None].to(device)
        feats = fairseq_features(model, x, LAYER)[0]
        out.append(dedup(apply_km(feats).astype(np.int64)))
    return out


# ---- helpers ---------------------------------------------------------------------------------
def frames_of(units) -> list[np.ndarray]:
    return [np.repeat(u, d) for u, d in units]


def frame_agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    same = sum(int((x == y).sum()) if len(x) == len(y) else 0 for x, y in zip(a, b))
    return same / max(1, sum(len(x) for x in a))


def count_flops(module: torch.nn.Module, lengths: list[int]) -> dict[str, float]:
    """FLOPs of ``module`` ((1, T) audio in) over utterances of ``lengths`` samples, counted
    on the meta device (shapes only, no compute): total and the conv front-end / positional
    conv / transformer layers split."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(module).to("meta")
    out = {"total": 0.0, "conv_frontend": 0.0, "pos_conv": 0.0}
    for n in sorted(set(lengths)):
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            meta(torch.zeros(1, n, device="meta"))
        counts = {k: sum(v.values()) for k, v in fc.get_flop_counts().items()}
        times = lengths.count(n)
        out["total"] += counts["Global"] * times
        for key, suffix in (("conv_frontend", ".feature_extractor"),
                            ("pos_conv", ".encoder.pos_conv_embed")):
            out[key] += sum(v for k, v in counts.items() if k.endswith(suffix)) * times
    out["transformer_layers"] = out["total"] - out["conv_frontend"] - out["pos_conv"]
    return out


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--n-utterances", type=int, default=None)
    p.add_argument("--seconds", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    args = p.parse_args(argv)
    device = setup(args)
    n_utts = args.n_utterances or (100 if args.full else 12)
    seconds = tuple(args.seconds or ((2.0, 16.0) if args.full else (1.0, 3.0)))

    from transformers import HubertModel

    from spokenlm.common.device import bf16_supported
    from spokenlm.interop.sklearn_kmeans import sklearn_kmeans_from_centroids
    from spokenlm.testing.encoders import tiny_hubert_dir
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.features import FeatureExtractor
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        log("building a HuBERT-Base-sized random encoder")
        model_dir = tiny_hubert_dir(Path(tmp) / "hubert", seed=args.seed, **HUBERT_BASE)
        wavs = make_audio(n_utts, seconds, args.seed)
        audio_s = sum(len(w) for w in wavs) / 16000
        log(f"{n_utts} utterances, {audio_s:.1f} s of audio")

        encoder = build_encoder({"name": "hubert", "path": str(model_dir), "layer": LAYER})
        # centroids: faiss k-means on this audio's layer-6 features (not timed)
        fx = FeatureExtractor(encoder, device=str(device))
        feats = np.concatenate(fx.features_batch(wavs))
        k = min(N_UNITS, len(feats) // 2)
        centroids = KMeans.fit(feats, k, seed=args.seed).centroids
        del feats
        tok = SpeechTokenizer(encoder, KMeans(centroids), device=str(device), precision="fp32")

        full = HubertModel.from_pretrained(str(model_dir), local_files_only=True)
        full = full.to(device).eval().requires_grad_(False)
        km = sklearn_kmeans_from_centroids(centroids)
        apply_km = ApplyKmeans(centroids, device)

        # warm up each path on one utterance
        tok.encode_batch(wavs[:1])
        slamkit_units(full, km, wavs[:1], device)
        fairseq_units(full, apply_km, wavs[:1], device)

        log("spokenlm")
        ours, t_ours = timed(lambda: tok.encode_batch(wavs, dedup=True), device)
        ours = [(u.units, u.durations) for u in ours]
        log(f"  {t_ours:.2f} s; baseline (a) slamkit HF full forward + sklearn predict")
        base_a, t_a = timed(lambda: slamkit_units(full, km, wavs, device), device)
        log(f"  {t_a:.2f} s; baseline (b) fairseq truncated forward + ApplyKmeans")
        base_b, t_b = timed(lambda: fairseq_units(full, apply_km, wavs, device), device)
        log(f"  {t_b:.2f} s")

        f_ours = frames_of(ours)
        agree_a = frame_agreement(f_ours, frames_of(base_a))
        agree_b = frame_agreement(f_ours, frames_of(base_b))
        identical = all(np.array_equal(x, y) for x, y in zip(f_ours, frames_of(base_a))) and \
            all(np.array_equal(x, y) for x, y in zip(f_ours, frames_of(base_b)))

        # bf16 autocast: only where native
        if bf16_supported(device):
            tok16 = SpeechTokenizer(encoder, KMeans(centroids), device=str(device),
                                    precision="bf16")
            tok16.encode_batch(wavs[:1])
            u16, t16 = timed(lambda: tok16.encode_batch(wavs, dedup=True), device)
            bf16 = {"seconds": t16, "x_realtime": audio_s / t16, "speedup_vs_fp32": t_ours / t16,
                    "frame_agreement_vs_fp32": frame_agreement(
                        f_ours, frames_of([(u.units, u.durations) for u in u16]))}
            bf16["meets_97pct"] = bf16["frame_agreement_vs_fp32"] >= 0.97
        else:
            bf16 = "unavailable: no native bf16 on this device (bf16_supported() is False)"

        lengths = [len(w) for w in wavs]
        split = count_flops(tok.encoder, lengths)
        flops = split["total"]
        full_flops = count_flops(full, lengths)["total"]
        peak = peak_matmul_flops(device)
        achieved = flops / t_ours

    ratio = {"vs_a_slamkit_hf": t_a / t_ours, "vs_b_fairseq": t_b / t_ours}
    meets = ratio["vs_a_slamkit_hf"] >= 2.5 and ratio["vs_b_fairseq"] >= 1.8 and identical
    return emit(
        "tokenize",
        spokenlm={"seconds": t_ours, "x_realtime": audio_s / t_ours,
                  "encoder_gflop": flops / 1e9, "encoder_gflops_per_s": achieved / 1e9,
                  "fraction_of_peak_fp32_matmul": achieved / peak, "bf16": bf16},
        profile={"flop_share": {k: v / flops for k, v in split.items() if k != "total"},
                 "full_model_gflop": full_flops / 1e9,
                 # the speed-up truncation alone can give over (a) at equal FLOP/s; (b) does
                 # the same FLOPs as spokenlm, so its ratio can only come from FLOP/s
                 "flop_ratio_a_over_spokenlm": full_flops / flops,
                 "flop_ratio_b_over_spokenlm": 1.0,
                 "achievable_ratio_vs_b_at_peak": peak / achieved},
        baseline={"a_slamkit_hf": {"seconds": t_a, "x_realtime": audio_s / t_a},
                  "b_fairseq_textlesslib": {"seconds": t_b, "x_realtime": audio_s / t_b}},
        ratio=ratio, outputs_agree=identical,
        agreement={"frames_equal_vs_a": agree_a, "frames_equal_vs_b": agree_b},
        bar=">=2.5x (a), >=1.8x (b), identical units", meets_bar=meets, device=device,
        size={"encoder": "HuBERT Base (random weights)", "layer": LAYER, "n_units": k,
              "utterances": n_utts, "audio_s": audio_s, "seconds_range": list(seconds),
              "full": args.full},
        peak_fp32_matmul_gflops=peak / 1e9)


if __name__ == "__main__":
    main()
