from __future__ import annotations

import numpy as np
import pytest

from spokenlm.common.errors import InputError
from spokenlm.lm.data import BlockStream, DataState, load_packed, packed_prefix, split_valid
from spokenlm.testing.lm import write_packed_units

SEQS = [[0, 1, 2], [3, 4], [5, 6, 7, 8, 9], [1], [2, 2, 2, 2], [9, 8, 7], [4, 4]]
BOS, EOS = 10, 11


@pytest.fixture()
def packed(tmp_path):
    return write_packed_units(tmp_path / "units", SEQS, n_units=10)


def _stream(packed, block_len=6, shuffle=True, seed=0, indices=None):
    tokens, offsets, _ = load_packed(packed)
    idx = np.arange(len(SEQS)) if indices is None else indices
    return BlockStream(tokens, offsets, idx, block_len, bos_id=BOS, eos_id=EOS, seed=seed,
                       shuffle=shuffle)


def test_load_packed_and_prefix_forms(packed) -> None:
    tokens, offsets, meta = load_packed(packed)
    assert tokens.dtype == np.uint16 and offsets.dtype == np.int64
    assert meta["n_units"] == 10 and meta["n_utterances"] == len(SEQS)
    assert [tokens[offsets[i]: offsets[i + 1]].tolist() for i in range(len(SEQS))] == SEQS
    for form in ("units.jsonl", "units.bin", "units.meta.json", "units"):
        assert packed_prefix(packed.parent / form) == packed
    with pytest.raises(InputError, match="tokenize run"):
        packed_prefix(packed.parent / "other.jsonl")


def test_blocks_tile_the_stream_with_bos_eos(packed) -> None:
    stream = _stream(packed, shuffle=False)
    flat = [t for s in SEQS for t in [BOS, *s, EOS]]
    assert stream.total == len(flat) and stream.n_blocks == (len(flat) - 1) // 5
    for b in range(stream.n_blocks):  # stride T=5, each block T+1 tokens: targets tile once
        assert stream.block(0, b).tolist() == flat[b * 5: b * 5 + 6]


def test_order_is_deterministic_per_seed_and_epoch(packed) -> None:
    a, b, c = _stream(packed), _stream(packed), _stream(packed, seed=1)
    assert np.array_equal(a.layout(0)[0], b.layout(0)[0])
    orders = {tuple(a.layout(e)[0]) for e in range(4)} | {tuple(c.layout(0)[0])}
    assert len(orders) > 2
    utterances = sorted(tuple(a.utterance(int(i))) for i in a.layout(3)[0])
    assert utterances == sorted(tuple([BOS, *s, EOS]) for s in SEQS)


def test_state_resume_continues_at_next_batch(packed) -> None:
    stream, state, batches, states = _stream(packed), DataState(), [], []
    for _ in range(7):  # runs over several epochs
        x, state = stream.next_batch(state, 3)
        batches.append(x)
        states.append(DataState.from_dict(state.to_dict()))
    assert states[-1].epoch >= 2 and all(x.shape == (3, 6) for x in batches)
    fresh = _stream(packed)  # a new process: nothing cached
    x, _ = fresh.next_batch(states[3], 3)
    assert np.array_equal(x, batches[4])


def test_ranks_read_disjoint_slices(packed) -> None:
    stream = _stream(packed)
    full, s1 = stream.next_batch(DataState(), 4)
    r0, s0 = stream.next_batch(DataState(), 4, rank=0, world_size=2)
    r1, _ = stream.next_batch(DataState(), 4, rank=1, world_size=2)
    assert np.array_equal(np.concatenate([r0, r1]), full) and s0 == s1
    with pytest.raises(InputError, match="divisible"):
        stream.next_batch(DataState(), 3, rank=0, world_size=2)


def test_split_valid_and_too_short_data(packed) -> None:
    train, valid = split_valid(100, 0.05)
    assert len(valid) == 5 and valid[0] == 95 and len(train) == 95
    assert len(split_valid(10, 0.01)[1]) == 1 and len(split_valid(1, 0.5)[1]) == 0
    assert len(split_valid(10, 0.0)[1]) == 0
    with pytest.raises(InputError, match="seq-len"):
        _stream(packed, block_len=1000)
