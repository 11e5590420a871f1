"""F0 trackers by name (YIN, pYAAPT) on a synthetic glottal source, and which one an
F0-conditioned vocoder gets (YAAPT for speech-resynthesis imports, ``--f0`` overrides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from spokenlm.common.errors import InputError
from spokenlm.common.files import read_json, read_jsonl
from spokenlm.interop.speech_resynthesis_f0 import f0_config
from spokenlm.testing.audio import random_speech_like_wav, write_wav_folder
from spokenlm.vocoder import f0 as f0_module
from spokenlm.vocoder.f0 import (F0_HOP, F0_TRACKERS, VOCODER_F0_TRACKER, f0_tracker,
                                 num_f0_frames, track_f0, vocoder_f0_tracker)
from spokenlm.vocoder.f0_norm import F0Config, F0Stats
from spokenlm.vocoder.f0_yaapt import YaaptOptions, extract_f0_yaapt
from spokenlm.vocoder.hifigan import HIFIGAN_SIZES, UnitHifiGan

SR = 16000


def glottal_source(f0: np.ndarray) -> np.ndarray:
    """Rosenberg glottal pulses at ``f0`` (Hz per sample), differentiated (lip radiation)
    and shaped by three formants (700, 1200, 2600 Hz); peak 0.5."""
    cycle = (np.cumsum(f0) / SR) % 1.0
    opening, closing = 0.4, 0.16
    flow = np.where(cycle < opening, 0.5 * (1 - np.cos(np.pi * cycle / opening)),
                    np.where(cycle < opening + closing,
                             np.cos(np.pi * (cycle - opening) / (2 * closing)), 0.0))
    y = np.diff(flow, prepend=0.0)
    for freq, bandwidth in [(700, 80), (1200, 100), (2600, 150)]:
        r = np.exp(-np.pi * bandwidth / SR)
        y = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * freq / SR), r * r], y)
    return 0.5 * y / np.abs(y).max()


@pytest.fixture(scope="module")
def voiced_gap_voiced() -> tuple[np.ndarray, np.ndarray, slice]:
    """0.6 s at 120 Hz with 3 % vibrato, 0.3 s of near silence, 0.6 s gliding 180 -> 240 Hz;
    the true F0 per sample (0 in the gap) and the gap's sample range."""
    n1, gap, n2 = int(0.6 * SR), int(0.3 * SR), int(0.6 * SR)
    f_a = 120 * (1 + 0.03 * np.sin(2 * np.pi * 4 * np.arange(n1) / SR))
    f_b = np.linspace(180.0, 240.0, n2)
    wav = np.concatenate([glottal_source(f_a), np.zeros(gap), glottal_source(f_b)])
    wav += 1e-4 * np.random.default_rng(0).standard_normal(len(wav))
    return wav.astype(np.float32), np.concatenate([f_a, np.zeros(gap), f_b]), slice(n1, n1 + gap)


@pytest.mark.parametrize("tracker", ["yin", "yaapt"])
def test_trackers_find_f0_of_a_glottal_source_and_nothing_in_a_gap(
        tracker: str, voiced_gap_voiced: tuple[np.ndarray, np.ndarray, slice]) -> None:
    wav, truth, gap = voiced_gap_voiced
    est = track_f0(wav, tracker)
    assert est.dtype == np.float32 and len(est) == num_f0_frames(len(wav))
    centre = np.minimum(np.arange(len(est)) * F0_HOP, len(wav) - 1)  # frame k ~ sample 80 k
    margin = 10  # frames (50 ms) away from each voicing edge
    first, last = gap.start // F0_HOP, gap.stop // F0_HOP
    voiced = np.r_[margin:first - margin, last + margin:len(est) - margin]
    assert (est[voiced] > 0).all()
    assert np.abs(est[voiced] / truth[centre[voiced]] - 1).max() < 0.04
    assert not est[first + 6:last - 6].any()


def test_yaapt_output_contract() -> None:
    for n in (16005, 16000, 321):
        est = extract_f0_yaapt(random_speech_like_wav(n / SR, seed=n))
        assert len(est) == num_f0_frames(n) and est.dtype == np.float32 and (est >= 0).all()
    assert len(extract_f0_yaapt(np.zeros(0))) == 0
    assert not extract_f0_yaapt(np.zeros(SR // 2)).any()  # silence
    assert not extract_f0_yaapt(random_speech_like_wav(0.005)).any()  # too short for YAAPT
    wav = random_speech_like_wav(0.5, seed=3)
    # peak normalisation first (as speech-resynthesis' dataset): the level does not matter
    np.testing.assert_allclose(extract_f0_yaapt(wav * 0.01), extract_f0_yaapt(wav), rtol=1e-4)
    with pytest.raises(InputError, match="16000 Hz"):
        extract_f0_yaapt(wav, sample_rate=22050)
    with pytest.raises(InputError, match="F0 range"):
        extract_f0_yaapt(wav, options=YaaptOptions(f0_min=300, f0_max=200))


def test_trackers_are_registered_by_name() -> None:
    wav = random_speech_like_wav(0.3)
    np.testing.assert_array_equal(track_f0(wav, "yin"), f0_module.extract_f0(wav))
    np.testing.assert_array_equal(track_f0(wav, "yaapt"), extract_f0_yaapt(wav))
    assert {"yin", "yaapt"} <= set(F0_TRACKERS) and VOCODER_F0_TRACKER == "yaapt"
    with pytest.raises(InputError, match=r"--f0 'crepe': unknown F0 tracker; use one of "
                                         r".*yaapt, yin"):
        f0_tracker("crepe")


def _f0_vocoder(**f0: object) -> UnitHifiGan:
    torch.manual_seed(0)
    cfg = F0Config(stats=F0Stats(150.0, 30.0)).to_json()
    return UnitHifiGan({"n_units": 8, **HIFIGAN_SIZES["tiny"], "upsample_rates": [5, 4, 2, 2],
                        "upsample_kernel_sizes": [11, 8, 4, 4], "speakers": [],
                        "duration_predictor": False, "f0": {**cfg, **f0}}).eval()


def test_which_tracker_a_vocoder_gets(tmp_path: Path) -> None:
    assert vocoder_f0_tracker(_f0_vocoder()) == "yaapt"  # configs without the key
    yin = _f0_vocoder(tracker="yin")
    assert vocoder_f0_tracker(yin) == "yin" and vocoder_f0_tracker(yin, "yaapt") == "yaapt"
    yin.save_pretrained(tmp_path / "voc")
    assert read_json(tmp_path / "voc" / "config.json")["f0"]["tracker"] == "yin"
    with pytest.raises(InputError, match="vocoder config f0.tracker 'praat'"):
        _f0_vocoder(tracker="praat")
    with pytest.raises(InputError, match="--f0 'x'"):
        vocoder_f0_tracker(yin, "x")
    # an imported speech-resynthesis generator is marked as trained on YAAPT F0
    block, _ = f0_config({"f0": True}, {}, tmp_path / "config.json")
    assert block is not None and block["tracker"] == "yaapt"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spokenlm.tokenize.encoders import build_encoder
    from spokenlm.tokenize.kmeans import KMeans
    from spokenlm.tokenize.tokenizer import SpeechTokenizer

    encoder = build_encoder({"name": "mfcc"})
    feats = encoder(torch.from_numpy(random_speech_like_wav(2.0))[None])[0]
    kmeans = KMeans.fit(np.asarray(feats.detach(), np.float32), 8, seed=0)
    return SpeechTokenizer(encoder, kmeans, device="cpu").save_pretrained(
        tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.mark.parametrize("choice", [None, "yin"])
def test_resynth_feeds_the_chosen_tracker(choice: str | None, tmp_path: Path,
                                          tokenizer_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from spokenlm.pipeline.resynth import resynth

    calls: list[tuple[str, int]] = []
    for name in ("yin", "yaapt"):
        real = f0_tracker(name)
        monkeypatch.setitem(F0_TRACKERS, name,
                            lambda w, name=name, real=real: calls.append((name, len(w))) or
                            real(w))
    vocoder = _f0_vocoder().save_pretrained(tmp_path / "voc")
    wavs = write_wav_folder(tmp_path / "wavs", n=2, seconds=(0.3, 0.3))
    out = resynth(input=wavs[0].parent, tokenizer=tokenizer_dir, vocoder=vocoder,
                  output=tmp_path / "out", f0=choice)
    want = choice or "yaapt"
    assert [c[0] for c in calls] == [want, want]
    assert len(read_jsonl(out / "resynth.jsonl")) == 2 and len(list(out.glob("*.wav"))) == 2
