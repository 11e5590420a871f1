"""Where outputs may go: safe file names for utterance ids, outputs that never overwrite inputs,
and saved dirs that replace only their own kind.

Three rules keep every command safe by default:

- :func:`unique_names` turns ids (from manifests, folders, speaker tables) into file names that
  stay inside the output folder and never collide, so ``../../x`` or ``a/b`` write
  ``<output>/…_x-1f2e3d4c.wav`` and two ids never share a file.
- :func:`check_output` refuses an ``--output`` that is an input, contains one, or lies inside
  a folder read whole as input; :func:`~spokenlm.common.options.command` calls it for every
  command.
- :func:`check_replaceable` lets a saved dir (tokenizer, LM, vocoder, ...) replace only an
  empty dir or a dir of its own :class:`ArtifactKind`; :func:`~spokenlm.common.files.atomic_dir`
  calls it for every save.

And one rule keeps every run directory portable: a path written into a JSON/JSONL artifact
(the *holder*) goes through :func:`store_path` and is read back with :func:`resolve_path`
(see there), so a run moved, copied or evaluated from another working directory reads the
same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

#: longest name :func:`unique_names` returns; leaves room for suffixes (".continuation.wav")
#: and atomic-write temporaries within the usual 255-byte limit of a file name
MAX_NAME = 100
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_HASH = 8
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}  # special names on Windows file systems


def unique_names(ids: Iterable[str], max_len: int = MAX_NAME) -> dict[str, str]:
    """A distinct, safe file name (no suffix) for each id of one run: ``{id: name}``.

    A name is one path component of ``[A-Za-z0-9_-]``, starting with a letter or digit, at
    most ``max_len`` characters. An id that already is such a name keeps it; any other id
    (separators, dots, spaces, control characters, non-ASCII, too long, empty) gets its
    unsafe runs replaced by ``_`` and ``-`` plus 8 hex digits of its hash, so two ids that
    read alike still get different names. An id whose name clashes with an earlier one,
    also ignoring case (for case-insensitive file systems), gets the hash too.

    Deterministic, and an id's name depends only on the ids before it: a rerun with a
    longer (or ``--limit``-ed) list of the same inputs names the shared ids alike.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for uid in ids:
        if uid in names:
            continue
        uid_str = str(uid)
        plain = (_SAFE.fullmatch(uid_str) is not None and len(uid_str) <= max_len
                 and uid_str.casefold() not in _RESERVED)
        name = uid_str if plain else ""
        salt = 0
        while not name or name.casefold() in taken:
            name = _hashed_name(uid_str, salt, max_len)
            salt += 1
        taken.add(name.casefold())
        names[uid] = name
    return names


def _hashed_name(uid: str, salt: int, max_len: int) -> str:
    """Readable part of ``uid`` + ``-`` + a hash of it (and of ``salt`` when retrying)."""
    readable = _UNSAFE_RUN.sub("_", uid).lstrip("_-")[:max_len - _HASH - 1].rstrip("_-")
    data = uid.encode("utf-8", "surrogatepass") + (b"\0%d" % salt if salt else b"")
    digest = hashlib.sha1(data).hexdigest()[:_HASH]
    return f"{readable}-{digest}" if readable else f"id-{digest}"


def check_output(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                 scanned: Iterable[str | os.PathLike | None] = (), flag: str = "--output"
                 ) -> None:
    """Refuse an output path that would overwrite or swallow an input (symlinks resolved).

    Raises :class:`InputError` when ``output`` is one of ``inputs`` (a manifest tokenized onto
    itself), contains one (``resynth x.wav --output .``), or lies inside a folder of
    ``scanned`` (inputs read whole, e.g. a folder of audio: outputs written there would be
    read back as inputs and could overwrite them). ``None`` inputs are ignored.
    """
    out = Path(output).resolve()
    for given in inputs:
        if given is None:
            continue
        inp = Path(given).resolve()
        if inp == out:
            raise InputError(f"{flag} {output} is the input {given}: writing there would "
                             f"overwrite it; choose another {flag}")
        if out in inp.parents:
            raise InputError(f"{flag} {output} contains the input {given}: writing there "
                             f"could overwrite it; choose an {flag} outside it")
    for folder in scanned:
        if folder is None or not Path(folder).is_dir():
            continue
        if Path(folder).resolve() in out.parents:
            raise InputError(f"{flag} {output} lies inside the input folder {folder}: its "
                             f"files would be read back as inputs; choose an {flag} outside "
                             f"{folder}")


@dataclass(frozen=True)
class ArtifactKind:
    """How a saved dir of one kind is recognised: ``files`` it always holds and, when
    ``config_type`` is set, the ``type`` its ``config.json`` names (a string, or a test)."""

    name: str
    files: tuple[str, ...]
    config_type: str | Callable[[object], bool] | None = None

    def matches(self, path: Path) -> bool:
        if not all((path / f).exists() for f in self.files):
            return False
        if self.config_type is None:
            return True
        try:
            found = json.loads((path / "config.json").read_text()).get("type")
        except (OSError, ValueError, AttributeError):
            return False
        if callable(self.config_type):
            return bool(self.config_type(found))
        return found == self.config_type


def check_replaceable(path: str | os.PathLike, kind: ArtifactKind | None,
                      overwrite: bool = False) -> None:
    """Refuse to replace ``path`` with a saved dir unless it is missing, an empty dir, a dir
    of the same ``kind`` (``None``: no kind is the same), or ``overwrite`` is set.

    Replacing a dir deletes all its files, so a tokenizer saved into a folder of recordings
    would delete the recordings; this is the check that stops it.
    """
    path = Path(path)
    if overwrite or not path.exists():
        return
    if not path.is_dir():
        raise InputError(f"{path}: exists and is a file, not a "
                         f"{kind.name if kind else 'saved'} directory; choose another "
                         f"output path, or pass --overwrite to replace it")
    if not any(path.iterdir()) or (kind is not None and kind.matches(path)):
        return
    what = f"a spokenlm {kind.name} directory" if kind else "empty"
    raise InputError(f"{path}: exists and is not {what}; saving there would delete its "
                     f"files; choose another output path, or pass --overwrite to replace it")



def run_root(holder: str | os.PathLike, levels: int = 1) -> Path:
    """The run a holder file belongs to: the folder ``levels`` above the holder's folder
    (symlinks resolved). Never a filesystem root or the home folder: where the count would
    reach one, the holder's own folder is the run."""
    folder = Path(os.path.realpath(holder)).parent
    root = folder.parents[levels - 1] if 0 < levels <= len(folder.parents) else folder
    if root == Path(root.anchor) or root == Path(os.path.realpath(Path.home())):
        return folder
    return root


def store_path(path: str | os.PathLike | None, holder: str | os.PathLike, *,
               levels: int = 1) -> str | None:
    """How ``path`` is written into the JSON/JSONL file ``holder``.

    ``path`` means what it means to the writing process (absolute, or relative to the
    working directory). Inside the holder's run (:func:`run_root`: by default the folder
    holding the holder's folder, i.e. the run dir around a command's ``--output``; a saved
    dir in ``<training run>/final`` passes ``levels=2``) it is stored relative to the
    holder's folder (``../corpus/wavs/a.wav``), so the run can move as a whole; anything
    outside the run (a shared corpus or tokenizer beside it) is stored absolute, so the run
    can move without it. The folders on the way are taken with symlinks resolved (so a
    linked-in folder counts where it really is), the last part as named (a symlinked file
    stays the link); ``/`` separators. None stays None.
    """
    if path is None:
        return None
    given = os.path.abspath(path)
    target = Path(os.path.realpath(os.path.dirname(given))) / os.path.basename(given)
    root = run_root(holder, levels)
    if target != root and root not in target.parents:
        return str(target)
    return Path(os.path.relpath(target, Path(os.path.realpath(holder)).parent)).as_posix()


def resolve_path(stored: str | os.PathLike | None, holder: str | os.PathLike) -> Path | None:
    """The file a path read from ``holder`` names: absolute as stored, else joined to the
    holder's folder (:func:`store_path` wrote it so). Artifacts written before paths were
    stored relative to their file held them relative to the writer's working directory:
    when the holder-relative file does not exist but that one does, it is taken (so older
    runs still read from where they were made). None stays None."""
    if stored is None:
        return None
    given = Path(stored)
    if given.is_absolute():
        return given
    local = Path(os.path.normpath(Path(os.path.realpath(holder)).parent / given))
    if not os.path.lexists(local) and os.path.lexists(given):
        return Path(os.path.abspath(given))
    return local


def store_row(row: dict, holder: str | os.PathLike, keys: Iterable[str], *,
              levels: int = 1) -> dict:
    """``row`` with the string/path values of ``keys`` through :func:`store_path`."""
    keys = frozenset(keys)
    return {k: store_path(v, holder, levels=levels)
            if k in keys and isinstance(v, (str, os.PathLike)) else v for k, v in row.items()}


def resolve_row(row: dict, holder: str | os.PathLike, keys: Iterable[str]) -> dict:
    """``row`` with the string values of ``keys`` through :func:`resolve_path` (as str)."""
    keys = frozenset(keys)
    return {k: str(resolve_path(v, holder)) if k in keys and isinstance(v, str) and v else v
            for k, v in row.items()}


def stored_fields(options: Any, holder: str | os.PathLike, *, levels: int = 1,
                  drop_none: bool = False) -> dict[str, Any]:
    """An options dataclass as a JSON-ready dict for ``holder`` (a metrics or config file
    recording its inputs): ``Path`` values (also inside lists) through :func:`store_path`;
    nested options (``trainer``) flattened, as the CLI flags are."""
    from .options import flat_fields

    assert is_dataclass(options), options

    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return store_path(value, holder, levels=levels)
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    out = {k: convert(v) for k, v in flat_fields(options).items()}
    return {k: v for k, v in out.items() if v is not None} if drop_none else out
