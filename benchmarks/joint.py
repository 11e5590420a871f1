"""Joint speech-text pretraining at laptop scale: does unpaired text help CTC ASR?

On the synthetic corpus (``spokenlm data synth`` / ``spokenlm demo``'s ``corpus/``):

1. subsets: unlabelled speech (``--train-utterances`` of the train speakers), a labelled
   subset (``--labelled-minutes``; the paired data), held-out test speakers;
   unpaired text: grammar sentences with another seed, the speech's transcripts removed;
2. SpeechLM-P's speech tokenizer: a CTC phoneme model on the labelled subset (MFCC +
   adapter, no pretraining, so it uses only the paired data) forced-aligns the speech
   (``spokenlm asr align``); SpeechLM-H's: MFCC k-means (``--n-clusters``) + a text-to-unit
   model trained on the labelled subset with its alignments (``spokenlm joint t2u train``);
3. pretraining with the same number of steps (``--pretrain-steps``) and the same depth
   (4 layers: 2 speech + 2 shared; HuBERT: 4): speech-only HuBERT-style (MFCC targets),
   SpeechLM-P, SpeechLM-P without random swapping, SpeechLM-H, SLAM (all losses from the
   start), SLAM staged (alignment losses after half the steps), SLAM without TLM/STM;
4. CTC fine-tuning of each (plus MFCC + adapter, no pretraining) on the labelled subset
   (``--ctc-steps``), WER/CER on the test speakers.

Prints a markdown table and one JSON line (also ``<output>/results.json``). Each stage
resumes, so a re-run only redoes what is missing.

    python benchmarks/joint.py --corpus runs/demo/corpus --output runs/joint_bench
    python benchmarks/joint.py --smoke     # seconds; numbers meaningless
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from spokenlm.asr.align import align_manifest
from spokenlm.asr.ctc_train import eval_asr, train_asr
from spokenlm.audio.manifest import read_manifest, write_manifest
from spokenlm.common.files import read_json
from spokenlm.joint.slam_train import train_slam
from spokenlm.joint.speechlm_train import train_speechlm
from spokenlm.joint.t2u_train import train_t2u
from spokenlm.ssl import train_ssl
from spokenlm.ssl.targets import TargetSpec, make_targets


def subset(src: Path, dst: Path, n: int | None = None, minutes: float | None = None,
           skip: int = 0) -> Path:
    rows, out, secs = read_manifest(src)[skip:], [], 0.0
    for r in rows:
        if (n is not None and len(out) >= n) or (minutes is not None and secs >= 60 * minutes):
            break
        out.append(r)
        secs += float(r["duration"])
    return write_manifest(out, dst)


def _done(path: Path) -> bool:
    return (path / "config.json").exists()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=Path("runs/demo/corpus"))
    p.add_argument("--output", type=Path, default=Path("runs/joint_bench"))
    p.add_argument("--train-utterances", type=int, default=600)
    p.add_argument("--test-utterances", type=int, default=60)
    p.add_argument("--labelled-minutes", type=float, default=10.0)
    p.add_argument("--text-sentences", type=int, default=2000)
    p.add_argument("--pretrain-steps", type=int, default=400)
    p.add_argument("--ctc-steps", type=int, default=400)
    p.add_argument("--aligner-steps", type=int, default=400)
    p.add_argument("--t2u-steps", type=int, default=300)
    p.add_argument("--n-clusters", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", nargs="*", default=None, help="systems to run (default: all)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    a = p.parse_args(argv)
    if a.smoke:
        a.train_utterances, a.test_utterances, a.labelled_minutes = 16, 4, 0.4
        a.pretrain_steps = a.ctc_steps = a.aligner_steps = a.t2u_steps = 2
        a.text_sentences, a.n_clusters, a.batch_size = 40, 10, 4
    torch.set_num_threads(a.threads)
    out, t0 = a.output, time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    d = out / "data"
    labelled = subset(a.corpus / "train.jsonl", d / "labelled.jsonl", minutes=a.labelled_minutes)
    n_lab = len(read_manifest(labelled))
    train = subset(a.corpus / "train.jsonl", d / "train.jsonl", a.train_utterances)
    test = subset(a.corpus / "test.jsonl", d / "test.jsonl", a.test_utterances)
    steps = a.pretrain_steps
    common = dict(max_steps=steps, warmup_steps=max(1, steps // 10), batch_size=a.batch_size,
                  max_seconds=3.0, lr=1e-3, save_every=max(1, steps // 2), device=a.device)
    ctc = dict(manifest=labelled, max_steps=a.ctc_steps, warmup_steps=max(1, a.ctc_steps // 10),
               freeze_encoder_steps=a.ctc_steps // 4, batch_size=8, lr=1e-3,
               save_every=max(1, a.ctc_steps // 2), device=a.device)
    times: dict[str, float] = {}

    def timed(name: str, fn, **kw):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        result = fn(**kw)
        times[name] = round(time.perf_counter() - t, 1)
        return result

    # tokenizers: phone aligner (P), MFCC k-means + text-to-unit (H)
    aligner = out / "aligner/final"
    if not _done(aligner):
        timed("aligner", train_asr, output=out / "aligner", encoder="mfcc", unit="phonemes",
              **{**ctc, "max_steps": a.aligner_steps})
    ali_train, ali_lab = out / "align_train.jsonl", out / "align_labelled.jsonl"
    for manifest, dst in ((train, ali_train), (labelled, ali_lab)):
        if not dst.exists():
            align_manifest(manifest=manifest, aligner=f"spokenlm-ctc:{aligner}", output=dst)
    tok, (_, lab_units) = make_targets([train, labelled], out / "hidden_units",
                                       TargetSpec("mfcc", n_clusters=a.n_clusters,
                                                  device=a.device))
    t2u = out / "t2u/final"
    if not _done(t2u):
        timed("t2u", train_t2u, manifest=labelled, output=out / "t2u", units=lab_units,
              alignments=ali_lab, max_steps=a.t2u_steps, warmup_steps=max(1, a.t2u_steps // 10),
              device=a.device)

    text = dict(text_sentences=a.text_sentences)
    systems = {
        "hubert": lambda o: train_ssl(manifest=train, output=o, layers=4,
                                      n_clusters=a.n_clusters, **common),
        "speechlm_p": lambda o: train_speechlm(manifest=train, output=o, variant="P",
                                               alignments=ali_train, **text, **common),
        "speechlm_p_noswap": lambda o: train_speechlm(manifest=train, output=o, variant="P",
                                                      alignments=ali_train, swap_prob=0.0,
                                                      **text, **common),
        "speechlm_h": lambda o: train_speechlm(manifest=train, output=o, variant="H", t2u=t2u,
                                               targets=tok, **text, **common),
        "slam": lambda o: train_slam(manifest=train, output=o, paired_manifest=labelled,
                                     **text, **common),
        "slam_staged": lambda o: train_slam(manifest=train, output=o, paired_manifest=labelled,
                                            schedule="staged", alignment_start=steps // 2,
                                            **text, **common),
        "slam_no_tlm_stm": lambda o: train_slam(manifest=train, output=o,
                                                paired_manifest=labelled, tlm=False, stm=False,
                                                **text, **common),
    }
    rows: dict[str, dict] = {}
    for name in ["mfcc_no_pretraining", *systems]:
        if a.only is not None and name not in a.only:
            continue
        if name == "mfcc_no_pretraining":
            enc: dict = {"encoder": "mfcc"}
        else:
            t = time.perf_counter()
            final = systems[name](out / f"pre_{name}")
            times[f"pretrain_{name}"] = round(time.perf_counter() - t, 1)
            if name.startswith("speechlm"):
                enc = {"encoder": "hubert", "encoder_path": final / "speech_encoder"}
            elif name.startswith("slam"):
                enc = {"encoder": "joint", "encoder_path": final}
            else:
                enc = {"encoder": "hubert", "encoder_path": final}
        t = time.perf_counter()
        model = train_asr(output=out / f"ctc_{name}", **enc, **ctc)
        m = eval_asr(model=model, manifest=test, output=out / f"ctc_{name}/test_metrics.json")
        times[f"ctc_{name}"] = round(time.perf_counter() - t, 1)
        pre = out / f"pre_{name}/metrics.json"
        rows[name] = {"wer": m["wer"], "cer": m["cer"],
                      "pretrain_s": read_json(pre).get("train_seconds") if pre.exists() else 0}
    result = {"benchmark": "joint", "smoke": a.smoke, "corpus": str(a.corpus), "rows": rows,
              "sizes": {"train_utterances": a.train_utterances, "labelled_utterances": n_lab,
                        "labelled_minutes": a.labelled_minutes, "test_utterances":
                        a.test_utterances, "text_sentences": a.text_sentences,
                        "pretrain_steps": steps, "ctc_steps": a.ctc_steps,
                        "n_clusters": a.n_clusters},
              "times": {**times, "total_s": round(time.perf_counter() - t0, 1)}}
    print(f"{'SMOKE RUN (numbers meaningless) ' if a.smoke else ''}CTC on "
          f"{a.labelled_minutes} min labelled, {steps} pretraining steps")
    print("| system | WER | CER | pretrain s |")
    print("| --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['wer']:.3f} | {r['cer']:.3f} | {r['pretrain_s'] or 0:.0f} |")
    print(json.dumps(result, default=str))
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
