"""Vocoding speed: real-time factor (synthesis seconds / audio seconds) of spokenlm's two
vocoders on the same unit sequences, same process.

- spokenlm fast vocoder (``vocoder/fast.py``, size ``base``): units -> log-mel by dilated
  convs -> pseudo-inverse mel -> Griffin-Lim (32 momentum iterations).
- unit HiFi-GAN V1 (``vocoder/hifigan.py``, size ``v1``): the generator of the public
  recipe GSLM / textlesslib / speech-resynthesis use (``CodeGenerator``, Polyak et al. 2021:
  HiFi-GAN V1, upsampling 5x4x4x2x2 = 320, 512 initial channels, MRF kernels 3/7/11),
  reported as the baseline: it is what users run today for units -> speech.

Weights are random (speed does not depend on them); 500 units; utterances of deduplicated
units with durations of 1-5 frames, synthesised one utterance at a time through
``VocoderModel.synthesize`` (as the CLI does). RTF < 1 is faster than real time.

Bar (issue 6): report the RTF of both on 2 cores (no ratio bar); ``meets_bar`` says
whether the fast vocoder runs faster than real time.

    python benchmarks/bench_vocoder.py [--full] [--device cuda] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, log, parser, setup, timed  # noqa: E402


def make_utterances(n: int, frames: int, n_units: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        units, durations = [], []
        while sum(durations) < frames:
            u = int(rng.integers(n_units))
            if units and u == units[-1]:
                continue
            units.append(u)
            durations.append(int(min(rng.integers(1, 6), frames - sum(durations))))
        out.append((units, durations))
    return out


def rtf(model, utts, device) -> tuple[float, float, int]:
    model.synthesize(*utts[0])  # warm up
    wavs, seconds = timed(lambda: [model.synthesize(u, d) for u, d in utts], device)
    samples = sum(len(w) for w in wavs)
    return seconds / (samples / model.sample_rate), seconds, samples


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__)
    p.add_argument("--utterances", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None, help="audio per utterance")
    p.add_argument("--n-units", type=int, default=500)
    args = p.parse_args(argv)
    device = setup(args)
    n = args.utterances or (12 if args.full else 3)
    secs = args.seconds or 5.0
    utts = make_utterances(n, int(secs * 50), args.n_units, args.seed)

    import torch

    from spokenlm.vocoder.fast import FastVocoder
    from spokenlm.vocoder.hifigan import UnitHifiGan

    torch.manual_seed(args.seed)
    fast = FastVocoder.build("base", args.n_units).to(device).eval()
    hifi = UnitHifiGan.build("v1", args.n_units).to(device).eval()
    log(f"{n} utterances x {secs} s; fast vocoder")
    r_fast, t_fast, s_fast = rtf(fast, utts, device)
    log(f"  RTF {r_fast:.3f}; HiFi-GAN V1")
    r_hifi, t_hifi, s_hifi = rtf(hifi, utts, device)
    log(f"  RTF {r_hifi:.3f}")
    expected = sum(sum(d) for _, d in utts) * 320
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in
              (("fast", fast), ("hifigan_v1", hifi))}
    return emit(
        "vocoder",
        spokenlm={"fast_rtf": r_fast, "fast_seconds": t_fast, "fast_params": params["fast"]},
        baseline={"hifigan_v1_rtf": r_hifi, "hifigan_v1_seconds": t_hifi,
                  "hifigan_v1_params": params["hifigan_v1"]},
        ratio=r_hifi / r_fast, outputs_agree=bool(s_fast == s_hifi == expected),
        agreement="both give sum(durations) * 320 samples" if s_fast == s_hifi == expected
        else f"sample counts differ: fast {s_fast}, hifigan {s_hifi}, expected {expected}",
        bar="report RTF of both; fast vocoder faster than real time (RTF < 1)",
        meets_bar=bool(r_fast < 1), device=device,
        size={"utterances": n, "seconds_each": secs, "audio_s": s_fast / 16000,
              "n_units": args.n_units, "full": args.full})


if __name__ == "__main__":
    main()
