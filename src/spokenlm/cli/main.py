"""The ``spokenlm`` command: a sub-command per registered library function.

The commands are listed in one table, :data:`spokenlm.cli.commands.TABLE`; ``--help`` of
the top level and of a group is built from it alone, and only the command that runs imports
its module. Its options are generated from the function's options dataclass (see
:mod:`spokenlm.common.options`), so CLI defaults are the library defaults. :func:`main` is
the one error boundary: a failure prints one line naming the file and the fix (see
:mod:`spokenlm.common.failures`), never a traceback unless ``--debug`` asks for it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..common.failures import DEBUG_ENV, bug_message, debug_enabled, describe_failure
from ..common.files import json_safe
from ..common.options import COMMANDS, add_options, options_from_namespace
from .commands import GROUPS, TABLE, resolve

#: Modules whose import registers commands, derived from the table (add commands there).
COMMAND_MODULES = list(dict.fromkeys(e.module for e in TABLE.values()))


def load_command(name: str) -> Any:
    """Import the module of command ``name`` (a :data:`~spokenlm.cli.commands.TABLE` key)
    and return its registered function."""
    entry = TABLE[name]
    importlib.import_module(entry.module)
    if name not in COMMANDS:
        raise RuntimeError(f"{entry.module} registers no command {name!r}, but "
                           f"spokenlm/cli/commands.py lists it there; fix the table")
    return COMMANDS[name]


def load_commands() -> dict[str, Any]:
    """Every command: imports all command modules (slow: torch, transformers)."""
    return {name: load_command(name) for name in TABLE}


def build_parser(load: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``spokenlm`` parser from the table. Only the commands in ``load`` (all when None)
    get their options, which imports their modules; the others are listed by summary."""
    load = set(TABLE) if load is None else set(load)
    parser = argparse.ArgumentParser(
        prog="spokenlm", description="Spoken language modelling: audio -> units -> LM -> audio.",
        epilog="`spokenlm GROUP --help` lists a group's commands, `spokenlm GROUP COMMAND "
               "--help` a command's options.")
    parser.add_argument("--debug", dest="_debug", action="store_true",
                        help=f"show the full traceback of a failure (or set {DEBUG_ENV}=1)")
    parser.set_defaults(_help=parser.print_help)
    groups: dict[str, argparse._SubParsersAction] = {
        "": parser.add_subparsers(dest="_cmd", metavar="COMMAND")}
    for name, entry in TABLE.items():
        words = name.split()
        for depth in range(1, len(words)):
            key, parent = " ".join(words[:depth]), " ".join(words[:depth - 1])
            if key not in groups:
                help_line = GROUPS.get(key, f"{key} commands")
                g = groups[parent].add_parser(words[depth - 1], help=help_line,
                                              description=help_line)
                g.set_defaults(_help=g.print_help)
                groups[key] = g.add_subparsers(dest=f"_cmd{depth}", metavar="COMMAND")
        target = groups[" ".join(words[:-1])]
        if name not in load:
            target.add_parser(words[-1], help=entry.summary, description=entry.summary)
            continue
        fn = load_command(name)
        p = target.add_parser(words[-1], help=entry.summary,
                              description=inspect.getdoc(fn) or entry.summary,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        add_options(p, fn.options)
        p.set_defaults(_fn=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends as one line on stderr, ``spokenlm CMD: error:
    <file>: <what> (<fix>)``, and exit code 1 (2 for usage errors, 130 when interrupted);
    ``--debug`` or ``SPOKENLM_DEBUG=1`` adds the full traceback, for bug reports."""
    resolved = resolve(sys.argv[1:] if argv is None else argv)
    if resolved.note:
        print(resolved.note, file=sys.stderr)
    parser = build_parser(load=[resolved.command] if resolved.command else [])
    ns = parser.parse_args(resolved.argv)
    fn = getattr(ns, "_fn", None)
    if fn is None:
        ns._help()
        return 2
    debug = ns._debug or debug_enabled()
    prog = f"spokenlm {fn.command}"
    try:
        with _debug_env(debug):
            result = fn(options_from_namespace(fn.options, ns))
            _print_result(result)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one error boundary of the CLI
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe_failure(e) or bug_message(e)}", file=sys.stderr)
        return 1
    return 0


def _print_result(result: Any) -> None:
    if isinstance(result, Path):
        print(result)
    elif isinstance(result, (dict, list)):
        print(json.dumps(json_safe(result), indent=2, default=str, allow_nan=False))
    elif result is not None:
        print(result)


@contextlib.contextmanager
def _debug_env(debug: bool) -> Iterator[None]:
    """Set ``SPOKENLM_DEBUG=1`` while a ``--debug`` command runs, so library code that
    reports a failure and carries on (``eval all``) logs its traceback too."""
    if not debug or debug_enabled():
        yield
        return
    os.environ[DEBUG_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(DEBUG_ENV, None)


if __name__ == "__main__":
    sys.exit(main())
