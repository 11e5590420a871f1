"""Frame rate as a property of the tokenizer: Framing, encoders at 25/12.5 Hz, artifacts that
record it, and the clear error when artifacts of two rates meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spokenlm.audio.framing import (DEFAULT_FRAMING, Framing, check_same_framing, conv_framing,
                                    units_framing)
from spokenlm.common.errors import InputError
from spokenlm.testing.audio import random_speech_like_wav, write_test_manifest, write_wav_folder
from spokenlm.testing.encoders import tiny_hubert_dir
from spokenlm.tokenize import SpeechTokenizer, build_encoder, train_tokenizer
from spokenlm.tokenize.pack import load_packed, pack_units
from spokenlm.vocoder.fast import FastVocoder
from spokenlm.vocoder.hifigan import UnitHifiGan


def test_rates_hops_and_windows() -> None:
    assert (DEFAULT_FRAMING.hop_length, DEFAULT_FRAMING.win_length) == (320, 400)
    assert DEFAULT_FRAMING.frame_rate == 50.0
    f25, f12 = Framing.from_rate(25), Framing.from_rate(12.5)
    assert (f25.hop_length, f25.win_length, f25.frame_rate) == (640, 800, 25.0)
    assert (f12.hop_length, f12.win_length) == (1280, 1600)
    assert f25.num_frames(16000) == (16000 - 800) // 640 + 1 == 24
    assert f25.num_frames(799) == 0
    np.testing.assert_allclose(f25.centres(2), [0.025, 0.065])
    with pytest.raises(InputError, match="whole hop"):
        Framing.from_rate(30)  # 533.3 samples


def test_json_round_trip_and_old_artifacts() -> None:
    f = Framing.from_rate(25)
    assert Framing.from_json(f.to_json()) == f
    assert Framing.from_json({}) == DEFAULT_FRAMING  # written before rates were recorded
    assert Framing.from_json({"frame_rate": 50.0}) == DEFAULT_FRAMING
    assert Framing.from_json({"frame_rate": 25}).hop_length == 640
    with pytest.raises(InputError, match="disagrees"):
        Framing.from_json({"frame_rate": 50, "hop_length": 640}, "cfg.json")


def test_conv_front_end_framing() -> None:
    hubert = conv_framing((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))
    assert (hubert.hop_length, hubert.win_length) == (320, 400)
    assert conv_framing((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 4)).hop_length == 640


def test_mismatch_names_both_artifacts() -> None:
    check_same_framing(DEFAULT_FRAMING, "a", Framing(), "b")
    with pytest.raises(InputError, match=r"LM x works at 25 Hz \(hop 640\) but vocoder y at 50 Hz"):
        check_same_framing(Framing.from_rate(25), "LM x", DEFAULT_FRAMING, "vocoder y")


def test_units_rows_of_two_rates_are_refused() -> None:
    assert units_framing([{"id": "a"}], "u.jsonl") == DEFAULT_FRAMING
    assert units_framing([{"id": "a", "frame_rate": 25.0}], "u.jsonl").hop_length == 640
    with pytest.raises(InputError, match="u.jsonl.*'b'.*25 Hz.*50 Hz"):
        units_framing([{"id": "a"}, {"id": "b", "frame_rate": 25.0}], "u.jsonl")


@pytest.mark.parametrize("name", ["mfcc", "logmel"])
@pytest.mark.parametrize("rate", [50.0, 25.0, 12.5])
def test_spectral_encoders_at_any_rate(name: str, rate: float) -> None:
    enc = build_encoder({"name": name, "frame_rate": rate})
    wav = torch.from_numpy(random_speech_like_wav(1.0, seed=1))[None]
    feats = enc(wav)
    assert enc.frame_rate == rate
    assert feats.shape[1] == enc.num_frames(wav.shape[1]) == enc.framing.num_frames(16000)
    assert torch.isfinite(feats).all()


def test_default_spectral_features_unchanged() -> None:
    """frame_rate=50 is the old encoder, bit for bit (old tokenizers keep their units)."""
    wav = torch.from_numpy(random_speech_like_wav(0.7, seed=3))[None]
    old = build_encoder({"name": "mfcc"})(wav)
    new = build_encoder({"name": "mfcc", "frame_rate": 50.0})(wav)
    assert torch.equal(old, new) and old.shape[1] == (len(wav[0]) - 400) // 320 + 1


def test_hf_encoder_reads_its_conv_hop(tmp_path: Path) -> None:
    path = tiny_hubert_dir(tmp_path / "hb")
    enc = build_encoder({"name": "hubert", "path": str(path), "layer": 1})
    assert enc.framing == DEFAULT_FRAMING
    cfg = json.loads((path / "config.json").read_text())
    cfg["conv_stride"] = cfg["conv_stride"][:-1] + [4]  # a 25 Hz front-end
    (path / "config.json").write_text(json.dumps(cfg))
    enc25 = build_encoder({"name": "hubert", "path": str(path), "layer": 1})
    wav = torch.from_numpy(random_speech_like_wav(1.0, seed=2))[None]
    assert enc25.framing.hop_length == 640
    assert enc25(wav).shape[1] == enc25.num_frames(16000)


def test_25hz_tokenizer_records_its_rate_downstream(tmp_path: Path) -> None:
    from spokenlm.tokenize.run import tokenize_manifest

    manifest = write_test_manifest(tmp_path / "m.jsonl", write_wav_folder(tmp_path / "w", n=3))
    tok_dir = train_tokenizer(manifest=manifest, output=tmp_path / "tok", encoder="mfcc",
                              encoder_option=["frame_rate=25"], n_units=6, niter=5,
                              device="cpu")
    config = json.loads((tok_dir / "config.json").read_text())
    assert (config["frame_rate"], config["hop_length"]) == (25.0, 640)
    tok = SpeechTokenizer.from_pretrained(tok_dir, device="cpu")
    assert tok.framing.hop_length == 640
    out = tokenize_manifest(manifest=manifest, tokenizer=tok_dir, output=tmp_path / "u.jsonl",
                            device="cpu")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["frame_rate"] for r in rows} == {25.0}
    _, _, meta = load_packed(tmp_path / "u")
    assert meta["frame_rate"] == 25.0
    # a units file of another rate appended to it cannot be packed as one
    rows.append({**rows[0], "id": "other", "frame_rate": 50.0})
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="one tokenizer's units"):
        pack_units(mixed)


@pytest.mark.parametrize("cls", [FastVocoder, UnitHifiGan])
def test_vocoders_speak_any_hop(cls: type, tmp_path: Path) -> None:
    from spokenlm.vocoder.base import load_vocoder

    model = cls.build("tiny", 8, hop_length=640).eval()
    frames = torch.randint(0, 8, (1, 7))
    with torch.no_grad():
        wav = model.generate(frames)
    assert wav.shape[-1] == 7 * 640 and model.framing.frame_rate == 25.0
    loaded = load_vocoder(model.save_pretrained(tmp_path / "v"))
    assert loaded.hop_length == 640
    old = cls.build("tiny", 8)  # default: 50 Hz units
    assert old.hop_length == 320 and old.framing == DEFAULT_FRAMING


def test_pnmi_and_abx_frames_follow_the_units_rate() -> None:
    from spokenlm.eval.abx_items import frame_span
    from spokenlm.eval.pnmi import frame_labels

    intervals = [[0.0, 0.1, "A"], [0.1, 0.3, "B"]]
    assert frame_labels(intervals, 6) == ["A"] * 5 + ["B"]  # 50 Hz centres 12.5 ms + 20 i
    # 25 Hz: centres 25 ms + 40 i ms
    assert frame_labels(intervals, 6, Framing.from_rate(25)) == ["A", "A", "B", "B", "B",
                                                                 "B"]
    assert frame_span(0.1, 0.3, 100) == (5, 15)
    assert frame_span(0.1, 0.3, 100, 25.0) == (2, 8)
