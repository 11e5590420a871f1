"""One training step of each recipe end to end, save/load round trips, CTC on the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.asr.ctc_model import CTCConfig, CTCModel
from spokenlm.asr.ctc_train import ctc_loss
from spokenlm.asr.text import Vocab
from spokenlm.common.files import read_json, read_jsonl
from spokenlm.joint.slam import SLAMModel
from spokenlm.joint.slam_train import train_slam
from spokenlm.joint.speechlm import SpeechLMModel
from spokenlm.joint.speechlm_train import train_speechlm
from spokenlm.joint.t2u_train import train_t2u
from spokenlm.ssl.model import normalize_wav
from spokenlm.testing.checkpoints import truncate_checkpoint
from spokenlm.tokenize.encoders import build_encoder

TINY = dict(hidden=32, heads=2, conv_dim=16, batch_size=3, text_batch_size=3,
            max_seconds=0.6, warmup_steps=1, device="cpu", log_every=1)
WAV = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32))


def ctc_step(encoder: dict) -> float:
    """One CTC fine-tuning step on ``encoder``; returns the loss."""
    vocab = Vocab(["<blank>", "a", "b", "|"], "chars")
    model = CTCModel(CTCConfig(encoder=encoder), vocab)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    lp, frames = model(WAV, torch.tensor([8000, 8000]))
    loss = ctc_loss(lp, frames, [[1, 2], [2, 3, 1]])
    loss.backward()
    opt.step()
    return float(loss.detach())


@pytest.fixture(scope="module")
def speechlm_p(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("slm_p")
    return train_speechlm(manifest=corpus["manifest"], output=out, variant="P",
                          alignments=corpus["alignments"], text_file=corpus["text"],
                          max_steps=1, swap_prob=0.3, **TINY)


def test_speechlm_p_one_step(speechlm_p: Path) -> None:
    row = read_jsonl(speechlm_p.parent / "log.jsonl")[-1]
    for key in ("umlm_speech", "umlm_shared", "uctc", "swap_rate"):
        assert np.isfinite(row[key]), key
    assert 0 < row["swap_rate"] < 1
    text = read_jsonl(speechlm_p.parent / "text_units.jsonl")
    assert len(text) == 4 and all(len(r["units"]) >= len(r["text"].split()) for r in text)
    inventory = read_json(speechlm_p.parent / "phone_inventory.json")
    assert inventory[0] == "sil" and max(max(r["units"]) for r in text) < len(inventory)


def test_speechlm_round_trip_and_export(speechlm_p: Path) -> None:
    from transformers import HubertModel

    model = SpeechLMModel.from_pretrained(speechlm_p)
    again = SpeechLMModel.from_pretrained(model.save_pretrained(speechlm_p.parent / "copy"))
    ref = model.run_shared(model.speech_hidden(WAV))
    assert torch.allclose(ref, again.run_shared(again.speech_hidden(WAV)))
    hf = HubertModel.from_pretrained(str(speechlm_p / "speech_encoder")).eval()
    assert len(hf.encoder.layers) == 4  # 2 speech + 2 shared
    assert torch.allclose(hf(normalize_wav(WAV)).last_hidden_state, ref, atol=1e-5)


def test_ctc_on_speechlm_encoders(speechlm_p: Path) -> None:
    path = str(speechlm_p / "speech_encoder")
    assert np.isfinite(ctc_step({"name": "hubert", "path": path, "layer": 4}))
    assert np.isfinite(ctc_step({"name": "joint", "path": str(speechlm_p)}))


def test_speechlm_h_one_step(corpus: dict, tmp_path: Path) -> None:
    from spokenlm.ssl.targets import TargetSpec, make_targets

    tok, (units,) = make_targets([corpus["manifest"]], tmp_path / "targets",
                                 TargetSpec("mfcc", n_clusters=6, device="cpu"))
    t2u = train_t2u(manifest=corpus["manifest"], output=tmp_path / "t2u", units=units,
                    hidden=16, layers=1, max_steps=2, warmup_steps=1, device="cpu")
    final = train_speechlm(manifest=corpus["manifest"], output=tmp_path / "h", variant="H",
                           t2u=t2u, targets=tok, text_file=corpus["text"], max_steps=1, **TINY)
    model = SpeechLMModel.from_pretrained(final)
    assert model.config.n_units == 6 and model.config.variant == "H"
    row = read_jsonl(tmp_path / "h/log.jsonl")[-1]
    assert np.isfinite(row["loss"]) and np.isfinite(row["uctc"])


@pytest.mark.parametrize("schedule", ["all", "staged"])
def test_slam_schedules(schedule: str, corpus: dict, tmp_path: Path) -> None:
    final = train_slam(manifest=corpus["manifest"], output=tmp_path / schedule,
                       paired_manifest=corpus["manifest"], text_file=corpus["text"],
                       schedule=schedule, alignment_start=1, max_steps=2, code_entries=8,
                       paired_batch_size=3, speech_layers=1, shared_layers=1, **TINY)
    log = read_jsonl(tmp_path / schedule / "log.jsonl")
    assert [("tlm_text" in r, "stm" in r) for r in log] == \
        ([(True, True)] * 2 if schedule == "all" else [(False, False), (True, True)])
    for key in ("contrastive", "code_mlm", "text_mlm"):
        assert np.isfinite(log[-1][key])
    model = SLAMModel.from_pretrained(final)
    again = SLAMModel.from_pretrained(model.save_pretrained(tmp_path / "copy"))
    assert torch.allclose(model.speech_path(WAV)[0], again.speech_path(WAV)[0])
    enc = build_encoder({"name": "joint", "path": str(final)})
    assert enc(WAV).shape == (2, 24, 32) and enc.num_frames(8000) == 24
    assert np.isfinite(ctc_step({"name": "joint", "path": str(final)}))


def test_slam_ablation_without_tlm_stm(corpus: dict, tmp_path: Path) -> None:
    train_slam(manifest=corpus["manifest"], output=tmp_path / "abl",
               paired_manifest=corpus["manifest"], text_file=corpus["text"], tlm=False,
               stm=False, max_steps=1, code_entries=8, speech_layers=1, shared_layers=1, **TINY)
    row = read_jsonl(tmp_path / "abl/log.jsonl")[-1]
    assert "tlm_text" not in row and "stm" not in row and "contrastive" in row


def test_errors_name_the_fix(corpus: dict, tmp_path: Path) -> None:
    from spokenlm.common.errors import InputError

    with pytest.raises(InputError, match="--alignments"):
        train_speechlm(manifest=corpus["manifest"], output=tmp_path / "x", variant="P",
                       text_file=corpus["text"], max_steps=1, **TINY)
    with pytest.raises(InputError, match="--t2u"):
        train_speechlm(manifest=corpus["manifest"], output=tmp_path / "y", variant="H",
                       text_file=corpus["text"], max_steps=1, **TINY)
    with pytest.raises(InputError, match="joint model dir"):
        build_encoder({"name": "joint", "path": str(tmp_path)})


def test_speechlm_resumes_exactly(corpus: dict, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    kw = dict(manifest=corpus["manifest"], variant="P", alignments=corpus["alignments"],
              text_file=corpus["text"], max_steps=2, save_every=1, **TINY)
    full = train_speechlm(output=tmp_path / "full", **kw)
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut/final")
    shutil.rmtree(tmp_path / "cut/checkpoints/step_00000002")
    (tmp_path / "cut/checkpoints/latest").write_text("step_00000001\n")
    resumed = train_speechlm(output=tmp_path / "cut", **kw)
    a, b = load_file(str(full / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in read_jsonl(tmp_path / "cut/log.jsonl")] == [1, 2]


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_speechlm_falls_back_past_a_damaged_checkpoint(corpus: dict, tmp_path: Path, file: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import load_file

    kw = dict(manifest=corpus["manifest"], output=tmp_path / "run", variant="P",
              alignments=corpus["alignments"], text_file=corpus["text"], max_steps=2,
              save_every=1, **TINY)
    straight = load_file(str(train_speechlm(**kw) / "model.safetensors"))
    truncate_checkpoint(tmp_path / "run", 2, file)
    capsys.readouterr()
    resumed = load_file(str(train_speechlm(**kw) / "model.safetensors"))
    said = "".join(capsys.readouterr())
    assert f"skipping checkpoint {tmp_path / 'run/checkpoints/step_00000002'}" in said
    assert "resuming from" in said and "step_00000001" in said
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert [r["step"] for r in read_jsonl(tmp_path / "run/log.jsonl")] == [1, 2]
