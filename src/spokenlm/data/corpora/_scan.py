"""Scanning shared by the corpus importers: the audio files of a LibriVox-style split folder,
the splits asked for, and header checks (manifest fields of each audio file from its header,
no decoding unless asked, and a skip record for each file refused)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...audio.load import AudioError, audio_info, decode_audio, printable, validate_audio
from ...common.errors import InputError
from ...common.progress import log, progress

#: Audio of the LibriVox corpora (LibriSpeech, Libri-Light): FLAC, or WAV once converted.
AUDIO_EXTENSIONS = (".flac", ".wav")


def split_audio(folder: Path) -> list[Path]:
    """The audio files ``<speaker>/<book or chapter>/<name>.flac|.wav`` of a split folder,
    sorted, hidden files left out."""
    return sorted(p for p in folder.glob("*/*/*") if p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def choose_splits(found: dict[str, Path], wanted: list[str], root: Path) -> dict[str, Path]:
    """The splits of ``found`` (name -> folder under ``root``) named in ``wanted`` (--splits),
    in that order; all of ``found`` when ``wanted`` is empty."""
    if not wanted:
        return found
    unknown = [s for s in wanted if s not in found]
    if unknown:
        raise InputError(f"{printable(root)}: no split {unknown} here (found "
                         f"{sorted(found)}); check --splits")
    return {s: found[s] for s in wanted}


def header_rows(paths: list[Path], *, min_duration: float, max_duration: float | None,
                validate: bool = False, jobs: int = 2, desc: str = "reading headers"
                ) -> tuple[dict[Path, dict], list[dict]]:
    """``path -> {"path", "duration", "sample_rate", "num_channels"}`` for each readable file,
    and ``[{"path", "reason"}]`` for the others (in ``paths`` order).

    Each header goes through :func:`~spokenlm.audio.load.audio_info` (files longer than
    ``max_duration`` s refused; None: no limit); files shorter than ``min_duration`` s are
    refused from the header. ``validate`` also decodes each file and refuses silent, empty or
    non-finite audio, as ``spokenlm audio manifest`` does.
    """
    def check(path: Path) -> tuple[dict | None, str | None]:
        try:
            info = audio_info(path, max_duration=max_duration)
            duration = info.frames / info.samplerate
            if duration < min_duration:
                raise AudioError(f"{printable(path)}: too short ({duration:.3f} s < "
                                 f"{min_duration} s); remove it or lower --min-duration")
            if validate:
                validate_audio(decode_audio(path, info), path, min_duration=min_duration)
        except AudioError as e:
            return None, str(e)
        return {"path": path.resolve(), "duration": round(duration, 4),
                "sample_rate": info.samplerate, "num_channels": info.channels}, None

    kept: dict[Path, dict] = {}
    skipped: list[dict] = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for path, (row, reason) in zip(paths, progress(pool.map(check, paths), desc=desc,
                                                       total=len(paths), unit="file")):
            if row is None:
                log(f"skipped {reason}")
                skipped.append({"path": str(path), "reason": reason})
            else:
                kept[path] = row
    return kept, skipped
