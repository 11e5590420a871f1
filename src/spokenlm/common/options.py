"""Options defined once: a dataclass per command, a library function that takes it, and a
CLI generated from the same dataclass (so defaults are never restated).

Usage::

    @dataclass
    class ManifestOptions:
        root: Path = arg(positional=True, help="folder of audio files")
        output: Path = arg(Path("manifest.jsonl"), help="where to write the JSONL manifest")

    @command("audio manifest", ManifestOptions)
    def make_manifest(opts: ManifestOptions) -> Path: ...

    make_manifest(root="wavs")                      # library call with keyword options
    make_manifest(ManifestOptions(root="wavs"))     # or with the dataclass
    $ spokenlm audio manifest wavs --output m.jsonl # CLI, generated

A field typed as another options dataclass (``trainer: TrainerOptions = arg(TrainerOptions(
lr=1e-3))``) is *nested*: its fields are flattened into the command's flags (``--lr``) and
keyword options (``train(lr=1e-3)``, see :func:`build_options`), with the field's default
instance giving their defaults, so each command keeps its own defaults for a shared group.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

T = TypeVar("T")

#: command name ("lm train") -> wrapped library function (has ``.options`` and ``.command``)
COMMANDS: dict[str, Callable[..., Any]] = {}

_MISSING = dataclasses.MISSING


def arg(default: Any = _MISSING, *, help: str = "", positional: bool = False,
        short: str | None = None, cli: bool = True, output: bool = False,
        scanned: bool = False) -> Any:
    """A dataclass field with CLI metadata. Mutable defaults (lists) are copied per instance.

    Path fields are the command's inputs, except ``output`` and fields marked ``output=True``
    (also written); ``scanned=True`` marks an input folder read whole (no output may lie
    inside it). :func:`command` checks them with :func:`~spokenlm.common.paths.check_output`.
    """
    meta = {"help": help, "positional": positional, "short": short, "cli": cli,
            "output": output, "scanned": scanned}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def command(name: str, options: type[T]) -> Callable[[Callable[[T], Any]], Callable[..., Any]]:
    """Register ``fn(opts)`` as CLI command ``name``; callable with a dataclass or kwargs."""

    def deco(fn: Callable[[T], Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(opts: T | None = None, /, **kwargs: Any) -> Any:
            if opts is None:
                opts = build_options(options, **kwargs)
            elif kwargs:
                opts = replace_options(opts, **kwargs)
            opts = _coerce(opts)
            _check_outputs(opts)
            return fn(opts)

        _check_nesting(options)
        wrapper.options = options  # type: ignore[attr-defined]
        wrapper.command = name  # type: ignore[attr-defined]
        COMMANDS[name] = wrapper
        return wrapper

    return deco


def nested_fields(options: type | Any) -> list[tuple[dataclasses.Field, type]]:
    """The fields of options dataclass ``options`` that hold a nested options dataclass."""
    cls = options if isinstance(options, type) else type(options)
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name])]


def _field_default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not _MISSING else f.default_factory()  # type: ignore[misc]


def _route(options: type, values: dict[str, Any], base: Any) -> dict[str, Any]:
    """``values`` with the names of nested fields' fields gathered into those fields
    (starting from ``values[field]``, else ``base``'s value, else the field's default)."""
    values = dict(values)
    top = {f.name for f in dataclasses.fields(options)}
    for f, sub in nested_fields(options):
        mine = {g.name: values.pop(g.name) for g in dataclasses.fields(sub)
                if g.name in values and g.name not in top}
        if mine:
            start = values.get(f.name, getattr(base, f.name) if base is not None
                               else _field_default(f))
            values[f.name] = dataclasses.replace(start, **mine)
    return values


def build_options(options: type[T], /, **values: Any) -> T:
    """``options(**values)``, where ``values`` may also name the fields of a nested options
    dataclass (``lr=1e-3`` for ``trainer: TrainerOptions``), as the flattened CLI does."""
    return options(**_route(options, values, None))


def replace_options(opts: T, /, **values: Any) -> T:
    """``dataclasses.replace(opts, **values)`` with nested fields' names accepted."""
    return dataclasses.replace(opts, **_route(type(opts), values, opts))  # type: ignore[type-var]


def _check_nesting(options: type) -> None:
    """A nested field's fields must not share a name with the command's own (one flag each)."""
    top = {f.name for f in dataclasses.fields(options)}
    for f, sub in nested_fields(options):
        clash = top & {g.name for g in dataclasses.fields(sub)}
        if clash:
            raise TypeError(f"{options.__name__}: {sorted(clash)} are fields of both it and "
                            f"its nested {f.name}: {sub.__name__}; rename one")


def _coerce(opts: T) -> T:
    """Turn str paths into Path where the field is annotated Path (library callers pass str)."""
    hints = typing.get_type_hints(type(opts))
    for f in dataclasses.fields(opts):  # type: ignore[arg-type]
        value = getattr(opts, f.name)
        base, _ = _unwrap_optional(hints[f.name])
        if base is Path and isinstance(value, str):
            object.__setattr__(opts, f.name, Path(value))
    return opts


def _check_outputs(opts: Any) -> None:
    """Refuse outputs that are, contain, or lie in a scanned folder of the inputs."""
    from .paths import check_output

    inputs: list[Any] = []
    outputs: list[tuple[str, Any]] = []
    scanned: list[Any] = []
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        paths = [v for v in values if isinstance(v, Path)]
        if not paths:
            continue
        if f.name == "output" or f.metadata.get("output"):
            outputs += [(f"--{f.name.replace('_', '-')}", p) for p in paths]
        else:
            inputs += paths
            if f.metadata.get("scanned"):
                scanned += paths
    for flag, path in outputs:
        check_output(path, inputs, scanned=scanned, flag=flag)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


#: a help text that says its default itself ("(default: all)", "default: EOS unless ...")
_STATES_DEFAULT = re.compile(r"\(default\b|\bdefault:", re.IGNORECASE)


def add_options(parser: argparse.ArgumentParser, options: type, defaults: Any = None) -> None:
    """Add one CLI flag per dataclass field, typed and defaulted from the dataclass (or from
    the instance ``defaults``); the help ends with ``(default: ...)`` unless it already says
    what the default is. A nested options dataclass adds the flags of its fields."""
    hints = typing.get_type_hints(options)
    for f in dataclasses.fields(options):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        has_default = (f.default is not _MISSING or f.default_factory is not _MISSING
                       or defaults is not None)
        default = (getattr(defaults, f.name) if defaults is not None
                   else f.default if f.default is not _MISSING
                   else f.default_factory() if f.default_factory is not _MISSING else None)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a titled flag group
            add_options(parser.add_argument_group(f"{f.name} options", meta.get("help")),
                        tp, default)  # type: ignore[arg-type]
            continue
        help_text = meta.get("help", "")
        if has_default and not _STATES_DEFAULT.search(help_text):
            shown = repr(default) if default == "" else default
            help_text = f"{help_text} (default: {shown})" if help_text else f"(default: {shown})"
        kwargs: dict[str, Any] = {"help": help_text}
        origin = get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            choices = get_args(tp)
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        elif origin in (list, tuple):
            inner = get_args(tp)[0]
            kwargs["nargs"] = "+"
            kwargs["type"] = inner if inner in (int, float, str) else str
        else:
            kwargs["type"] = _scalar_parser(tp, optional)
        if meta.get("positional"):
            if has_default:
                kwargs["nargs"] = "?"
                kwargs["default"] = default
            parser.add_argument(f.name, **kwargs)
        else:
            flags = [f"--{f.name.replace('_', '-')}"]
            if meta.get("short"):
                flags.insert(0, meta["short"])
            kwargs["dest"] = f.name
            if has_default:
                kwargs["default"] = default
            else:
                kwargs["required"] = True
            parser.add_argument(*flags, **kwargs)


def _scalar_parser(tp: Any, optional: bool) -> Callable[[str], Any]:
    base = tp if tp in (int, float, str, Path) else str

    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null", ""):
            return None
        return base(text)

    parse.__name__ = getattr(base, "__name__", "value")
    return parse


def options_from_namespace(options: type[T], ns: argparse.Namespace) -> T:
    names = {f.name for f in dataclasses.fields(options) if f.metadata.get("cli", True)}
    names |= {g.name for _, sub in nested_fields(options) for g in dataclasses.fields(sub)
              if g.metadata.get("cli", True)}
    return build_options(options, **{k: v for k, v in vars(ns).items() if k in names})


def flat_fields(opts: Any) -> dict[str, Any]:
    """Field name -> value of an options dataclass, nested options flattened into it (the
    names the CLI and :func:`build_options` take)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out.update(flat_fields(v))
        else:
            out[f.name] = v
    return out


def to_dict(opts: Any) -> dict[str, Any]:
    """JSON-friendly dict of an options dataclass (paths as strings; nested flattened)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in flat_fields(opts).items()}
