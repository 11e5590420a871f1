"""HuBERT-style pretraining at laptop scale: are SSL units and SSL encoders better than MFCC?

On the synthetic corpus (``spokenlm data synth`` / ``spokenlm demo``'s ``corpus/``), this
script

1. pretrains the tiny SSL encoder: iteration 1 on MFCC k-means targets, iteration 2 on
   k-means of iteration 1's layer ``--target-layer`` (``spokenlm ssl train``);
2. fine-tunes CTC ASR on a small labelled subset (``--labelled-minutes`` of train speakers)
   with characters: MFCC + a transformer adapter of the same size (no pretraining), SSL
   iteration 1, SSL iteration 2; scores WER/CER on held-out test speakers;
3. trains a CTC phoneme model on the SSL iteration-2 encoder, forced-aligns the test
   utterances (``spokenlm asr align``) and scores units (k-means ``--n-units`` on MFCC, SSL it1,
   SSL it2 features) with PNMI / phone purity against those alignments (``eval pnmi``),
   plus k-means inertia per frame, and phone ABX (within / across speaker, features and
   units) on a ZeroSpeech ``.item`` file made from the same alignments (``eval abx``);

then prints a markdown table and one JSON line (also ``<output>/results.json``). Every step
resumes, so a re-run only redoes what is missing.

    python benchmarks/ssl_units.py --corpus runs/demo/corpus --output runs/ssl_bench
    python benchmarks/ssl_units.py --smoke      # minutes -> seconds, numbers meaningless
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from spokenlm.asr.align import align_manifest
from spokenlm.asr.ctc_train import eval_asr, train_asr
from spokenlm.audio.manifest import read_manifest, write_manifest
from spokenlm.common.files import read_json
from spokenlm.eval.abx import evaluate_abx
from spokenlm.eval.abx_items import write_item_file
from spokenlm.eval.pnmi import evaluate_pnmi
from spokenlm.ssl import train_ssl
from spokenlm.tokenize import tokenize_manifest, train_tokenizer


def subset(src: Path, dst: Path, n: int | None = None, minutes: float | None = None) -> Path:
    rows, out, secs = read_manifest(src), [], 0.0
    for r in rows:
        if (n is not None and len(out) >= n) or (minutes is not None and secs >= 60 * minutes):
            break
        out.append(r)
        secs += float(r["duration"])
    return write_manifest(out, dst)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=Path("runs/demo/corpus"))
    p.add_argument("--output", type=Path, default=Path("runs/ssl_bench"))
    p.add_argument("--train-utterances", type=int, default=600)
    p.add_argument("--test-utterances", type=int, default=60)
    p.add_argument("--labelled-minutes", type=float, default=10.0)
    p.add_argument("--ssl-steps", type=int, default=400)
    p.add_argument("--ctc-steps", type=int, default=400)
    p.add_argument("--n-clusters", type=int, default=50)
    p.add_argument("--n-units", type=int, default=50)
    p.add_argument("--target-layer", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    a = p.parse_args(argv)
    if a.smoke:
        a.train_utterances, a.test_utterances, a.labelled_minutes = 24, 6, 0.5
        a.ssl_steps, a.ctc_steps, a.n_clusters, a.n_units = 10, 10, 10, 10
    torch.set_num_threads(a.threads)
    out, t0 = a.output, time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    train = subset(a.corpus / "train.jsonl", out / "data/train.jsonl", a.train_utterances)
    test = subset(a.corpus / "test.jsonl", out / "data/test.jsonl", a.test_utterances)
    labelled = subset(a.corpus / "train.jsonl", out / "data/labelled.jsonl",
                      minutes=a.labelled_minutes)
    ssl = dict(manifest=train, n_clusters=a.n_clusters, max_steps=a.ssl_steps,
               warmup_steps=max(1, a.ssl_steps // 10), batch_size=8, max_seconds=3.0,
               lr=1e-3, save_every=max(1, a.ssl_steps // 2), device=a.device)
    t = time.perf_counter()
    it1 = train_ssl(output=out / "ssl_it1", target_encoder="mfcc", **ssl)
    times["ssl_it1_s"] = time.perf_counter() - t
    t = time.perf_counter()
    it2 = train_ssl(output=out / "ssl_it2", target_encoder="hubert", target_encoder_path=it1,
                    target_layer=a.target_layer, **ssl)
    times["ssl_it2_s"] = time.perf_counter() - t

    ctc = dict(manifest=labelled, max_steps=a.ctc_steps, warmup_steps=max(1, a.ctc_steps // 10),
               freeze_encoder_steps=a.ctc_steps // 4, batch_size=8, lr=1e-3,
               save_every=max(1, a.ctc_steps // 2), device=a.device)
    rows: dict[str, dict] = {}
    for name, enc in [("mfcc", {"encoder": "mfcc"}),
                      ("ssl_it1", {"encoder": "hubert", "encoder_path": it1}),
                      ("ssl_it2", {"encoder": "hubert", "encoder_path": it2})]:
        t = time.perf_counter()
        final = train_asr(output=out / f"ctc_{name}", **enc, **ctc)
        m = eval_asr(model=final, manifest=test, output=out / f"ctc_{name}/test_metrics.json")
        rows[name] = {"wer": m["wer"], "cer": m["cer"], "ctc_s": time.perf_counter() - t}

    phone_model = train_asr(output=out / "ctc_phonemes_it2", encoder="hubert",
                            encoder_path=it2, unit="phonemes", **ctc)
    labels = align_manifest(manifest=test, aligner=f"spokenlm-ctc:{phone_model}",
                            output=out / "align_test.jsonl")
    items = write_item_file(labels, {r["id"]: r for r in read_manifest(test)},
                            out / "test.item")
    for name, enc in [("mfcc", {"encoder": "mfcc"}),
                      ("ssl_it1", {"encoder": "hubert", "encoder_path": it1,
                                   "layer": a.target_layer}),
                      ("ssl_it2", {"encoder": "hubert", "encoder_path": it2,
                                   "layer": a.target_layer})]:
        tok = out / f"tok_{name}"
        if not (tok / "config.json").exists():
            train_tokenizer(manifest=train, output=tok, n_units=a.n_units, device=a.device,
                            **enc)
        units = out / f"units_{name}/test.jsonl"
        if not units.exists():
            tokenize_manifest(manifest=test, tokenizer=tok, output=units, dedup=False,
                              pack=False, shard="0/1", device=a.device)
        pn = evaluate_pnmi(units=units, labels=labels, ignore=["sil"],
                           output=out / f"units_{name}/pnmi.json")
        abx_json = out / f"units_{name}/abx_phone.json"
        abx = read_json(abx_json) if abx_json.exists() else evaluate_abx(
            tokenizer=tok, item_file=items, manifest=test, output=abx_json,
            representations=["features", "units"])
        stats = read_json(tok / "kmeans_stats.json")
        rows[name].update({k: pn.get(k) for k in ("pnmi", "phone_purity", "cluster_purity")},
                          inertia_per_frame=stats["inertia_per_frame"],
                          abx={rep: abx[rep] for rep in ("features", "units") if rep in abx})
    result = {"benchmark": "ssl_units", "corpus": str(a.corpus), "rows": rows,
              "ssl_final": {n: read_json(out / f"ssl_{n}/metrics.json") for n in ("it1", "it2")},
              "sizes": {"train_utterances": a.train_utterances, "labelled_minutes":
                        a.labelled_minutes, "test_utterances": a.test_utterances,
                        "ssl_steps": a.ssl_steps, "ctc_steps": a.ctc_steps,
                        "n_clusters": a.n_clusters, "n_units": a.n_units},
              "times": {**times, "total_s": time.perf_counter() - t0}}
    print("| encoder | WER | CER | PNMI | phone purity | cluster purity | ABX within/across "
          "features | ABX within/across units |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        ab = {rep: f"{v.get('within', float('nan')):.3f} / {v.get('across', float('nan')):.3f}"
              for rep, v in r["abx"].items()}
        print(f"| {name} | {r['wer']:.3f} | {r['cer']:.3f} | {r['pnmi']:.3f} | "
              f"{r['phone_purity']:.3f} | {r['cluster_purity']:.3f} | "
              f"{ab.get('features', '-')} | {ab.get('units', '-')} |")
    print(json.dumps(result, default=str))
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
