"""ABX on a hand-constructed case, DTW against a brute-force loop, and ABX inputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.common.files import write_jsonl
from spokenlm.eval.abx import Token, abx_error, evaluate_abx
from spokenlm.eval.abx_items import frame_span, read_item_file, word_segments, write_item_file
from spokenlm.eval.dtw import dtw_batch, dtw_pairs, frame_distances


def _dtw_loop(d: np.ndarray) -> float:
    """libri-light's DTW, written as the textbook double loop (diagonal first on ties)."""
    n, m = d.shape
    c, length = np.zeros((n, m)), np.zeros((n, m))
    for i, j in itertools.product(range(n), range(m)):
        preds = [(c[i - 1, j - 1], length[i - 1, j - 1])] if i and j else []
        preds += [(c[i - 1, j], length[i - 1, j])] if i else []
        preds += [(c[i, j - 1], length[i, j - 1])] if j else []
        best = min(preds, key=lambda t: t[0]) if preds else (0.0, 0)
        c[i, j], length[i, j] = d[i, j] + best[0], best[1] + 1
    return c[-1, -1] / length[-1, -1]


def test_dtw_matches_loop_on_random_pairs() -> None:
    rng = np.random.default_rng(0)
    ds = [rng.random((int(rng.integers(1, 7)), int(rng.integers(1, 7)))) for _ in range(20)]
    pad = np.zeros((len(ds), 7, 7))
    for b, d in enumerate(ds):
        pad[b, :d.shape[0], :d.shape[1]] = d
    got = dtw_batch(torch.from_numpy(pad), torch.tensor([d.shape[0] for d in ds]),
                    torch.tensor([d.shape[1] for d in ds]))
    assert np.allclose(got.numpy(), [_dtw_loop(d) for d in ds])


def test_dtw_hand_value_and_distances() -> None:
    # x = [0, 1], y = [0, 0, 1] (one-hot): the path (0,0) (0,1) (1,2) costs 0 over 3 cells
    assert dtw_pairs([torch.tensor([0, 1]), torch.tensor([0, 0, 1])], torch.tensor([[0, 1]]),
                     kind="onehot").item() == 0.0
    # x = [0], y = [1, 1]: cost 2 over 2 cells
    assert dtw_pairs([torch.tensor([0]), torch.tensor([1, 1])], torch.tensor([[0, 1]]),
                     kind="onehot").item() == 1.0
    a = torch.tensor([[[1.0, 0.0]]])
    b = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]]])
    assert torch.allclose(frame_distances(a, b), torch.tensor([[[0.5, 0.0, 1.0]]]))


def _case() -> tuple[list[torch.Tensor], list[Token]]:
    # speaker s1: a = [0], [0], [1]; b = [1]   speaker s2: a = [0], [0]; b = [1], [1]
    spec = [("a", "s1", 0), ("a", "s1", 0), ("a", "s1", 1), ("b", "s1", 1),
            ("a", "s2", 0), ("a", "s2", 0), ("b", "s2", 1), ("b", "s2", 1)]
    return ([torch.tensor([u]) for _, _, u in spec], [Token(lab, "c", s) for lab, s, _ in spec])


def test_abx_constructed_case_known_answer() -> None:
    reps, tokens = _case()
    r = abx_error(reps, tokens, distance="onehot")
    # within: (a,b,s1) = 3/6 errors, (a,b,s2) = 0, (b,a,s2) = 0 -> ((0.5+0)/2 + 0) / 2
    assert r["within"] == pytest.approx(0.125)
    # across: (a,b): s1->s2 1/6, s2->s1 1/3 ; (b,a): s1->s2 1/6, s2->s1 0 -> (1/4 + 1/12)/2
    assert r["across"] == pytest.approx(1 / 6)


def test_abx_separable_features_have_zero_error() -> None:
    rng = np.random.default_rng(0)
    centres = {"a": np.array([1.0, 0, 0]), "b": np.array([0, 1.0, 0])}
    reps, tokens = [], []
    for lab, spk, k in itertools.product("ab", ("s1", "s2"), range(3)):
        n = int(rng.integers(2, 6))
        reps.append(torch.tensor(centres[lab] + 0.05 * rng.standard_normal((n, 3))))
        tokens.append(Token(lab, "x_y", spk))
    r = abx_error(reps, tokens)
    assert r["within"] == 0.0 and r["across"] == 0.0 and r["n_pairs"] > 0


def test_partners_restrict_b() -> None:
    reps, tokens = _case()
    tokens = tokens + [Token("z", "c", "s1"), Token("z", "c", "s2")]
    reps = reps + [torch.tensor([0]), torch.tensor([0])]
    free = abx_error(reps, tokens, distance="onehot")
    only = abx_error(reps, tokens, distance="onehot", partners={"a": {"b"}, "b": {"a"}})
    assert only["within"] == pytest.approx(0.125) and free["within"] != only["within"]


def test_item_file_and_frame_span(tmp_path: Path) -> None:
    f = tmp_path / "x.item"
    f.write_text("#file onset offset #phone prev-phone next-phone speaker\n"
                 "u1 0.10 0.20 AH SIL T spk1\nu1 0.20 0.31 T AH SIL spk1\n")
    segs = read_item_file(f)
    assert [s.token for s in segs] == [Token("AH", "SIL_T", "spk1"), Token("T", "AH_SIL", "spk1")]
    assert frame_span(0.10, 0.20, 100) == (5, 10)  # ceil(4.5)=5 .. floor(9.5)=9 inclusive
    write_jsonl(tmp_path / "al.jsonl", [{"id": "u1", "intervals": [[0, 0.1, "SIL"],
                                                                   [0.1, 0.2, "AH"],
                                                                   [0.2, 0.3, "T"]]}])
    item = write_item_file(tmp_path / "al.jsonl", {"u1": {"speaker": "s"}}, tmp_path / "a.item")
    assert [s.token for s in read_item_file(item)] == [Token("AH", "SIL_T", "s"),
                                                       Token("T", "AH_SIL", "s")]


def test_word_abx_on_a_spoken_word_benchmark(tmp_path: Path, tokenizer_dir: Path) -> None:
    from spokenlm.data.benchmark_builders import build_spoken_benchmark
    from spokenlm.data.tts import speaker_table

    items = [{"word": ["D", "AO", "G"], "pseudo": ["D", "IY", "S"]},
             {"word": ["K", "AE", "T"], "pseudo": ["K", "UW", "P"]}]
    out = build_spoken_benchmark(items, tmp_path / "w", speaker_table(2), voices_per_item=2)
    segs, partners, _ = word_segments(out)
    assert len(segs) == 8 and partners["D AO G"] == {"D IY S"}
    m = evaluate_abx(tokenizer=tokenizer_dir, benchmark=out, output=tmp_path / "abx.json")
    for rep in ("features", "units"):
        assert 0.0 <= m[rep]["across"] <= 1.0 and m[rep]["n_across_groups"] == 8
        assert m[rep]["within"] is None and "within-speaker" in m[rep]["within_reason"]
    assert (tmp_path / "abx.json").exists()


# ---- item files from alignments (eval abx-items) ------------------------------------------

#: one utterance: (blank) P A P P B P (blank), 0.1 s per phone, in MFA's ARPAbet with stress
UTT_PHONES = [(0.1, 0.2, "P"), (0.2, 0.3, "AA1"), (0.3, 0.4, "P"), (0.4, 0.5, "P"),
              (0.5, 0.6, "B"), (0.6, 0.7, "P")]
#: its ZeroSpeech triphone items: (onset, offset, phone, prev, next); the edge phones (next
#: to silence) give none
UTT_ITEMS = [(0.1, 0.4, "AA", "P", "P"), (0.2, 0.5, "P", "AA", "P"),
             (0.3, 0.6, "P", "P", "B"), (0.4, 0.7, "B", "P", "P")]


def _mfa_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Two speakers x two utterances: wavs, a manifest with speakers, and MFA's output
    folder (one TextGrid per utterance under a folder per speaker)."""
    from spokenlm.audio.load import save_wav
    from spokenlm.testing.alignments import write_mfa_textgrid
    from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest

    wavs, speakers = [], []
    for i, (spk, utt) in enumerate(itertools.product(("s1", "s2"), ("u1", "u2"))):
        uid = f"{spk}-{utt}"
        wavs.append(save_wav(tmp_path / "wav" / f"{uid}.wav",
                             random_speech_like_wav(0.8, seed=i), 16000))
        speakers.append(spk)
        write_mfa_textgrid(tmp_path / "mfa" / spk / f"{uid}.TextGrid", UTT_PHONES,
                           [(0.1, 0.7, "word")], duration=0.8)
    return tmp_path / "mfa", write_test_manifest(tmp_path / "m.jsonl", wavs, speaker=speakers)


def test_abx_items_from_textgrid_folder(tmp_path: Path, tokenizer_dir: Path) -> None:
    from spokenlm.cli.main import main
    from spokenlm.eval.abx_items import ITEM_HEADER, abx_items

    mfa, manifest = _mfa_corpus(tmp_path)
    out = tmp_path / "dev.item"
    assert main(["eval", "abx-items", str(mfa), "--output", str(out), "--manifest",
                 str(manifest), "--tier", "phones"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == ITEM_HEADER and len(lines) == 1 + 16
    want = [f"{spk}-{u} {a:.4f} {b:.4f} {p} {prev} {nxt} {spk}"
            for spk, u in itertools.product(("s1", "s2"), ("u1", "u2"))
            for a, b, p, prev, nxt in UTT_ITEMS]
    assert lines[1:] == want
    segs = read_item_file(out)
    assert segs[0].token == Token("AA", "P_P", "s1") and segs[0].onset == pytest.approx(0.1)
    # speakers from the id prefix instead of the manifest; the phone's own times
    s = abx_items(alignments=mfa, output=tmp_path / "p.item", speaker_prefix="-",
                  span="phone")
    assert s["n_items"] == 16 and s["n_speakers"] == 2 and s["n_phones"] == 3
    assert s["skipped_reasons"]["next to silence"]["count"] == 8
    assert (tmp_path / "p.item").read_text().splitlines()[1] == "s1-u1 0.2000 0.3000 AA P P s1"
    # eval abx reads the file it wrote: within and across speaker ABX on every token
    m = evaluate_abx(tokenizer=tokenizer_dir, item_file=out, manifest=manifest,
                     output=tmp_path / "abx.json")
    assert m["n_items"] == 16 and m["n_skipped"] == 0
    for rep in ("features", "units"):
        assert 0.0 <= m[rep]["within"] <= 1.0 and 0.0 <= m[rep]["across"] <= 1.0


def test_abx_items_speakers_and_errors(tmp_path: Path) -> None:
    from spokenlm.common.errors import InputError
    from spokenlm.data.alignments import Interval
    from spokenlm.eval.abx_items import OTHER_SPEAKER, abx_items, triphone_items
    from spokenlm.eval.skips import Skips
    from spokenlm.testing.alignments import write_mfa_textgrid

    # MFA's per-speaker tiers: each token gets its tier's speaker; no context across turns
    write_mfa_textgrid(tmp_path / "tg" / "conv.TextGrid", UTT_PHONES, speaker="alice",
                       duration=2.0, more_speakers={"bob": (
                           [(s + 1.0, e + 1.0, p) for s, e, p in UTT_PHONES], [])})
    s = abx_items(alignments=tmp_path / "tg", output=tmp_path / "c.item")
    lines = (tmp_path / "c.item").read_text().splitlines()[1:]
    assert s["n_items"] == 8 and [ln.split()[-1] for ln in lines] == ["alice"] * 4 + ["bob"] * 4
    assert lines[4] == "conv 1.1000 1.4000 AA P P bob"
    ivs = [Interval(0, 1, "A"), Interval(1, 2, "B"), Interval(2, 3, "C"), Interval(3, 4, "D")]
    got = triphone_items(ivs, speakers=["x", "x", "y", "y"])
    assert got == []  # B's next and C's previous phone are the other speaker's
    skips = Skips("t")
    got = triphone_items(ivs, speakers=["x", "x", "x", "y"], skips=skips)
    assert [(it.phone, it.prev, it.next, it.onset, it.offset) for it in got] == [
        ("B", "A", "C", 0, 3)]
    assert skips.counts == {OTHER_SPEAKER: 2, "utterance edge": 1}  # C, D; A
    # no speaker anywhere: a clear error; a missing tier: the tiers present
    write_jsonl(tmp_path / "l.jsonl", [{"id": "x", "intervals": [list(iv) for iv in ivs]}])
    with pytest.raises(InputError, match="no speaker for utterance .*--speaker-prefix"):
        abx_items(alignments=tmp_path / "l.jsonl", output=tmp_path / "x.item")
    with pytest.raises(InputError, match=r"no tier 'phone' \(tiers: 'alice - words', "):
        abx_items(alignments=tmp_path / "tg", tier="phone", output=tmp_path / "x.item")
    assert not (tmp_path / "x.item").exists()
