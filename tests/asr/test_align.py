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


# ---- `spokenlm asr align`: one command, two aligners ------------------------------------


def _phone_model_and_manifest(tmp_path):
    from spokenlm.asr.ctc_model import CTCConfig, CTCModel
    from spokenlm.asr.text import Vocab
    from spokenlm.testing.audio import write_test_manifest, write_wav_folder

    torch.manual_seed(0)
    vocab = Vocab(["<blank>", "a", "b", "c"], "phonemes")
    model = CTCModel(CTCConfig(encoder={"name": "mfcc"}, adapter_layers=1, adapter_dim=16,
                               dropout=0.0), vocab).save_pretrained(tmp_path / "ph")
    wavs = write_wav_folder(tmp_path / "w", n=3, seed=1, seconds=(0.5, 0.7))
    # the last row's 0.12 s (6 frames) cannot hold its 8 phones: it fails, the others align
    import numpy as np
    import soundfile as sf
    sf.write(wavs[2], np.random.default_rng(0).normal(0, 0.1, 1920).astype("float32"), 16000)
    manifest = write_test_manifest(tmp_path / "m.jsonl", wavs,
                                   phonemes=["a b c", "c a", "a b a b a b a b"])
    return model, manifest


def test_ctc_aligner_writes_intervals_frame_labels_and_failures(tmp_path, capsys) -> None:
    from spokenlm.cli.main import main
    from spokenlm.common.files import read_jsonl

    model, manifest = _phone_model_and_manifest(tmp_path)
    out = tmp_path / "ali.jsonl"
    assert main(["asr", "align", str(manifest), "--aligner", f"spokenlm-ctc:{model}",
                 "--output", str(out)]) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [w.stem for w in sorted(manifest.parent.glob("w/*"))][:2]
    for row in rows:
        assert [p for _, _, p in row["intervals"] if p != "sil"] in (["a", "b", "c"], ["c", "a"])
        assert len(row["phones"]) == pytest.approx(row["intervals"][-1][1] * 50, abs=1)
        assert row["score"] < 0
    failed = read_jsonl(tmp_path / "ali.failed.jsonl")
    assert len(failed) == 1 and "frames" in failed[0]["reason"]
    # the old command line gives the same file, after a note
    old = tmp_path / "old.jsonl"
    assert main(["align", str(model), str(manifest), "--output", str(old)]) == 0
    assert read_jsonl(old) == rows
    assert "`spokenlm align` is now `spokenlm asr align`" in capsys.readouterr().err


def test_aligner_spec_errors_name_the_fix(tmp_path, capsys) -> None:
    from spokenlm.cli.main import main

    model, manifest = _phone_model_and_manifest(tmp_path)
    assert main(["asr", "align", str(manifest), "--aligner", "ctc:x"]) == 1
    assert "choose pocketsphinx or spokenlm-ctc:DIR" in capsys.readouterr().err
    assert main(["asr", "align", str(manifest), "--output", str(tmp_path / "a.jsonl")]) == 1
    err = capsys.readouterr().err  # pocketsphinx aligns `text`; these rows have phonemes only
    assert f"{manifest}: no row has `text`" in err


def test_pocketsphinx_aligner_under_the_old_name(tmp_path, capsys) -> None:
    pytest.importorskip("pocketsphinx")
    import soundfile as sf

    from spokenlm.cli.main import main
    from spokenlm.common.files import read_jsonl
    from spokenlm.data.tts import SPEAKERS, synthesize
    from spokenlm.testing.audio import write_test_manifest

    wavs = [tmp_path / "s1.wav", tmp_path / "s2.wav"]
    for wav in wavs:
        sf.write(wav, synthesize("my mother reads a book.", SPEAKERS[1]), 16000)
    manifest = write_test_manifest(tmp_path / "m.jsonl", wavs,
                                   text=["my mother reads a book", "my mother reads a book"])
    out = tmp_path / "ali.jsonl"
    assert main(["eval", "align", str(manifest), "--limit", "1", "--output", str(out)]) == 0
    assert "is now `spokenlm asr align`" in capsys.readouterr().err
    rows = read_jsonl(out)
    assert len(rows) == 1 and "phones" not in rows[0]
    assert [p for _, _, p in rows[0]["intervals"] if p != "SIL"][:3] == ["M", "AY", "M"]
