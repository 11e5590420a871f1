"""Kaldi data directories in: ``spokenlm data from-kaldi DIR``.

Reads ``wav.scp`` (``<recording-id> <audio file>``), and when present ``segments``
(``<utterance-id> <recording-id> <start> <end>`` in seconds, ``end`` -1 meaning the end of
the recording), ``text`` (``<utterance-id> <transcript>``) and ``utt2spk``
(``<utterance-id> <speaker>``; ``spk2utt`` is inverted when ``utt2spk`` is absent). Without
``segments`` every recording is one utterance with the recording's id; with it, each segment
is a row with ``start``, ``duration`` and ``recording_id``. Segments that overshoot their
recording by up to 0.5 s are cut at its end, as Kaldi's ``extract-segments`` does
(``--max-overshoot``); longer overshoots are skipped.

Only plain file names are read. ``wav.scp`` entries that are piped commands (``flac -c -d
x.flac |``, ``sph2pipe ... |``), standard input (``-``) or offsets into Kaldi archives
(``x.ark:123``) are refused: spokenlm never runs commands from a data file. Write each
recording to a file first (``wav-copy scp:wav.scp scp:files.scp``, where ``files.scp`` maps
each id to the ``.wav`` to write, or sox/ffmpeg) and list those files in ``wav.scp``.

Kaldi resolves a relative path in ``wav.scp`` against the directory the recipe ran in (most
recipes write absolute paths). That directory holds ``data/``, so by default a relative path
is resolved against the parent of the nearest enclosing folder named ``data`` (``s5`` for
``s5/data/train`` or ``s5/data/local/dev``), else against the data dir's grandparent;
``--root`` overrides this. Multi-channel files are skipped (Kaldi reads their first channel,
spokenlm would mix them all): put the channel in its own file. Duplicate ids are refused,
since Kaldi's ``utils/validate_data_dir.sh`` refuses them too (``utils/fix_data_dir.sh``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ...audio.constants import MAX_DURATION_S, MIN_DURATION_S
from ...audio.load import printable
from ...common.errors import InputError
from ...common.options import arg, command
from ...common.progress import log, progress
from ._importing import Headers, audio_row, refuse_duplicates, skip, write_imported

#: How far (s) a segment may run past its recording and be cut at its end (Kaldi's
#: ``extract-segments --max-overshoot`` default).
MAX_OVERSHOOT_S = 0.5
_ARK_OFFSET = re.compile(r":\d+(\[[^\]]*\])?$")


@dataclass
class FromKaldiOptions:
    data_dir: Path = arg(positional=True, help="Kaldi data directory (wav.scp, optional "
                                               "segments, text, utt2spk or spk2utt)")
    output: Path = arg(Path("manifest.jsonl"), short="-o", help="where to write the manifest")
    root: Path | None = arg(None, help="folder relative wav.scp paths are resolved against "
                                       "(None: the folder holding data/, where the recipe "
                                       "ran)")
    min_duration: float = arg(MIN_DURATION_S, help="skip rows shorter than this (s)")
    max_duration: float = arg(MAX_DURATION_S, help="skip rows longer than this (s)")


@command("data from-kaldi", FromKaldiOptions)
def from_kaldi(opts: FromKaldiOptions) -> Path:
    """Import a Kaldi data directory (wav.scp, segments, text, utt2spk) as a manifest."""
    data = Path(opts.data_dir)
    wav_scp = data / "wav.scp"
    if not wav_scp.is_file():
        raise InputError(f"{printable(data)}: no wav.scp; pass a Kaldi data directory (one "
                         f"with wav.scp, e.g. data/train)")
    root = Path(opts.root) if opts.root is not None else default_root(data)
    limits = {"min_duration": opts.min_duration, "max_duration": opts.max_duration,
              "tolerance": MAX_OVERSHOOT_S}
    wavs = _wav_entries(wav_scp, root)
    texts = {k: v for k, (_, v) in _table(data / "text").items()}
    speakers = _speakers(data)
    headers = Headers()
    rows: list[dict] = []
    skipped: list[dict] = []
    segments = data / "segments"
    if segments.is_file():
        items = []
        for uid, (lineno, rest) in _table(segments).items():
            fields = rest.split()
            entry = {"id": uid}
            try:
                rec, start, end = fields[0], float(fields[1]), float(fields[2])
                if len(fields) != 3:
                    raise ValueError
            except (IndexError, ValueError):
                skip(skipped, {**entry, "reason": f"{printable(segments)}:{lineno}: expected "
                                      f"'<utterance> <recording> <start> <end>', got {rest!r}"})
                continue
            if rec not in wavs:
                skip(skipped, {**entry, "reason": f"{printable(segments)}:{lineno}: "
                                      f"recording {rec!r} is not in {printable(wav_scp)}"})
                continue
            duration = None if end == -1 else end - start
            items.append((uid, rec, start, duration))
    else:
        items = [(rec, rec, None, None) for rec in wavs]
    for uid, rec, start, duration in progress(items, desc="checking audio", unit="utt"):
        path = wavs[rec]
        header = headers.get(path)
        if isinstance(header, str):
            row, reason = None, header
        elif header["num_channels"] != 1:
            row, reason = None, (f"{printable(path)}: {header['num_channels']} channels; "
                                 f"Kaldi reads the first, spokenlm would mix them all: write "
                                 f"the channel you want to its own file (e.g. `sox in.wav "
                                 f"out.wav remix 1`) and list that file")
        else:
            row, reason = audio_row(uid, path, header, start=start, duration=duration,
                                    **limits)
        if row is None:
            skip(skipped, {"id": uid, "recording_id": rec, "reason": reason})
            continue
        if start is not None:
            row["recording_id"] = rec
        if uid in speakers:
            row["speaker"] = speakers[uid]
        if texts.get(uid):
            row["text"] = texts[uid]
        rows.append(row)
    unmatched = len(set(texts) - {r["id"] for r in rows} - {s["id"] for s in skipped})
    if unmatched:
        log(f"{printable(data / 'text')}: {unmatched} utterances have no audio row; ignored")
    return write_imported(rows, skipped, opts.output, data)


def default_root(data_dir: Path) -> Path:
    """Where a Kaldi recipe ran for ``data_dir``: the parent of the nearest enclosing folder
    named ``data``, else ``data_dir``'s grandparent."""
    data_dir = Path(data_dir).absolute()
    for folder in (data_dir, *data_dir.parents):
        if folder.name == "data":
            return folder.parent
    return data_dir.parent.parent


def _wav_entries(wav_scp: Path, root: Path) -> dict[str, Path]:
    """``{recording id: absolute audio path}``; refuses commands, stdin and ark offsets."""
    entries = _table(wav_scp, text=False)
    refused = [(lineno, rid, rest) for rid, (lineno, rest) in entries.items()
               if _not_a_file(rest)]
    if refused:
        lineno, rid, rest = refused[0]
        what = ("a piped command" if rest.endswith("|") else "standard input" if rest == "-"
                else "an offset into a Kaldi archive")
        raise InputError(f"{printable(wav_scp)}:{lineno}: recording {rid!r} is read from "
                         f"{what} ({printable(rest)[:60]!r}; {len(refused)} of {len(entries)} "
                         f"entries are not files); spokenlm reads audio files and never runs "
                         f"commands: write each recording to a .wav file first (e.g. `wav-copy "
                         f"scp:wav.scp scp:files.scp`, files.scp listing '<id> <out>.wav', or "
                         f"sox/ffmpeg) and list those files in wav.scp")
    out = {}
    for rid, (lineno, rest) in entries.items():
        if not rest:
            raise InputError(f"{printable(wav_scp)}:{lineno}: recording {rid!r} has no file "
                             f"name; each line is '<recording-id> <audio file>'")
        path = Path(rest)
        out[rid] = (path if path.is_absolute() else root / path).absolute()
    return out


def _not_a_file(rxfilename: str) -> bool:
    if rxfilename.endswith("|") or rxfilename == "-":
        return True
    return _ARK_OFFSET.search(rxfilename) is not None and not os.path.exists(rxfilename)


def _speakers(data: Path) -> dict[str, str]:
    """``{utterance: speaker}`` from ``utt2spk``, else inverted from ``spk2utt``."""
    if (data / "utt2spk").is_file():
        out = {}
        for uid, (lineno, rest) in _table(data / "utt2spk").items():
            if len(rest.split()) != 1:
                raise InputError(f"{printable(data / 'utt2spk')}:{lineno}: expected "
                                 f"'<utterance> <speaker>', got {rest!r}; fix the line")
            out[uid] = rest
        return out
    out, where = {}, {}
    for spk, (lineno, rest) in _table(data / "spk2utt").items():
        for uid in rest.split():
            if uid in out:
                raise InputError(f"{printable(data / 'spk2utt')}:{lineno}: utterance {uid!r} "
                                 f"is also listed under speaker {out[uid]!r} (line "
                                 f"{where[uid]}); each utterance has one speaker")
            out[uid], where[uid] = spk, lineno
    return out


def _table(path: Path, text: bool = True) -> dict[str, tuple[int, str]]:
    """``{key: (line number, rest of line)}`` of a Kaldi table file (``{}`` when absent).
    Keys and file names keep bytes that are not UTF-8 (shown as ``\\xff`` in keys);
    ``text=True`` reads the rest as UTF-8, refusing other encodings."""
    if not path.is_file():
        return {}
    out: dict[str, tuple[int, str]] = {}
    ids: list[tuple[str, str]] = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        parts = raw.strip().split(None, 1)
        if not parts:
            continue
        key = printable(os.fsdecode(parts[0]))
        rest_raw = parts[1].strip() if len(parts) > 1 else b""
        if text:
            try:
                rest = rest_raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{printable(path)}:{lineno}: not UTF-8 ({e.reason}); "
                                 f"convert the file, e.g. `iconv -f LATIN1 -t UTF-8`") from e
        else:
            rest = os.fsdecode(rest_raw)
        ids.append((key, f"line {lineno}"))
        out[key] = (lineno, rest)
    refuse_duplicates(ids, path)
    return out
