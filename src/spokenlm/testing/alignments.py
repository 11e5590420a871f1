"""Tiny alignment files for tests, written the way aligners write them: MFA TextGrids (by
praatio, as MFA does), CTM lines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

#: (start_s, end_s, label)
Span = tuple[float, float, str]


def write_mfa_textgrid(path: str | os.PathLike, phones: Sequence[Span],
                       words: Sequence[Span] = (), duration: float | None = None,
                       speaker: str | None = None,
                       more_speakers: dict[str, tuple[Sequence[Span], Sequence[Span]]] | None
                       = None) -> Path:
    """A TextGrid in MFA's layout: interval tiers ``words`` and ``phones``, blanks between
    intervals filled with empty ones (what MFA writes for silence once it is cleaned up).
    With ``speaker`` (or ``more_speakers``: {speaker: (phones, words)}) the tiers are named
    ``<speaker> - words`` / ``<speaker> - phones``, as MFA names them when a file has
    several speakers."""
    from praatio import textgrid

    groups = {speaker: (phones, words), **(more_speakers or {})}
    end = duration if duration is not None else max(
        e for ph, wd in groups.values() for _, e, _ in [*ph, *wd])
    tg = textgrid.Textgrid()
    for spk, (ph, wd) in groups.items():
        for kind, spans in (("words", wd), ("phones", ph)):
            name = f"{spk} - {kind}" if spk is not None else kind
            tg.addTier(textgrid.IntervalTier(name, list(spans), 0, end))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    return path


def ctm_lines(utterance: str, spans: Sequence[Span], channel: str = "1",
              confidence: float | None = None) -> list[str]:
    """CTM lines ``<utterance> <channel> <start> <duration> <token> [<confidence>]``."""
    conf = "" if confidence is None else f" {confidence:.2f}"
    return [f"{utterance} {channel} {s:.3f} {e - s:.3f} {label}{conf}" for s, e, label in spans]
