"""The generated CLI: every registered command builds, and its defaults are the library's."""

from __future__ import annotations

import dataclasses

import pytest

from spokenlm.cli.main import build_parser, load_commands, main


def test_every_command_module_registers() -> None:
    commands = load_commands()
    for name in ("data manifest", "data synth", "tokenizer train", "tokenize", "lm train",
                 "vocoder train", "resynth", "generate", "demo", "eval all", "eval abx",
                 "bench build", "convert hubert", "ssl train", "asr train", "joint slam train"):
        assert name in commands


@pytest.mark.parametrize("name", sorted(load_commands()))
def test_help_and_defaults_match_the_options_dataclass(name: str, capsys) -> None:
    fn = load_commands()[name]
    with pytest.raises(SystemExit) as e:
        main([*name.split(), "--help"])
    assert e.value.code == 0
    assert "usage: spokenlm" in capsys.readouterr().out
    parser = build_parser()
    sub = parser
    for word in name.split():
        sub = next(a for a in sub._actions if a.dest.startswith("_cmd")).choices[word]
    for f in dataclasses.fields(fn.options):
        if f.metadata.get("cli", True) and f.default is not dataclasses.MISSING:
            action = next(a for a in sub._actions if a.dest == f.name)
            assert action.default == f.default, (name, f.name)


def test_user_errors_exit_1_with_the_message(tmp_path, capsys) -> None:
    assert main(["eval", "spot-the-word", str(tmp_path / "nope"), "--tokenizer", str(tmp_path),
                 "--lm", str(tmp_path)]) == 1
    assert "nope" in capsys.readouterr().err
