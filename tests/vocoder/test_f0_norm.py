from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.common.errors import InputError
from spokenlm.vocoder.f0_norm import F0Config, F0Stats, interpolate_unvoiced, load_f0_stats

F0 = np.array([0, 0, 100, 120, 0, 140, 160, 0], dtype=np.float32)


def test_loads_original_stats_files(tmp_path: Path) -> None:
    lj = tmp_path / "f0_stats.pth"  # LJSpeech: global numpy float64 scalars
    torch.save({"f0_mean": np.float64(209.04), "f0_std": np.float64(58.75)}, lj)
    stats = load_f0_stats(lj)
    assert (stats.mean, stats.std, stats.speakers) == (209.04, 58.75, {})
    vctk = tmp_path / "f0_stats.th"  # VCTK: speaker index (np.int64) -> float32 stats
    torch.save({np.int64(3): {"f0_mean": np.float32(142.0), "f0_std": np.float32(20.5)},
                np.int64(0): {"f0_mean": np.float32(90.5), "f0_std": np.float32(10.25)}}, vctk)
    stats = load_f0_stats(vctk)
    assert stats.mean is None and stats.speakers == {0: (90.5, 10.25), 3: (142.0, 20.5)}
    assert stats.lookup(3) == (142.0, 20.5)
    with pytest.raises(InputError, match="no entry for speaker index 1"):
        stats.lookup(1)
    assert F0Stats.from_json(stats.to_json()) == stats
    torch.save(stats.to_original(), tmp_path / "again.pth")
    assert load_f0_stats(tmp_path / "again.pth") == stats


def test_refuses_bad_stats_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_f0_stats(tmp_path / "nope.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(InputError, match="not a readable"):
        load_f0_stats(tmp_path / "text.pth")
    torch.save({"mean": 1.0}, tmp_path / "keys.pth")
    with pytest.raises(InputError, match="no f0_mean"):
        load_f0_stats(tmp_path / "keys.pth")


def test_prepare_follows_the_original_dataset() -> None:
    stats = F0Stats(130.0, 20.0, {1: (100.0, 10.0)})
    assert np.array_equal(F0Config().prepare(F0, None), F0)  # Hz as they are
    norm = F0Config(normalize=True, stats=stats)
    np.testing.assert_allclose(norm.prepare(F0, None),
                               [0, 0, -1.5, -0.5, 0, 0.5, 1.5, 0])  # unvoiced stay 0
    np.testing.assert_allclose(norm.prepare(F0, 1), [0, 0, 0, 2, 0, 4, 6, 0])
    median = F0Config(normalize=True, median=True, stats=stats)  # median voiced = 130 Hz
    np.testing.assert_allclose(median.prepare(F0, None), [0, 0, -1.5, -0.5, 0, 0.5, 1.5, 0])
    np.testing.assert_allclose(median.prepare(F0, 1), [3, 3, 0, 2, 3, 4, 6, 3])
    interp = F0Config(interp=True)
    np.testing.assert_allclose(interp.prepare(F0, None), [100, 100, 100, 120, 130, 140, 160, 160])
    with pytest.raises(InputError, match="finite"):
        norm.prepare(np.array([100.0, np.nan]), None)


def test_interpolation_and_fallback_contours() -> None:
    assert (interpolate_unvoiced(np.zeros(4)) == 100.0).all()  # YAAPT's typical pitch
    stats = F0Stats(130.0, 20.0, {1: (100.0, 10.0)})
    assert not F0Config(normalize=True, stats=stats).default_input(6, 1).any()  # = the mean
    np.testing.assert_array_equal(F0Config(stats=stats).default_input(3, 1), [100, 100, 100])
    with pytest.raises(InputError, match="no F0 stats"):
        F0Config().default_input(3, None)
    with pytest.raises(InputError, match="none was given"):
        F0Config(normalize=True, stats=stats, fallback="error").default_input(3, None)
    cfg = F0Config(quantizer={"x": 1}, normalize=True, median=True, feats=True, stats=stats)
    assert F0Config.from_json(cfg.to_json()) == cfg
