"""GE2E speaker embeddings (Wan et al. 2018) with Resemblyzer's pretrained voice encoder.

The PyPI wheel ``Resemblyzer`` ships ``resemblyzer/pretrained.pt`` (Apache-2.0), the state of
a 3-layer LSTM (40 mel channels -> 256) + linear 256 -> 256 + ReLU trained with the GE2E
loss. spokenlm reads that file with ``torch.load(weights_only=True)`` (tensors only, no code
runs) into its own :class:`GE2ENetwork` and reproduces the package's preprocessing:

1. volume normalisation up to -30 dBFS RMS (louder audio is left alone);
2. long-silence trimming: WebRTC VAD (mode 3) on 30 ms windows, an 8-window moving average
   (a window is speech when more than half of its neighbourhood is), speech regions widened
   by 3 windows each side, everything else dropped;
3. mel power spectrogram, not log: 25 ms Hann window (400 samples), 10 ms hop, 40 Slaney
   mel bands over 0-8 kHz, centred frames with zero padding (librosa >= 0.10's defaults);
4. partial utterances of 160 frames (1.6 s) every 77 frames (``embed_utterance``'s rate of
   1.3 partials per second, so about half of each partial overlaps the next); the last one
   is zero-padded and kept when it covers at least 75 % of its frames, or when it is the only
   one. The utterance embedding is the L2-normalised mean of the partial embeddings.

Step 2 needs the C extension of the ``webrtcvad`` package (a Resemblyzer dependency). Its
Python wrapper imports ``pkg_resources``, which setuptools >= 81 no longer has, so the
extension is called directly when the wrapper fails to import; without either, trimming is
skipped and :meth:`GE2EEncoder.describe` says so. Differences from the package: samples are
clipped to int16 before the VAD (the package wraps around), and an utterance in which the VAD
finds no speech gets no embedding (NaN, reported as skipped) instead of that of zero padding.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..audio.constants import SAMPLE_RATE
from ..common.device import resolve_device
from ..common.errors import InputError
from ..common.progress import progress
from ..vocoder.mel import mel_filterbank
from .speaker import SpeakerEmbedder, register_speaker_encoder

#: mel front-end of the pretrained encoder
N_MELS = 40
WIN_SAMPLES = SAMPLE_RATE * 25 // 1000  # 400
HOP_SAMPLES = SAMPLE_RATE * 10 // 1000  # 160
#: frames per partial utterance (1.6 s) and partials per second of ``embed_utterance``
PARTIAL_FRAMES = 160
PARTIAL_RATE = 1.3
MIN_COVERAGE = 0.75
#: volume normalisation target (RMS, dB full scale), raised only
TARGET_DBFS = -30.0
#: VAD window (ms), moving-average width and dilation (windows)
VAD_WINDOW_MS = 30
VAD_AVERAGE = 8
VAD_MAX_SILENCE = 6
VAD_MODE = 3
INT16_MAX = 2 ** 15 - 1


def resemblyzer_weights() -> Path | None:
    """Path of the ``pretrained.pt`` that the installed Resemblyzer ships, or None.

    Found without importing the package (its import needs webrtcvad's wrapper)."""
    try:
        spec = importlib.util.find_spec("resemblyzer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "pretrained.pt"
    return path if path.is_file() else None


class GE2ENetwork(nn.Module):
    """Mel partials (B, F, n_mels) -> L2-normalised speaker embeddings (B, D).

    The last layer's final hidden state of the LSTM, through linear + ReLU, normalised."""

    def __init__(self, n_mels: int = N_MELS, hidden: int = 256, layers: int = 3,
                 dim: int = 256) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, dim)

    def forward(self, mels: Tensor) -> Tensor:
        _, (hidden, _) = self.lstm(mels)  # hidden: (layers, B, H)
        emb = torch.relu(self.linear(hidden[-1]))  # (B, D)
        return emb / emb.norm(dim=1, keepdim=True)


def load_ge2e_network(path: str | os.PathLike) -> GE2ENetwork:
    """A Resemblyzer-format checkpoint (``{"model_state": {"lstm.*", "linear.*", ...}}``) ->
    :class:`GE2ENetwork`, sizes read from the tensors. ``similarity_weight`` / ``_bias``
    (GE2E training-loss scalars) are ignored."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--speaker-encoder ge2e:{path}: no such file; pass Resemblyzer's "
                         f"pretrained.pt (site-packages/resemblyzer/pretrained.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input
        raise InputError(f"{path}: not a readable torch checkpoint ({e}); pass Resemblyzer's "
                         f"pretrained.pt") from e
    state = ckpt.get("model_state", ckpt) if isinstance(ckpt, dict) else None
    keys = {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "linear.weight", "linear.bias"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise InputError(f"{path}: not a GE2E voice encoder checkpoint (needs model_state with "
                         f"{sorted(keys)}); pass Resemblyzer's pretrained.pt")
    n_mels = int(state["lstm.weight_ih_l0"].shape[1])
    hidden = int(state["lstm.weight_hh_l0"].shape[1])
    layers = sum(1 for k in state if k.startswith("lstm.weight_ih_l"))
    dim = int(state["linear.weight"].shape[0])
    if n_mels != N_MELS:
        raise InputError(f"{path}: the LSTM reads {n_mels} mel channels; spokenlm's GE2E "
                         f"front-end makes {N_MELS} (Resemblyzer's)")
    net = GE2ENetwork(n_mels, hidden, layers, dim)
    wanted = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
    try:
        net.load_state_dict(wanted, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: GE2E weights do not fit a {layers}-layer LSTM "
                         f"{n_mels}->{hidden} + linear {hidden}->{dim} ({e})") from e
    return net.eval().requires_grad_(False)


class _Vad:
    """WebRTC VAD on 16-bit PCM windows: the wrapper when it imports, else its C extension.

    The VAD adapts to the signal, so each utterance gets a fresh one (as Resemblyzer does)."""

    def __init__(self, mode: int = VAD_MODE) -> None:
        self.mode = mode
        try:
            import webrtcvad

            self._wrapper: Any = webrtcvad
            self._ext: Any = None
        except ImportError:
            import _webrtcvad  # the webrtcvad package's extension; raises ImportError if absent

            self._wrapper, self._ext = None, _webrtcvad

    def flags(self, pcm: np.ndarray, window: int) -> np.ndarray:
        """int16 (W * window,) -> bool (W,): speech in each window."""
        raw = pcm.astype("<i2").tobytes()
        step = 2 * window
        if self._wrapper is not None:
            vad = self._wrapper.Vad(self.mode)
            speech = lambda buf: vad.is_speech(buf, SAMPLE_RATE)  # noqa: E731
        else:
            handle = self._ext.create()
            self._ext.init(handle)
            self._ext.set_mode(handle, self.mode)
            speech = lambda buf: self._ext.process(handle, SAMPLE_RATE, buf,  # noqa: E731
                                                   len(buf) // 2)
        return np.array([bool(speech(raw[i:i + step])) for i in range(0, len(raw), step)],
                        dtype=bool)


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale (T,) up so its RMS is ``target_dbfs``; louder or silent audio is unchanged."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 0.0:
        return wav
    change = target_dbfs - 20.0 * np.log10(rms)
    return wav if change < 0 else (wav * 10 ** (change / 20)).astype(np.float32)


def speech_mask(flags: np.ndarray, average: int = VAD_AVERAGE,
                max_silence: int = VAD_MAX_SILENCE) -> np.ndarray:
    """Per-window VAD flags (W,) -> windows kept (W,): a window counts as speech when more
    than half of the ``average`` windows around it (``(average - 1) // 2`` before) are, and
    speech is widened by ``max_silence // 2`` windows each side."""
    padded = np.concatenate([np.zeros((average - 1) // 2), flags.astype(np.float64),
                             np.zeros(average // 2)])
    votes = np.convolve(padded, np.ones(average), mode="valid")  # (W,) speech windows around
    speech = votes * 2 > average
    left = (max_silence + 1) // 2
    widened = np.pad(speech.astype(np.float64), (left, max_silence - left))
    return np.convolve(widened, np.ones(max_silence + 1), mode="valid") > 0  # (W,)


def trim_long_silences(wav: np.ndarray, vad: _Vad) -> np.ndarray:
    """(T,) -> (T',) with the non-speech windows dropped (T cut to whole 30 ms windows)."""
    window = VAD_WINDOW_MS * SAMPLE_RATE // 1000
    wav = wav[:len(wav) - len(wav) % window]
    pcm = np.clip(np.round(wav * INT16_MAX), -INT16_MAX - 1, INT16_MAX).astype(np.int16)
    keep = np.repeat(speech_mask(vad.flags(pcm, window)), window)
    return wav[keep]


def partial_slices(n_samples: int) -> list[tuple[int, int]]:
    """Mel-frame ranges ``[start, start + 160)`` of the partial utterances of a clip."""
    n_frames = -(-(n_samples + 1) // HOP_SAMPLES)
    step = int(round(SAMPLE_RATE / PARTIAL_RATE / HOP_SAMPLES))  # 77
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP_SAMPLES
    if len(starts) > 1 and (n_samples - last) / (PARTIAL_FRAMES * HOP_SAMPLES) < MIN_COVERAGE:
        starts = starts[:-1]
    return [(s, s + PARTIAL_FRAMES) for s in starts]


class GE2EEncoder(SpeakerEmbedder):
    """Resemblyzer's pretrained GE2E voice encoder: 16 kHz mono (T,) -> embedding (256,)."""

    #: one VAD window: the least audio preprocessing can use
    min_samples = VAD_WINDOW_MS * SAMPLE_RATE // 1000

    def __init__(self, path: str | os.PathLike | None = None, device: str = "auto",
                 batch_size: int = 64, trim: bool = True) -> None:
        found = resemblyzer_weights() if path is None else Path(path)
        if found is None:
            raise InputError("--speaker-encoder ge2e: Resemblyzer's pretrained.pt not found "
                             "(pip install Resemblyzer); or pass ge2e:PATH to the file")
        self.path = found
        self.device = resolve_device(device)
        self.net = load_ge2e_network(found).to(self.device)
        self.dim = int(self.net.linear.out_features)
        self.batch_size = batch_size
        self.vad: _Vad | None = None
        if trim:
            try:
                self.vad = _Vad()
            except ImportError:
                self.vad = None
        self.fb = mel_filterbank(SAMPLE_RATE, WIN_SAMPLES, N_MELS).to(self.device)  # (40, 201)
        self.window = torch.hann_window(WIN_SAMPLES, device=self.device)

    def preprocess(self, wav: np.ndarray) -> np.ndarray:
        """(T,) -> float32 (T',): volume-normalised, long silences trimmed."""
        wav = normalize_volume(np.asarray(wav, dtype=np.float32).reshape(-1))
        return trim_long_silences(wav, self.vad) if self.vad is not None else wav

    def mel(self, wav: np.ndarray) -> Tensor:
        """Preprocessed (T,) -> mel power spectrogram (T // 160 + 1, 40) float32."""
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)
        spec = torch.stft(x, WIN_SAMPLES, HOP_SAMPLES, WIN_SAMPLES, self.window, center=True,
                          pad_mode="constant", return_complex=True)  # (201, N)
        return (self.fb @ spec.abs().square()).T  # (N, 40)

    def partials(self, wav: np.ndarray) -> Tensor:
        """Preprocessed (T,) -> mel partial utterances (P, 160, 40)."""
        slices = partial_slices(len(wav))
        end = slices[-1][1] * HOP_SAMPLES
        wav = np.pad(wav, (0, max(0, end - len(wav))))
        mel = self.mel(wav)
        return torch.stack([mel[a:b] for a, b in slices])

    @torch.inference_mode()
    def embed_many(self, wavs: Sequence[np.ndarray], desc: str = "speaker") -> np.ndarray:
        """Utterances (each float (T_i,), 16 kHz mono) -> float32 (N, D); NaN rows where the
        VAD found no speech. Partials of several utterances share a batch."""
        wavs = [self.check(w, i) for i, w in enumerate(wavs)]
        out = np.full((len(wavs), self.dim), np.nan, dtype=np.float32)
        bar = progress(desc=desc, total=len(wavs), unit="utt")
        pending: list[tuple[int, Tensor]] = []

        def flush() -> None:
            if not pending:
                return
            emb = self.net(torch.cat([p for _, p in pending]))  # (sum P_i, D)
            start = 0
            for i, p in pending:
                mean = emb[start:start + len(p)].mean(dim=0)
                out[i] = (mean / mean.norm()).float().cpu().numpy()
                start += len(p)
            bar.update(len(pending))
            pending.clear()

        for i, wav in enumerate(wavs):
            wav = self.preprocess(wav)
            if not len(wav):
                bar.update(1)
                continue
            pending.append((i, self.partials(wav)))
            if sum(len(p) for _, p in pending) >= self.batch_size:
                flush()
        flush()
        bar.close()
        return out

    def describe(self) -> str:
        trim = "VAD trim" if self.vad is not None else "no VAD trim (webrtcvad missing)"
        return f"ge2e:{self.path} (Resemblyzer GE2E, {trim})"


@register_speaker_encoder("ge2e")
def _ge2e(argument: str | None, **kwargs: Any) -> GE2EEncoder:
    return GE2EEncoder(argument or None, **kwargs)
