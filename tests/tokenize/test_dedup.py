from __future__ import annotations

import numpy as np
import pytest

from spokenlm.tokenize.dedup import dedup, expand


def test_dedup_example() -> None:
    units, durations = dedup([5, 5, 2, 2, 2, 5])
    assert units.tolist() == [5, 2, 5] and durations.tolist() == [2, 3, 1]
    assert units.dtype == durations.dtype == np.int64


def test_dedup_empty_and_single() -> None:
    u, d = dedup([])
    assert u.size == 0 and d.size == 0
    u, d = dedup(np.array([7]))
    assert u.tolist() == [7] and d.tolist() == [1]


def test_expand_inverts_dedup_randomly() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        frames = rng.integers(0, 4, size=rng.integers(1, 50))
        u, d = dedup(frames)
        assert np.all(u[1:] != u[:-1]) and d.sum() == len(frames)
        np.testing.assert_array_equal(expand(u, d), frames)


def test_expand_checks_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        expand([1, 2], [1])
