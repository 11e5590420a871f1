"""``spokenlm lm dpo``: the DPO loss against a hand computation on a tiny LM, the prompt left
unscored, learning a toy preference, exact resume after a kill, and audio / units pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from spokenlm.common.errors import InputError
from spokenlm.common.files import write_jsonl
from spokenlm.training import checkpoints as saving
from spokenlm.lm.dpo import DPOOptions, train_dpo
from spokenlm.lm.dpo_loss import (collate, continuation_logps, dpo_loss,
                                  encode_pair, pair_logps, reference_logps)
from spokenlm.lm.model import UnitLM
from spokenlm.lm.preference_data import PreferencePair, read_pairs
from spokenlm.testing.lm import save_tiny_unit_lm, tiny_unit_lm

N_UNITS = 12  # BOS 12, EOS 13, PAD 14
CPU = torch.device("cpu")
FAST = dict(precision="fp32", device="cpu", warmup_steps=1, log_every=1)
PAIRS = [PreferencePair("a", [1, 2, 3], [4, 5], [6, 7, 8]),
         PreferencePair("b", [], [9], [10, 11, 0, 1]),
         PreferencePair("c", [5, 5, 6, 7, 8, 9, 10], [2, 3, 2], [3])]


def _by_hand(lm: UnitLM, context: list[int], ending: list[int]) -> float:
    """log p(ending | context): one unpadded forward, log-softmax written out, in float64."""
    ids = torch.tensor([context + ending])
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[0].double()  # (T, V)
    total = 0.0
    for t in range(len(context), ids.shape[1]):
        row = logits[t - 1]
        total += float(row[ids[0, t]] - torch.logsumexp(row, dim=0))
    return total


def test_dpo_loss_matches_a_hand_computation() -> None:
    policy = tiny_unit_lm(N_UNITS, seed=0, initializer_range=0.3)
    ref = tiny_unit_lm(N_UNITS, seed=1, initializer_range=0.3)
    beta = 0.5
    items = [encode_pair(policy, p) for p in PAIRS]
    for pair, it in zip(PAIRS, items):  # BOS + prompt is context; units + EOS are scored
        assert it.context == [12, *pair.prompt]
        assert (it.chosen, it.rejected) == ([*pair.chosen, 13], [*pair.rejected, 13])
    losses, chosen_rewards, rejected_rewards = [], [], []
    for it in items:
        pc, pr = _by_hand(policy, it.context, it.chosen), _by_hand(policy, it.context, it.rejected)
        rc, rr = _by_hand(ref, it.context, it.chosen), _by_hand(ref, it.context, it.rejected)
        z = beta * ((pc - rc) - (pr - rr))
        losses.append(-math.log(1.0 / (1.0 + math.exp(-z))))
        chosen_rewards.append(beta * (pc - rc))
        rejected_rewards.append(beta * (pr - rr))
    policy.model.eval()
    chosen, rejected = pair_logps(policy.model, items, policy.pad_id, CPU)  # one padded batch
    ref_lp = reference_logps(ref.model, items, ref.pad_id, CPU, batch_size=2)  # (3, 2)
    loss, cr, rr = dpo_loss(chosen, rejected, ref_lp[:, 0], ref_lp[:, 1], beta)
    assert float(loss.detach()) == pytest.approx(sum(losses) / len(losses), abs=1e-5)
    assert cr.tolist() == pytest.approx(chosen_rewards, abs=1e-5)
    assert rr.tolist() == pytest.approx(rejected_rewards, abs=1e-5)
    assert len({round(x, 3) for x in losses}) == 3 and abs(sum(losses) / 3 - math.log(2)) > 1e-3
    loss.backward()  # the loss is differentiable in the policy only
    assert policy.model.lm_head.weight.grad is not None
    assert all(p.grad is None for p in ref.model.parameters())


def test_prompt_tokens_are_not_scored() -> None:
    lm = tiny_unit_lm(N_UNITS, seed=3, initializer_range=0.3)
    pair = PAIRS[0]
    ids, attention, scored = collate([encode_pair(lm, pair)], lm.pad_id)
    assert scored[0].tolist() == [False] * 3 + [True] * 3 + [False]  # BOS 1 2 3 | 4 5 EOS | pad
    with torch.no_grad():
        got = continuation_logps(lm.model, ids, attention, scored)[0]
    whole = lm.log_likelihood([pair.prompt + pair.chosen], add_eos=True)[0]
    assert float(got) == pytest.approx(float(whole.per_token[len(pair.prompt):].sum()), abs=1e-5)
    assert abs(float(got) - whole.sum) > 0.1  # the prompt's own tokens would change the sum
    other = PreferencePair("x", [7, 7, 7], pair.chosen, pair.rejected)
    assert not torch.equal(pair_logps(lm.model, [encode_pair(lm, other)], lm.pad_id, CPU)[0],
                           got[None])  # ... though the prompt conditions it
    long = PreferencePair("long", list(range(10)), [1], [2])
    assert encode_pair(lm, long, max_prompt_tokens=4).context == [12, 7, 8, 9]
    assert encode_pair(lm, long, max_length=12).chosen == [1]
    assert isinstance(encode_pair(lm, long, max_length=11), str)  # no room for the ending
    assert isinstance(encode_pair(lm, PreferencePair("e", [1], [], []), score_eos=False), str)


def _toy_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """Chosen continuations use units 0-5, rejected ones 6-11: learnable from the units."""
    rng = np.random.default_rng(seed)
    rows = [{"id": f"p{i}", "prompt_units": rng.integers(0, N_UNITS, 4).tolist(),
             "chosen_units": rng.integers(0, 6, 6).tolist(),
             "rejected_units": rng.integers(6, 12, 6).tolist()} for i in range(n)]
    return write_jsonl(path, rows)


@pytest.fixture()
def lm_dir(tmp_path: Path) -> Path:
    return save_tiny_unit_lm(tmp_path / "lm", n_units=N_UNITS, seed=0)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_dpo_learns_a_toy_preference(tmp_path: Path, lm_dir: Path) -> None:
    pairs = _toy_pairs(tmp_path / "pairs.jsonl", 48)
    run = tmp_path / "run"
    final = train_dpo(pairs=pairs, lm=lm_dir, output=run, max_steps=24, batch_size=8,
                      lr=3e-3, beta=0.1, valid_fraction=0.25, eval_every=8, save_every=12,
                      **FAST)
    rows = _log(run)
    assert [r["step"] for r in rows] == list(range(1, 25))
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy = reference
    assert rows[0]["margin"] == pytest.approx(0.0, abs=1e-4)
    margins = [r["margin"] for r in rows]
    assert np.mean(margins[-4:]) > np.mean(margins[:4]) + 0.5
    assert np.mean([r["accuracy"] for r in rows[-4:]]) == 1.0
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert {"chosen_reward", "rejected_reward", "lr", "valid_accuracy"} <= set(rows[7])
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["train_pairs"], metrics["valid_pairs"], metrics["steps"]) == (36, 12, 24)
    assert metrics["valid"]["accuracy"] == 1.0 and metrics["valid"]["margin"] > 1.0
    assert metrics["valid"]["logp_accuracy"] == 1.0
    assert metrics["reference"]["valid_logp_accuracy"] < 0.9  # the start did not prefer them
    lm = UnitLM.from_pretrained(final)
    assert (lm.n_units, lm.bos_id, lm.add_bos) == (N_UNITS, 12, True)
    before = UnitLM.from_pretrained(lm_dir)
    def preference(m: UnitLM) -> float:  # log p(low units | prompt) - log p(high units | prompt)
        low, high = m.log_likelihood([[1, 2, 3, 0, 1, 2], [1, 2, 3, 6, 7, 8]])
        return low.sum - high.sum

    assert preference(lm) > preference(before) + 1.0
    train_dpo(pairs=pairs, lm=lm_dir, output=run, max_steps=24, batch_size=8, lr=3e-3,
              valid_fraction=0.25, eval_every=8, save_every=12, **FAST)  # finished: no-op
    assert len(_log(run)) == 24
    with pytest.raises(InputError, match="--resume"):
        train_dpo(pairs=pairs, lm=lm_dir, output=run, max_steps=24, resume=False, **FAST)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing catches it."""


def test_killed_run_resumes_exactly(tmp_path: Path, lm_dir: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _toy_pairs(tmp_path / "pairs.jsonl", 20)
    opts = dict(pairs=pairs, lm=lm_dir, max_steps=8, batch_size=6, lr=2e-3, save_every=3,
                eval_every=4, valid_fraction=0.2, **FAST)  # 16 pairs: epochs wrap mid-batch
    full = train_dpo(output=tmp_path / "a", **opts)
    real = saving.save_checkpoint  # where the training loop saves

    def save_or_die(ckpt_dir, step, *args, **kwargs):
        if step > 3:  # steps 4-6 are done and logged, then lost
            raise Killed
        return real(ckpt_dir, step, *args, **kwargs)

    monkeypatch.setattr(saving, "save_checkpoint", save_or_die)
    run = tmp_path / "b"
    with pytest.raises(Killed):
        train_dpo(output=run, **opts)
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000003"
    assert _log(run)[-1]["step"] == 6
    monkeypatch.setattr(saving, "save_checkpoint", real)
    resumed = train_dpo(output=run, **opts)
    wa, wb = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "pairs_per_s"} for r in rows]

    assert strip(_log(run)) == strip(_log(tmp_path / "a"))
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert (a["train"], a["valid"], a["steps"]) == (b["train"], b["valid"], b["steps"])


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MFCC + k-means tokenizer with N_UNITS units."""
    from spokenlm.testing.audio import random_speech_like_wav
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), N_UNITS, seed=0)
    return SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(
        tmp_path_factory.mktemp("tok") / "tokenizer")


def test_audio_pairs_as_bench_build_writes_them(tmp_path: Path, tokenizer_dir: Path,
                                                lm_dir: Path) -> None:
    from spokenlm.audio.load import load_audio
    from spokenlm.testing.audio import write_wav_folder
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    bench = tmp_path / "preference"
    wavs = write_wav_folder(bench / "wavs", n=6, seconds=(0.3, 0.6))
    (bench / "wavs" / "broken.wav").write_bytes(b"RIFF....not audio")
    ids = [f"u{i}" for i in range(6)] + ["broken"]
    write_jsonl(bench / "manifest.jsonl", [{"id": i, "path": f"wavs/{p.name}"} for i, p in
                                           zip(ids, [*wavs, bench / "wavs" / "broken.wav"])])
    write_jsonl(bench / "pairs.jsonl", [
        {"id": "s0", "prompt": "u0", "chosen": "u1", "rejected": "u2", "prompt_text": "a",
         "chosen_text": "b", "rejected_text": "c"},
        {"id": "s1", "prompt": "u3", "chosen": "u4", "rejected": "u5"},
        {"id": "s2", "prompt": None, "chosen": "u4", "rejected": "u1"},
        {"id": "s3", "prompt": "u0", "chosen": "broken", "rejected": "u1"},
        {"id": "s4", "prompt_units": [1], "chosen_units": [2], "rejected_units": [3]}])
    tok = SpeechTokenizer.from_pretrained(tokenizer_dir, device="cpu")
    data = read_pairs(bench, N_UNITS, tok)
    units = {f"u{i}": tok.encode(load_audio(w), dedup=True).units.tolist()
             for i, w in enumerate(wavs)}
    assert [p.id for p in data.pairs] == ["s0", "s1", "s2", "s4"] and list(data.skipped) == ["s3"]
    assert data.pairs[0] == PreferencePair("s0", units["u0"], units["u1"], units["u2"])
    assert data.pairs[2].prompt == [] and data.pairs[2].chosen == units["u4"]
    write_jsonl(tmp_path / "slamkit.jsonl", [  # slamkit's paths form, relative to the file
        {"prompt_path": "preference/wavs/utt000.wav", "chosen_path": str(wavs[1]),
         "rejected_path": "preference/wavs/utt002.wav"}])
    assert read_pairs(tmp_path / "slamkit.jsonl", N_UNITS, tok).pairs[0] == \
        PreferencePair("pair1", units["u0"], units["u1"], units["u2"])
    with pytest.raises(InputError, match="--tokenizer"):
        read_pairs(bench, N_UNITS, None)
    run = tmp_path / "run"
    final = train_dpo(pairs=bench, lm=lm_dir, tokenizer=tokenizer_dir, output=run, max_steps=2,
                      batch_size=2, valid_fraction=0.0, **FAST)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["train_pairs"], metrics["pairs_skipped"]) == (4, 1)
    assert "s3" in metrics["skipped"] and (final / "spokenlm_lm.json").exists()


def test_bad_pairs_and_mismatched_models(tmp_path: Path, lm_dir: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"prompt_units": [1], "chosen_units": [2], "rejected_units": [3]},
        {"prompt_units": [1], "chosen_units": [20], "rejected_units": [3]}])
    with pytest.raises(InputError, match=r"bad.jsonl:2 chosen_units: unit 20 is outside"):
        read_pairs(bad, N_UNITS)
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"prompt_units": [1], "chosen_units": [2]}])
    with pytest.raises(InputError, match="odd.jsonl:1: a pair needs"):
        read_pairs(odd, N_UNITS)
    ids = write_jsonl(tmp_path / "ids" / "pairs.jsonl", [{"prompt": "a", "chosen": "b",
                                                          "rejected": "c"}])
    with pytest.raises(InputError, match="manifest.jsonl is missing"):
        read_pairs(ids.parent, N_UNITS, "tokenizer")
    with pytest.raises(InputError, match="pairs not found"):
        read_pairs(tmp_path / "nothing", N_UNITS)
    pairs = _toy_pairs(tmp_path / "pairs.jsonl", 4)
    other = save_tiny_unit_lm(tmp_path / "lm20", n_units=20)
    with pytest.raises(InputError, match="--ref-lm"):
        train_dpo(pairs=pairs, lm=lm_dir, ref_lm=other, output=tmp_path / "r", **FAST)
    with pytest.raises(InputError, match="β must be > 0"):
        train_dpo(pairs=pairs, lm=lm_dir, output=tmp_path / "r2", beta=0.0, **FAST)


def test_options_follow_slam() -> None:
    opts = DPOOptions(pairs=Path("p"), lm=Path("l"), output=Path("o"))
    t = opts.trainer
    assert (opts.beta, t.lr, t.min_lr_ratio, t.clip_grad, opts.batch_size) == \
        (0.1, 5e-5, 1.0, 0.5, 8)
    assert t.max_steps is None and opts.score_eos and opts.ref_lm is None

