"""The report's figures, drawn with matplotlib's object API (no pyplot state) into image
bytes: PNG for line and bar plots, JPEG for spectrograms (a fifth of the PNG's size for
the same look). The page embeds them, so a report is one file. Figures are small (80 dpi)
because a run report holds dozens of them and must write in seconds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

DPI = 80
#: spectrogram analysis: 25 ms windows every 10 ms at 16 kHz, 80 dB of range
N_FFT, HOP, WIN = 512, 160, 400
DYNAMIC_RANGE_DB = 80.0
SILENCE_COLOR, UNIT_COLOR = "#d62728", "#4c72b0"
JPEG_QUALITY = 85


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, *,
            left: float = 0.75, bottom: float = 0.45, top: float = 0.3, right: float = 0.15,
            wspace: float = 0.25, **kw):
    """A figure of ``nrows`` x ``ncols`` axes with margins given in inches (a fixed layout:
    matplotlib's constrained layout costs more than the drawing at this size)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=wspace)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _jpeg(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=DPI, pil_kwargs={"quality": JPEG_QUALITY})
    return buf.getvalue()


def log_spectrogram(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Power spectrogram in dB, (F, T) with F = N_FFT // 2 + 1 bins up to Nyquist and T
    frames every HOP samples (window and hop scaled to ``sample_rate``)."""
    scale = sample_rate / 16000
    n_fft, hop, win = int(N_FFT * scale), max(1, int(HOP * scale)), int(WIN * scale)
    wav = np.asarray(wav, np.float32)
    if wav.size < win:
        wav = np.pad(wav, (0, win - wav.size))
    n_frames = 1 + (wav.size - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]  # (T, win)
    frames = wav[idx] * np.hanning(win).astype(np.float32)[None, :]
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2  # (T, F)
    db = 10 * np.log10(np.maximum(power, 1e-10))
    return db.T


def spectrograms(panels: Sequence[tuple[str, np.ndarray, int]], *,
                 marks: Sequence[tuple[float, str]] = (), width: float = 12.0,
                 height: float = 2.1) -> bytes:
    """Spectrograms side by side, on one colour scale: ``(title, wav (T,), rate)`` each
    (JPEG bytes).

    ``marks`` are (seconds, label) vertical lines drawn on every panel (the end of a
    prompt); time before the first mark is shaded.
    """
    specs = [log_spectrogram(w, sr) for _, w, sr in panels]
    top = max((float(s.max()) for s in specs), default=0.0)
    fig, axes = _figure(width, height, ncols=len(panels), left=0.5, wspace=0.06, sharey=True)
    for ax, (title, wav, sr), spec in zip(axes[0], panels, specs):
        dur = len(wav) / sr
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                  vmin=top - DYNAMIC_RANGE_DB, vmax=top,
                  extent=(0.0, dur, 0.0, sr / 2000.0))
        for t, label in marks:
            ax.axvline(t, color="#00e5ff", lw=2)
            ax.axvspan(0.0, t, color="white", alpha=0.12, lw=0)
            ax.text(t, sr / 2000.0 * 0.95, f" {label} ", color="#00e5ff", va="top",
                    ha="left", fontsize=9, fontweight="bold",
                    bbox={"facecolor": "black", "alpha": 0.65, "pad": 1.5, "lw": 0})
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("kHz", fontsize=8)
    return _jpeg(fig)


def _series(log: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in log
           if isinstance(r.get(key), (int, float)) and isinstance(r.get("step"), (int, float))]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])


def training_curves(log: Sequence[dict], panels: Sequence[tuple[str, Sequence[str]]], *,
                    width: float = 11.0, height: float = 2.6) -> bytes:
    """One panel per ``(y label, [log keys])``: each key's values against ``step``."""
    fig, axes = _figure(width, height, ncols=len(panels), wspace=0.4)
    for ax, (ylabel, keys) in zip(axes[0], panels):
        for key in keys:
            x, y = _series(log, key)
            if x:
                ax.plot(x, y, marker="o" if len(x) < 30 else None, ms=3, label=key)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.yaxis.get_offset_text().set_fontsize(7)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    return _png(fig)


def overlaid_losses(runs: Sequence[tuple[str, Sequence[dict]]], keys: Sequence[str], *,
                    width: float = 8.0, height: float = 3.2) -> bytes:
    """Loss curves of several runs on one axes: a colour per run, a line style per key."""
    styles = ["-", "--", ":", "-."]
    fig, axes = _figure(width, height)
    ax = axes[0][0]
    for i, (label, log) in enumerate(runs):
        color = f"C{i % 10}"
        for key, style in zip(keys, styles):
            x, y = _series(log, key)
            if x:
                ax.plot(x, y, style, color=color, marker="o" if key.startswith("valid") else None,
                        ms=3, label=f"{label}: {key}")
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("loss (nats / token)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def unit_histogram(tokens: np.ndarray, silence: int | None, *, title: str,
                   width: float = 11.0, height: float = 2.6) -> bytes:
    """Token count of every unit (deduplicated), the silence unit in red and labelled."""
    fig, axes = _figure(width, height)
    ax = axes[0][0]
    colors = [SILENCE_COLOR if u == silence else UNIT_COLOR for u in range(len(tokens))]
    ax.bar(np.arange(len(tokens)), tokens, width=1.0, color=colors)
    if silence is not None:
        ax.annotate(f"silence {silence}", (silence, tokens[silence]), xytext=(0, 2),
                    textcoords="offset points", color=SILENCE_COLOR, fontsize=8,
                    fontweight="bold", va="bottom", ha="center")
    ax.set_xlim(-0.5, len(tokens) - 0.5)
    ax.set_ylim(0, max(int(tokens.max()), 1) * 1.15)
    ax.set_xlabel("unit", fontsize=8)
    ax.set_ylabel("tokens", fontsize=8)
    ax.set_title(title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    return _png(fig)


def bar_chart(values: dict[str, float], *, xlabel: str, width: float = 8.0) -> bytes:
    """Horizontal bars, one per key, in the given order (per-step timings)."""
    names = list(values)
    fig, axes = _figure(width, 0.6 + 0.28 * len(names), left=2.2)
    ax = axes[0][0]
    y = np.arange(len(names))[::-1]
    ax.barh(y, [values[n] for n in names], color=UNIT_COLOR)
    for yi, n in zip(y, names):
        ax.text(values[n], yi, f" {values[n]:.1f}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.margins(x=0.12)
    return _png(fig)
