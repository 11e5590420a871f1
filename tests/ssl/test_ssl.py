from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.audio.load import load_audio
from spokenlm.common.files import read_jsonl
from spokenlm.ssl import HeadConfig, HubertPretrainModel, hubert_config, span_mask, train_ssl
from spokenlm.ssl.targets import TargetSpec, load_labels, make_targets
from spokenlm.testing.audio import write_test_manifest, write_wav_folder
from spokenlm.testing.checkpoints import truncate_checkpoint
from spokenlm.tokenize.encoders import build_encoder
from spokenlm.tokenize.encoders.base import num_frames


def tiny_model(n_clusters: int = 8) -> HubertPretrainModel:
    torch.manual_seed(0)
    config = hubert_config("tiny", conv_dim=(16,) * 7, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64,
                           num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
    return HubertPretrainModel(config, HeadConfig(n_clusters=n_clusters, final_dim=16))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ssl")
    wavs = write_wav_folder(root / "wavs", n=6, seed=1, seconds=(0.6, 1.0))
    return write_test_manifest(root / "train.jsonl", wavs)


def test_targets_one_label_per_frame(manifest: Path, tmp_path: Path) -> None:
    tok, (labels_path,) = make_targets([manifest], tmp_path / "t",
                                       TargetSpec("mfcc", n_clusters=4, device="cpu"))
    labels = load_labels(labels_path)
    rows = read_jsonl(manifest)
    assert set(labels) == {r["id"] for r in rows}
    for r in rows:
        lab = labels[r["id"]]
        assert len(lab) == num_frames(len(load_audio(r["path"])))
        assert lab.min() >= 0 and lab.max() < 4
    # a rerun reuses the files
    mtime = labels_path.stat().st_mtime
    make_targets([manifest], tmp_path / "t", TargetSpec("mfcc", n_clusters=4, device="cpu"))
    assert labels_path.stat().st_mtime == mtime


def test_masked_prediction_loss_decreases() -> None:
    model = tiny_model()
    wav = torch.randn(2, 6400) * 0.1
    n = model.num_frames(6400)
    labels = torch.arange(n).repeat(2, 1) % 8
    mask = span_mask([n, n], 0.65, 5, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(wav, labels, mask)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < 0.6 * losses[0]


def test_saved_encoder_loads_in_transformers_and_spokenlm(tmp_path: Path) -> None:
    from transformers import HubertModel

    model = tiny_model().eval()
    path = model.save_pretrained(tmp_path / "enc")
    hf = HubertModel.from_pretrained(str(path)).eval()
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 8000), dtype=np.float32))
    with torch.no_grad():
        ours = model.hidden(wav)
        theirs = hf((wav - wav.mean()) / wav.std(unbiased=False)).last_hidden_state
        enc = build_encoder({"name": "hubert", "path": str(path), "layer": 2})(wav)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours, enc, atol=1e-5, rtol=1e-5)
    again = HubertPretrainModel.from_pretrained(path)
    torch.testing.assert_close(again.label_embs, model.label_embs)


def test_train_ssl_resumes_exactly(manifest: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    opts = dict(manifest=manifest, n_clusters=4, batch_size=2, max_seconds=0.6, max_steps=4,
                warmup_steps=1, save_every=2, log_every=1, device="cpu", layers=1)
    train_ssl(output=tmp_path / "a", **opts)
    # simulate a kill after step 2: drop the step-4 checkpoint and the final dir
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step_00000004")
    shutil.rmtree(tmp_path / "b" / "final")
    (tmp_path / "b" / "checkpoints" / "latest").write_text("step_00000002\n")
    train_ssl(output=tmp_path / "b", **opts)
    a = read_jsonl(tmp_path / "a" / "log.jsonl")
    b = read_jsonl(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "final" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_train_ssl_falls_back_past_a_damaged_checkpoint(manifest: Path, tmp_path: Path, file: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import load_file

    opts = dict(manifest=manifest, n_clusters=4, batch_size=2, max_seconds=0.6, max_steps=4,
                warmup_steps=1, save_every=2, log_every=1, device="cpu", layers=1)
    run = tmp_path / "run"
    straight = load_file(str(train_ssl(output=run, **opts) / "model.safetensors"))
    losses = [r["loss"] for r in read_jsonl(run / "log.jsonl")]
    truncate_checkpoint(run, 4, file)
    capsys.readouterr()
    resumed = load_file(str(train_ssl(output=run, **opts) / "model.safetensors"))
    said = "".join(capsys.readouterr())
    assert f"skipping checkpoint {run / 'checkpoints' / 'step_00000004'}: cannot read" in said
    assert "resuming from step_00000002" in said
    assert [r["loss"] for r in read_jsonl(run / "log.jsonl")] == losses
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
