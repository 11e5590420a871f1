from __future__ import annotations

import pytest
import torch

from spokenlm.asr.align import forced_align, frame_labels, intervals
from spokenlm.common.errors import InputError


def peaked_log_probs(frame_classes: list[int], vocab: int, seed: int = 0) -> torch.Tensor:
    """(T, V) log-probs with most mass on ``frame_classes[t]`` and random noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(len(frame_classes), vocab, generator=g)
    scores[torch.arange(len(frame_classes)), torch.tensor(frame_classes)] += 6.0
    return scores.log_softmax(-1)


def test_forced_alignment_recovers_boundaries() -> None:
    # blank=0; tokens 1, 2, 2 (repeat: needs a blank between), 3, 4
    seg = [0, 0, 1, 1, 1, 1, 0, 2, 2, 2, 0, 2, 2, 3, 3, 3, 3, 3, 3, 0, 0, 4, 4, 4, 4, 4, 0, 0]
    lp = peaked_log_probs(seg, 5)
    ali = forced_align(lp, [1, 2, 2, 3, 4])
    assert ali.spans.tolist() == [[2, 6], [7, 10], [11, 13], [13, 19], [21, 26]]
    labels = frame_labels(list("abbcd"), ali.spans, len(seg))
    assert labels[:2] == ["sil", "sil"] and labels[2:7] == ["a"] * 5
    assert labels[7:11] == ["b"] * 4 and labels[11:13] == ["b"] * 2
    assert labels[26:] == ["sil", "sil"]
    iv = intervals(list("abbcd"), ali.spans, len(seg))
    assert [x[2] for x in iv] == ["sil", "a", "b", "b", "c", "d", "sil"]
    assert iv[1][:2] == [0.04, 0.14] and iv[-1][1] == pytest.approx(len(seg) / 50)


def test_forced_alignment_follows_transcript_not_argmax() -> None:
    # argmax says token 3, but the transcript forces token 1 into the middle frames
    seg = [0, 3, 3, 3, 0]
    ali = forced_align(peaked_log_probs(seg, 4), [1])
    assert ali.spans.shape == (1, 2) and ali.states.shape == (5,)
    assert 0 <= ali.spans[0, 0] < ali.spans[0, 1] <= 5


def test_forced_alignment_too_short() -> None:
    with pytest.raises(InputError, match="frames"):
        forced_align(torch.zeros(2, 3).log_softmax(-1), [1, 1])
