from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from spokenlm.common.options import add_options, arg, command, options_from_namespace


@dataclass
class _Opts:
    src: Path = arg(positional=True, help="input")
    n: int = arg(3, help="count")
    rate: float = arg(0.5)
    mode: Literal["a", "b"] = arg("a")
    flag: bool = arg(True)
    maybe: int | None = arg(None)
    dims: list[int] = arg([1, 2])
    out: Path = arg(Path("x.json"))


@command("test options-demo", _Opts)
def _fn(opts: _Opts) -> _Opts:
    return opts


def _parse(argv: list[str]) -> _Opts:
    p = argparse.ArgumentParser()
    add_options(p, _Opts)
    return options_from_namespace(_Opts, p.parse_args(argv))


def test_cli_defaults_are_dataclass_defaults() -> None:
    assert _parse(["in.wav"]) == _Opts(src=Path("in.wav"))


def test_cli_parses_every_type() -> None:
    o = _parse(["in.wav", "--n", "7", "--rate", "0.25", "--mode", "b", "--no-flag",
                "--maybe", "4", "--dims", "5", "6", "7", "--out", "y.json"])
    assert o == _Opts(Path("in.wav"), 7, 0.25, "b", False, 4, [5, 6, 7], Path("y.json"))
    assert _parse(["in.wav", "--maybe", "none"]).maybe is None


def test_cli_rejects_bad_choice() -> None:
    with pytest.raises(SystemExit):
        _parse(["in.wav", "--mode", "c"])


def test_library_call_with_kwargs_or_dataclass_and_path_coercion() -> None:
    o = _fn(src="a.wav", n=2)
    assert o.src == Path("a.wav") and isinstance(o.src, Path) and o.n == 2
    assert _fn(_Opts(src=Path("b.wav")), n=9).n == 9


def test_mutable_defaults_not_shared() -> None:
    a, b = _Opts(src=Path("a")), _Opts(src=Path("b"))
    a.dims.append(3)
    assert b.dims == [1, 2]
