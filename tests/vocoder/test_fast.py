from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spokenlm.audio.load import load_audio
from spokenlm.common.files import read_jsonl
from spokenlm.testing.vocoder import tiny_vocoder
from spokenlm.vocoder import load_vocoder
from spokenlm.vocoder.fast import FastVocoder
from spokenlm.vocoder.train import train_vocoder


def test_forward_and_target_shapes_agree() -> None:
    model = tiny_vocoder("fast", n_units=8)
    frames = torch.randint(0, 8, (2, 10))
    assert model(frames).shape == (2, 80, 20)
    assert model.target(torch.randn(2, 3200)).shape == (2, 80, 20)


def test_train_load_and_synthesize(units_corpus: Path, tmp_path: Path) -> None:
    final = train_vocoder(units=units_corpus, output=tmp_path / "run", type="fast",
                          size="tiny", max_steps=30, batch_size=4, segment_frames=20,
                          log_every=10, save_every=30, lr=3e-3)
    rows = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert rows[-1]["mel"] < rows[0]["mel"]
    vocoder = load_vocoder(final)
    assert isinstance(vocoder, FastVocoder) and vocoder.speakers == ["spk0", "spk1"]
    row = read_jsonl(units_corpus)[0]
    wav = vocoder.synthesize(row["units"], row["durations"], speaker=row["speaker"])
    # exact length: every unit frame is 320 samples
    assert wav.dtype == np.float32 and wav.shape == (sum(row["durations"]) * 320,)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 1e-3
    predicted = vocoder.synthesize(row["units"])
    assert len(predicted) >= len(row["units"]) * 320


def test_tiny_overfit_reduces_mel_loss(units_corpus: Path) -> None:
    """Regressing the log-mel of one real utterance: L1 falls well below its start."""
    torch.manual_seed(0)
    row = read_jsonl(units_corpus)[0]
    wav = torch.from_numpy(load_audio(units_corpus.parent / row["path"]))[None, :50 * 320]
    frames = torch.from_numpy(np.repeat(row["units"], row["durations"]))[None]
    model = FastVocoder.build("tiny", n_units=8)
    target = model.target(wav)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = F.l1_loss(model(frames), target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
