from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.asr.ctc_model import CTCConfig, CTCModel
from spokenlm.asr.ctc_train import ctc_loss, eval_asr, train_asr
from spokenlm.asr.text import Vocab
from spokenlm.common.files import read_json
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest, write_wav_folder
from spokenlm.testing.checkpoints import truncate_checkpoint
from spokenlm.testing.encoders import tiny_hubert_dir


def _overfit(model: CTCModel, steps: int = 40) -> list[float]:
    wav = torch.from_numpy(np.stack([random_speech_like_wav(0.5, seed=s) for s in (0, 1)]))
    lengths = torch.tensor([wav.shape[1]] * 2)
    targets = [[1, 2, 3, 1], [3, 2, 2, 1]]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    model.train()
    for _ in range(steps):
        lp, frames = model(wav, lengths)
        loss = ctc_loss(lp, frames, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_ctc_loss_decreases_mfcc_adapter(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vocab = Vocab(["<blank>", "a", "b", "c", "|"], "chars")
    model = CTCModel(CTCConfig(encoder={"name": "mfcc"}, adapter_layers=1, adapter_dim=32,
                               dropout=0.0), vocab)
    assert model.config.adapter == "transformer"
    losses = _overfit(model)
    assert losses[-1] < 0.5 * losses[0]
    wav = random_speech_like_wav(0.5, seed=0)
    path = model.save_pretrained(tmp_path / "m")
    again = CTCModel.from_pretrained(path)
    torch.testing.assert_close(again.log_probs(wav), model.log_probs(wav))
    assert again.transcribe(wav) == model.transcribe(wav)


def test_frame_lengths_follow_the_encoders_frame_rate() -> None:
    """A 25 Hz encoder's utterances get 25 Hz frame counts (not the 50 Hz default's), so CTC
    never reads the padding of a shorter utterance in the batch."""
    vocab = Vocab(["<blank>", "a", "b", "c", "|"], "chars")
    model = CTCModel(CTCConfig(encoder={"name": "mfcc", "frame_rate": 25.0}, adapter_layers=1,
                               adapter_dim=32, dropout=0.0), vocab).eval()
    wav = torch.from_numpy(np.stack([random_speech_like_wav(1.0, seed=0)] * 2))
    lengths = torch.tensor([16000, 8000])
    with torch.no_grad():
        lp, frames = model(wav, lengths)
    assert frames.tolist() == [model.encoder.num_frames(16000), model.encoder.num_frames(8000)]
    assert frames[1] < frames[0] <= lp.shape[1] and frames[0] < 30  # ~25 frames a second


def test_ctc_on_hf_encoder_freezes_conv_and_roundtrips(tmp_path: Path) -> None:
    hub = tiny_hubert_dir(tmp_path / "hub", num_hidden_layers=2, hidden_size=32)
    vocab = Vocab(["<blank>", "a", "b", "c"], "phonemes")
    torch.manual_seed(0)
    model = CTCModel(CTCConfig(encoder={"name": "hubert", "path": str(hub), "layer": 2},
                               dropout=0.0), vocab)
    assert model.adapter is None
    conv = model.encoder.model.feature_extractor
    assert not any(p.requires_grad for p in conv.parameters())
    before = [p.clone() for p in conv.parameters()]
    losses = _overfit(model, 30)
    assert losses[-1] < 0.7 * losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, conv.parameters()))
    path = model.save_pretrained(tmp_path / "m")
    again = CTCModel.from_pretrained(path)
    wav = random_speech_like_wav(0.7, seed=3)
    torch.testing.assert_close(again.log_probs(wav), model.log_probs(wav))


def test_train_and_eval_commands(tmp_path: Path) -> None:
    wavs = write_wav_folder(tmp_path / "w", n=3, seed=2, seconds=(0.6, 0.8))
    man = write_test_manifest(tmp_path / "m.jsonl", wavs, text=["a b", "b a", "ab"])
    final = train_asr(manifest=man, output=tmp_path / "run", encoder="mfcc", max_steps=3,
                      batch_size=2, warmup_steps=1, save_every=2, adapter_layers=1,
                      adapter_dim=32, device="cpu", valid_manifest=man)
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert 0 <= metrics["cer"] and metrics["steps"] == 3
    out = eval_asr(model=final, manifest=man, output=tmp_path / "e.json")
    assert out["n_utterances"] == 3 and "wer" in out


@pytest.mark.parametrize("file", ["model.safetensors", "trainer_state.pt"])
def test_train_falls_back_past_a_damaged_checkpoint(tmp_path: Path, file: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import load_file

    wavs = write_wav_folder(tmp_path / "w", n=3, seed=2, seconds=(0.6, 0.8))
    man = write_test_manifest(tmp_path / "m.jsonl", wavs, text=["a b", "b a", "ab"])
    opts = dict(manifest=man, output=tmp_path / "run", encoder="mfcc", max_steps=4,
                batch_size=2, warmup_steps=1, save_every=2, log_every=1, adapter_layers=1,
                adapter_dim=32, device="cpu")
    straight = load_file(str(train_asr(**opts) / "model.safetensors"))
    truncate_checkpoint(tmp_path / "run", 4, file)
    capsys.readouterr()
    resumed = load_file(str(train_asr(**opts) / "model.safetensors"))
    said = "".join(capsys.readouterr())
    assert "skipping checkpoint" in said and "step_00000004" in said
    assert read_json(tmp_path / "run" / "metrics.json")["steps"] == 4
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_registered_asr_backend(tmp_path: Path) -> None:
    from spokenlm.asr.base import load_asr
    from spokenlm.asr import ctc_model  # noqa: F401 (registers spokenlm-ctc)

    vocab = Vocab(["<blank>", "a"], "chars")
    path = CTCModel(CTCConfig(adapter_layers=1, adapter_dim=32), vocab).save_pretrained(
        tmp_path / "m")
    asr = load_asr(f"spokenlm-ctc:{path}")
    assert isinstance(asr.transcribe(random_speech_like_wav(0.5)), str)
    with pytest.raises(Exception, match="spokenlm CTC"):
        CTCModel.from_pretrained(tmp_path)
