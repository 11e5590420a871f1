"""HTML pieces of the report: escaping, number formatting, tables, players, figures, and
the notice a section shows when the run lacks its data.

Figures are always embedded (PNG data URIs); audio is linked by a path relative to the
page, or embedded when the page is asked to be portable (``--embed``).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

#: the page's first line; an existing output is replaced only when it starts with it
GENERATOR = "<!-- spokenlm report -->"
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".mp3": "audio/mpeg"}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: object) -> str:
    """A number as a person reads it: integers with thousands separators, floats with 3
    decimals (3 significant digits when tiny, none when large); text as is."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) < 0.01:
            return f"{v:.3g}"
        if abs(v) >= 1000 or (v.is_integer() and abs(v) >= 10):
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.3f}"
    return str(value)


def short(name: object, keep: int = 2) -> str:
    """A model or path name with long paths cut to their last ``keep`` parts
    (``whisper-ct2:/a/b/c/model`` -> ``whisper-ct2:.../c/model``), for table cells."""
    text = str(name)
    head, sep, path = text.rpartition(":") if ":/" in text else ("", "", text)
    parts = path.split("/")
    if len(parts) > keep + 1:
        path = ".../" + "/".join(parts[-keep:])
    return f"{head}{sep}{path}"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "",
          raw: bool = False) -> str:
    """A table; cells are formatted with :func:`fmt` and escaped, unless ``raw`` (cells
    are then HTML already)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(fmt(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    return table(["", ""], pairs, cls="kv")


def missing(what: str, why: str, command: str | None = None) -> str:
    """The notice of a section whose data the run lacks: what, why, and the command that
    would produce it."""
    cmd = f"<pre class='cmd'>{esc(command)}</pre>" if command else ""
    return (f"<div class='missing'><b>{esc(what)}</b>: {esc(why)}"
            f"{'; to produce it:' if command else ''}{cmd}</div>")


def figure(image: bytes, alt: str, caption: str = "") -> str:
    """An embedded PNG or JPEG (told apart by their first bytes) with its caption (HTML)."""
    mime = "image/jpeg" if image[:2] == b"\xff\xd8" else "image/png"
    data = base64.b64encode(image).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure><img alt='{esc(alt)}' src='data:{mime};base64,{data}'>{cap}</figure>"


def section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{esc(anchor)}'><h2>{esc(title)}</h2>{body}</section>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def wav_bytes(wav: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV file bytes of ``wav`` (T,) float in [-1, 1]."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(wav, np.float32), -1, 1), sample_rate, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


@dataclass
class Page:
    """Where the page is written (links are relative to its folder) and whether audio
    is embedded."""

    output: Path
    embed: bool = False

    def link(self, path: Path) -> str:
        """``path`` as a URL relative to the page."""
        rel = os.path.relpath(Path(path).resolve(), self.output.resolve().parent)
        return quote(Path(rel).as_posix(), safe="/")

    def audio_src(self, path: Path) -> str:
        if self.embed:
            mime = AUDIO_TYPES.get(path.suffix.lower(), "audio/wav")
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        return self.link(path)

    def audio(self, path: Path | None, label: str = "") -> str:
        """A player for an audio file (a notice when the file is gone)."""
        if path is None:
            return f"<div class='gone'>{esc(label)} audio file not found</div>"
        return (f"<audio controls preload='metadata' title='{esc(label)}' "
                f"src='{self.audio_src(path)}'></audio>")

    @staticmethod
    def audio_clip(wav: np.ndarray, sample_rate: int, label: str = "") -> str:
        """A player for audio held in memory (a cut of a file), always embedded."""
        data = base64.b64encode(wav_bytes(wav, sample_rate)).decode("ascii")
        return (f"<audio controls preload='metadata' title='{esc(label)}' "
                f"src='data:audio/wav;base64,{data}'></audio>")


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;
 background:#fafbfc;font-size:14px}
header{background:#1d2330;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px} header .sub{color:#b8c0d0;font-size:12px;margin-top:4px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde;padding:6px 28px;
 z-index:2;font-size:13px} nav a{margin-right:14px;color:#2456a6;text-decoration:none}
main{max-width:1240px;margin:0 auto;padding:8px 28px 40px}
h2{border-bottom:2px solid #dde3ee;padding-bottom:4px;margin-top:34px}
h3{margin:20px 0 6px;font-size:15px} h4{margin:12px 0 4px;font-size:13px;color:#445}
table{border-collapse:collapse;margin:6px 0 10px;background:#fff;font-size:13px}
th,td{border:1px solid #e1e5ee;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#eef2f8} tr.stage td{background:#f4f6fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv td:first-child{color:#556;white-space:nowrap} table.kv thead{display:none}
.missing{background:#fff8e1;border:1px solid #f0d68a;border-radius:4px;padding:8px 10px;
 margin:8px 0} .cmd{background:#1d2330;color:#e8ecf3;padding:6px 9px;border-radius:3px;
 margin:6px 0 0;white-space:pre-wrap;font-size:12px}
.gone{color:#a33;font-style:italic}
figure{margin:6px 0} figure img{max-width:100%;display:block} figcaption{font-size:12px;
 color:#556}
.card{background:#fff;border:1px solid #dde3ee;border-radius:6px;padding:10px 12px;
 margin:12px 0}
.card .head{font-weight:600;margin-bottom:4px} .card .ref{color:#334;margin-bottom:6px}
.ab{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.three{display:grid;grid-template-columns:1fr 1fr 1fr;gap:14px}
.player b{display:block;font-size:12px;color:#445;margin-bottom:2px}
audio{width:100%;height:34px}
.asr{font-size:12px;margin-top:4px} .asr .wer{color:#2456a6;font-weight:600}
.note{font-size:12px;color:#556} details{margin:6px 0} summary{cursor:pointer;color:#2456a6}
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    links = "".join(f"<a href='#{esc(a)}'>{esc(t)}</a>" for a, t in nav)
    return (f"{GENERATOR}\n<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='generator' content='spokenlm report'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><div class='sub'>{esc(subtitle)}</div></header>"
            f"<nav>{links}</nav><main>{body}</main></body></html>\n")
