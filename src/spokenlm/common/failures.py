"""Known failure types as one-line messages that name the file and the fix.

:func:`describe_failure` turns an exception a user can act on (a missing path, an output
below a regular file, a full disk, binary bytes where text was expected, truncated weights,
broken JSON, ...) into ``<file>: <what> (<fix>)``. The file comes from the exception
(``OSError.filename``) or, for errors that do not carry one (``UnicodeDecodeError``,
``SafetensorError``, ``JSONDecodeError``), from the file being read where it was raised.
Anything else is a bug: :func:`bug_message` says so and how to get the traceback.
The CLI's error boundary (:func:`spokenlm.cli.main.main`) and the steps of ``eval all``
use both.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from .errors import SpokenLMError

#: environment variable that turns on full tracebacks (as ``spokenlm --debug`` does)
DEBUG_ENV = "SPOKENLM_DEBUG"
#: longest excerpt of a foreign exception's own message kept in a one-line message
MAX_DETAIL = 300
#: import name -> pip package, where they differ
_PIP_NAMES = {"sklearn": "scikit-learn", "soundfile": "soundfile", "yaml": "pyyaml",
              "pocketsphinx": "pocketsphinx", "espeakng": "espeakng"}
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".npy", ".npz")


def debug_enabled() -> bool:
    """Whether full tracebacks were asked for (``SPOKENLM_DEBUG=1`` or ``--debug``)."""
    return os.environ.get(DEBUG_ENV, "0").lower() not in ("", "0", "false", "no")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with its line breaks folded into spaces, cut to ``limit`` characters."""
    text = re.sub(r"\s*\n\s*", " ", str(text)).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def describe_failure(exc: BaseException) -> str | None:
    """``<file>: <what> (<fix>)`` for a known failure type; None when ``exc`` is a bug."""
    if isinstance(exc, SpokenLMError):
        return one_line(str(exc))
    for types, describe in _DESCRIBERS:
        if isinstance(exc, types):
            message = describe(exc)
            if message is not None:
                return one_line(message)
    return None


def bug_message(exc: BaseException) -> str:
    """The one line for an exception no describer knows: it is a bug, and how to report it."""
    return (f"internal error ({type(exc).__name__}: {one_line(str(exc), MAX_DETAIL)}); this "
            f"is a bug in spokenlm: rerun with --debug (or {DEBUG_ENV}=1) and report the "
            f"traceback")


def _at(file: str | None, message: str) -> str:
    return f"{file}: {message}" if file else message


def _detail(exc: BaseException) -> str:
    return one_line(str(exc), MAX_DETAIL) or type(exc).__name__


# ---- where the failing file is ---------------------------------------------------------


def _file_being_read(exc: BaseException, suffixes: tuple[str, ...] = ()) -> str | None:
    """The file a reader was working on when ``exc`` was raised, innermost frame first: a
    path local with one of ``suffixes`` (when given), else an open file object, else a path
    local naming an existing file (``Path.read_text``'s ``self``)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for want in ("suffix", "handle", "file") if suffixes else ("handle", "file"):
        for frame in reversed(frames):
            for value in frame.f_locals.values():
                name = _as_file(value, want, suffixes)
                if name is not None:
                    return name
    return None


def _as_file(value: object, want: str, suffixes: tuple[str, ...]) -> str | None:
    if want == "handle":
        name = getattr(value, "name", None) if isinstance(value, io.IOBase) else None
        return name if isinstance(name, str) else None
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, str) and (
            len(value) > 4096 or "\n" in value or not value):
        return None
    text = os.fspath(value)
    if not isinstance(text, str):
        return None
    if want == "suffix":
        return text if suffixes and text.endswith(suffixes) else None
    try:
        return text if (os.sep in text or isinstance(value, os.PathLike)) and \
            Path(text).is_file() else None
    except (OSError, ValueError):
        return None


def _blocking_file(path: str) -> str | None:
    """The first ancestor of ``path`` that exists and is not a folder."""
    for parent in Path(path).parents:
        if parent.exists():
            return str(parent) if not parent.is_dir() else None
    return None


# ---- describers, most specific first ----------------------------------------------------


def _os_error(exc: OSError) -> str:
    # a failed os.replace(temporary, output) concerns the output, named second
    file = exc.filename2 if exc.filename2 is not None else exc.filename
    file = os.fspath(file) if isinstance(file, os.PathLike) else file
    if isinstance(file, bytes):
        file = file.decode(errors="replace")
    if file is None and exc.errno is None:  # a library's OSError(message), e.g. transformers
        return _detail(exc)
    if isinstance(exc, NotADirectoryError):
        blocker = _blocking_file(file) if file else None
        if blocker:
            return (f"{blocker}: is a regular file, so {file} cannot be made below it "
                    f"(choose another output path, or move {blocker} away)")
        return _at(file, "a part of this path is a file, not a folder (check the path)")
    if isinstance(exc, FileExistsError):
        if file and Path(file).exists() and not Path(file).is_dir():
            return _at(file, "is a regular file where a folder is needed (choose another "
                             "output path, or move the file away)")
        return _at(file, "already exists (remove it, or choose another path)")
    if isinstance(exc, FileNotFoundError):
        return _at(file, "no such file or directory (check the path; if a spokenlm stage "
                         "writes it, run that stage first)")
    if isinstance(exc, IsADirectoryError):
        return _at(file, "is a folder where a file is expected (pass the file inside it, or "
                         "choose another output name)")
    if isinstance(exc, PermissionError):
        return _at(file, "permission denied (give this user read/write access to it, or "
                         "choose another path)")
    if isinstance(exc, BrokenPipeError):
        return ("the output pipe was closed by its reader (e.g. `| head`), so the rest of "
                "the printed output was dropped (read the output file instead)")
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return _at(file, "no space left on the device (free disk space, or write the "
                         "output to another disk)")
    if exc.errno == errno.EROFS:
        return _at(file, "read-only file system (write the output somewhere writable)")
    if exc.errno == errno.ENAMETOOLONG:
        return _at(file, "file name too long (choose a shorter output path)")
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return _at(file, "too many open files (raise the limit with `ulimit -n 4096`, or use "
                         "fewer workers)")
    what = exc.strerror or _detail(exc)
    return _at(file, f"{what} (check the path and the disk)")


def _unicode_error(exc: UnicodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        file = _file_being_read(exc)
        return _at(file, f"not UTF-8 text ({exc.reason} at byte {exc.start}) (pass the text "
                         f"or JSONL file meant here, not a binary one, or re-save it as UTF-8)")
    if isinstance(exc, UnicodeEncodeError):
        return (f"cannot write text as {exc.encoding} ({exc.reason}) (use a UTF-8 locale, "
                f"e.g. PYTHONIOENCODING=utf-8)")
    return f"text encoding error ({_detail(exc)}) (pass UTF-8 text)"


def _json_error(exc: json.JSONDecodeError) -> str:
    file = _file_being_read(exc, (".json", ".jsonl"))
    return _at(file, f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}) "
                     f"(fix that line, or regenerate the file)")


def _safetensors_error(exc: Exception) -> str:
    file = _file_being_read(exc, (".safetensors",))
    return _at(file, f"truncated or corrupt safetensors weights ({_detail(exc)}) (the save was "
                     f"probably interrupted: save, train or download the model again)")


def _torch_file_error(exc: Exception) -> str | None:
    if isinstance(exc, RuntimeError) and "PytorchStreamReader" not in str(exc):
        return None
    file = _file_being_read(exc, _WEIGHT_SUFFIXES)
    first_sentence = one_line(str(exc), MAX_DETAIL).split(". ")[0] or type(exc).__name__
    return _at(file, f"truncated or corrupt file ({first_sentence}) (delete it and rerun the "
                     f"stage that writes it)")


def _csv_error(exc: csv.Error) -> str:
    file = _file_being_read(exc, (".csv", ".tsv"))
    return _at(file, f"not valid CSV ({_detail(exc)}) (fix the file or regenerate it)")


def _import_error(exc: ImportError) -> str:
    name = (exc.name or "").split(".")[0]
    if not name:
        return f"an import failed ({_detail(exc)}) (reinstall spokenlm's dependencies)"
    if name == "spokenlm":  # spokenlm's own modules disagree: files changed under a run
        return (f"spokenlm's own modules do not match ({_detail(exc)}) (its files changed "
                f"while this ran, or the install is half-upgraded: rerun, or reinstall "
                f"spokenlm)")
    return (f"the optional dependency {name!r} is not installed or broken ({_detail(exc)}) "
            f"(pip install {_PIP_NAMES.get(name, name)})")


def _out_of_memory(exc: BaseException) -> str | None:
    if isinstance(exc, MemoryError):
        return ("out of memory (use a smaller batch, e.g. --batch-size or --batch-tokens, "
                "or fewer files at once)")
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
        return "GPU out of memory (use a smaller batch, or --device cpu)"
    return None


def _safetensors_types() -> tuple[type, ...]:
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return ()
    return (SafetensorError,)


_DESCRIBERS: list[tuple[tuple[type, ...] | type, Callable[[BaseException], str | None]]] = [
    (OSError, _os_error),  # type: ignore[list-item]
    (UnicodeError, _unicode_error),  # type: ignore[list-item]
    (json.JSONDecodeError, _json_error),  # type: ignore[list-item]
    (_safetensors_types(), _safetensors_error),  # type: ignore[list-item]
    ((pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError),
     _torch_file_error),  # type: ignore[list-item]
    (csv.Error, _csv_error),  # type: ignore[list-item]
    (ImportError, _import_error),  # type: ignore[list-item]
    ((MemoryError, RuntimeError), _out_of_memory),
]
