from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spokenlm.common.files import read_jsonl
from spokenlm.testing.vocoder import tiny_vocoder
from spokenlm.vocoder import load_vocoder
from spokenlm.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from spokenlm.vocoder.hifigan import UnitHifiGan
from spokenlm.vocoder.losses import discriminator_loss, feature_loss, generator_loss, mel_loss
from spokenlm.vocoder.mel import MelSpectrogram
from spokenlm.vocoder.train import train_vocoder


def test_generator_output_length_matches_frames() -> None:
    model = tiny_vocoder("hifigan", n_units=8, speakers=["a", "b"])
    frames = torch.randint(0, 8, (2, 7))
    out = model(frames, torch.tensor([0, 1]))
    assert out.shape == (2, 1, 7 * 320)
    assert out.abs().max() <= 1
    wav = model.synthesize([3, 1, 4], [2, 1, 3], speaker="b")
    assert wav.shape == (6 * 320,) and wav.dtype == np.float32


def test_v1_config_matches_reference_sizes() -> None:
    model = UnitHifiGan.build("v1", n_units=100)
    assert model.conv_pre.weight.shape == (512, 128, 7)
    assert [u.stride[0] for u in model.ups] == [5, 4, 4, 2, 2]
    assert len(model.resblocks) == 15


def test_discriminator_shapes_and_losses_are_finite() -> None:
    torch.manual_seed(0)
    y, y_hat = torch.randn(2, 1, 3200) * 0.1, torch.randn(2, 1, 3200) * 0.1
    for disc, n in ((MultiPeriodDiscriminator(channel_div=32), 5),
                    (MultiScaleDiscriminator(channel_div=32), 3)):
        real, fake, fmap_r, fmap_g = disc(y, y_hat)
        assert len(real) == len(fake) == len(fmap_r) == n
        assert all(r.shape[0] == 2 and r.dim() == 2 for r in real)
        assert all(a.shape == b.shape for fr, fg in zip(fmap_r, fmap_g) for a, b in zip(fr, fg))
        for loss in (discriminator_loss(real, fake), generator_loss(fake),
                     feature_loss(fmap_r, fmap_g)):
            assert torch.isfinite(loss) and loss.item() >= 0
    assert torch.isfinite(mel_loss(MelSpectrogram(hop_length=256), y[:, 0], y_hat[:, 0]))


def test_train_two_steps_and_round_trip(units_corpus: Path, tmp_path: Path) -> None:
    final = train_vocoder(units=units_corpus, output=tmp_path / "run", type="hifigan",
                          size="tiny", max_steps=2, batch_size=2, log_every=1, save_every=2)
    assert final == tmp_path / "run" / "final"
    rows = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(np.isfinite(r[k]) for r in rows for k in ("loss_g", "loss_d", "mel", "duration"))
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step_00000002"
    vocoder = load_vocoder(final)
    assert vocoder.type == "hifigan" and vocoder.n_units == 8
    vocoder.save_pretrained(tmp_path / "copy")
    again = load_vocoder(tmp_path / "copy")
    a = vocoder.synthesize([1, 2, 3], [3, 2, 1], speaker="spk1")
    b = again.synthesize([1, 2, 3], [3, 2, 1], speaker="spk1")
    assert a.shape == (6 * 320,)
    np.testing.assert_array_equal(a, b)
    assert len(vocoder.synthesize([1, 2, 3])) % 320 == 0  # predicted durations
