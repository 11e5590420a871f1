"""The generated CLI: every registered command builds, and its defaults are the library's."""

from __future__ import annotations

import dataclasses

import pytest

from spokenlm.cli.main import build_parser, load_commands, main
from spokenlm.common.options import nested_fields


def test_every_command_module_registers() -> None:
    commands = load_commands()
    for name in ("audio manifest", "data synth", "tokenize train", "tokenize run", "lm train",
                 "vocoder train", "resynth", "generate", "demo", "eval all", "eval abx",
                 "data bench build", "interop hubert-import", "ssl train", "asr train",
                 "joint slam train", "joint t2u train", "asr align"):
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
    nested = {f.name: f for f, _ in nested_fields(fn.options)}
    fields = [(f, f.default) for f in dataclasses.fields(fn.options) if f.name not in nested]
    for f in nested.values():  # a nested options dataclass: its fields are the flags
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        fields += [(g, getattr(default, g.name)) for g in dataclasses.fields(default)]
    for f, default in fields:
        if f.metadata.get("cli", True) and default is not dataclasses.MISSING:
            action = next(a for a in sub._actions if a.dest == f.name)
            assert action.default == default, (name, f.name)


def test_user_errors_exit_1_with_the_message(tmp_path, capsys) -> None:
    assert main(["eval", "spot-the-word", str(tmp_path / "nope"), "--tokenizer", str(tmp_path),
                 "--lm", str(tmp_path)]) == 1
    assert "nope" in capsys.readouterr().err


# ---- the error boundary: one line naming the file and the fix, no traceback -------------


def _error_line(err: str, command: str = "eval pnmi") -> str:
    """The one error line of ``spokenlm COMMAND`` on stderr (log lines may precede it)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"spokenlm {command}:")]
    assert len(lines) == 1, err
    return lines[0]


def _pnmi_inputs(tmp_path) -> list[str]:
    (tmp_path / "u.jsonl").write_text('{"id": "x", "units": [1, 2], "durations": [3, 2]}\n')
    (tmp_path / "l.jsonl").write_text('{"id": "x", "intervals": [[0, 0.06, "A"], '
                                      '[0.06, 0.1, "B"]]}\n')
    return ["eval", "pnmi", str(tmp_path / "u.jsonl"), "--labels", str(tmp_path / "l.jsonl")]


def test_output_below_a_regular_file(tmp_path, capsys) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "eval" / "pnmi.json"
    assert main([*_pnmi_inputs(tmp_path), "--output", str(out)]) == 1
    line = _error_line(capsys.readouterr().err)
    assert f"{tmp_path / 'taken'}: is a regular file" in line and "choose another" in line


def test_output_that_is_a_folder(tmp_path, capsys) -> None:
    (tmp_path / "out").mkdir()
    assert main([*_pnmi_inputs(tmp_path), "--output", str(tmp_path / "out")]) == 1
    line = _error_line(capsys.readouterr().err)
    assert f"error: {tmp_path / 'out'}: is a folder where a file is expected" in line


def test_manifest_of_random_bytes(tmp_path, capsys) -> None:
    import numpy as np

    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(bytes([0xFF, 0xFE]) + np.random.default_rng(0).bytes(2000))
    assert main(["tokenize", "run", str(manifest), "--tokenizer", str(tmp_path),
                 "--output", str(tmp_path / "units.jsonl")]) == 1
    line = _error_line(capsys.readouterr().err, "tokenize run")
    assert f"{manifest}:1: not UTF-8 text" in line and "binary" in line


def test_truncated_weights(tmp_path, capsys) -> None:
    from spokenlm.common.files import write_jsonl
    from spokenlm.testing.lm import save_tiny_unit_lm

    lm = save_tiny_unit_lm(tmp_path / "lm", n_units=8)
    weights = lm / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    write_jsonl(tmp_path / "generations.jsonl", [{"id": "g", "prompt_units": [1, 2],
                                                  "units": [3, 4, 5]}])
    assert main(["eval", "generation", str(tmp_path / "generations.jsonl"), "--lm", str(lm),
                 "--output", str(tmp_path / "g.json")]) == 1
    line = _error_line(capsys.readouterr().err, "eval generation")
    assert str(weights) in line and "truncated or corrupt" in line


def test_missing_directory(tmp_path, capsys) -> None:
    missing = tmp_path / "no" / "such" / "resynth"
    assert main(["eval", "resynthesis", str(missing)]) == 1
    line = _error_line(capsys.readouterr().err, "eval resynthesis")
    assert f"{missing}: file not found" in line


def _replace_pnmi(monkeypatch, body) -> None:
    """Make ``spokenlm eval pnmi`` return ``body()`` (or raise what it raises)."""
    from spokenlm.common.options import COMMANDS

    real = load_commands()["eval pnmi"]

    def fake(opts):
        return body()

    fake.options, fake.command = real.options, real.command
    monkeypatch.setitem(COMMANDS, "eval pnmi", fake)


def _read_binary_as_text(path):
    path.write_bytes(b"\x80\x81\xfe binary")
    with open(path, encoding="utf-8") as f:
        f.read()


def _read_broken_json(path):
    import json

    path.write_text('{"a": 1,,}')
    with open(path) as f:
        json.load(f)


def _load_truncated_safetensors(path):
    import torch
    from safetensors.torch import load_file, save_file

    save_file({"w": torch.zeros(64)}, str(path))
    path.write_bytes(path.read_bytes()[:40])
    load_file(str(path))


def _load_truncated_torch_file(path):
    import torch

    torch.save({"step": 1}, path)
    path.write_bytes(path.read_bytes()[:50])
    torch.load(path, weights_only=True)


def _raise(exc):
    def fn(*_):
        raise exc
    return fn


def _oserror(code, name):
    import errno
    import os

    return OSError(getattr(errno, code), os.strerror(getattr(errno, code)), name)


#: (what fails, its file under tmp_path, words the one line must hold)
FAILURES = [
    (lambda p: _raise(PermissionError(13, "Permission denied", str(p)))(), "out.json",
     "permission denied"),
    (lambda p: _raise(_oserror("ENOSPC", str(p)))(), "out.json", "no space left"),
    (lambda p: _raise(_oserror("EROFS", str(p)))(), "out.json", "read-only"),
    (lambda p: open(p), "absent.jsonl", "no such file or directory"),
    (lambda p: (p.mkdir(), open(p))[1], "a_dir", "is a folder where a file is expected"),
    (_read_binary_as_text, "units.jsonl", "not UTF-8 text"),
    (_read_broken_json, "config.json", "not valid JSON (line 1 column 9"),
    (_load_truncated_safetensors, "model.safetensors", "truncated or corrupt safetensors"),
    (_load_truncated_torch_file, "state.pt", "truncated or corrupt file"),
]


@pytest.mark.parametrize("fail,name,words", FAILURES,
                         ids=[f[1] + ":" + f[2].split()[0] for f in FAILURES])
def test_known_failures_are_one_line_naming_the_file(fail, name, words, tmp_path, monkeypatch,
                                                     capsys) -> None:
    path = tmp_path / name
    _replace_pnmi(monkeypatch, lambda: fail(path))
    assert main(_pnmi_inputs(tmp_path)) == 1
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"spokenlm eval pnmi: error: {path}: ") and words in line, line
    assert line.endswith(")"), line  # ends with the fix, in parentheses


@pytest.mark.parametrize("exc,words", [
    (ImportError("No module named 'pocketsphinx'", name="pocketsphinx"),
     "pip install pocketsphinx"),
    (MemoryError(), "out of memory"),
    (ImportError("cannot import name 'x' from 'spokenlm.data.synth'", name="spokenlm.data.synth"),
     "spokenlm's own modules do not match"),
])
def test_known_failures_without_a_file(exc, words, tmp_path, monkeypatch, capsys) -> None:
    _replace_pnmi(monkeypatch, _raise(exc))
    assert main(_pnmi_inputs(tmp_path)) == 1
    assert words in _error_line(capsys.readouterr().err)


def test_a_bug_is_one_line_that_says_how_to_get_the_traceback(tmp_path, monkeypatch,
                                                               capsys) -> None:
    _replace_pnmi(monkeypatch, _raise(ZeroDivisionError("division by zero")))
    assert main(_pnmi_inputs(tmp_path)) == 1
    line = _error_line(capsys.readouterr().err)
    assert "ZeroDivisionError: division by zero" in line and "bug" in line
    assert "--debug" in line and "SPOKENLM_DEBUG=1" in line


def test_interrupt_exits_130(tmp_path, monkeypatch, capsys) -> None:
    _replace_pnmi(monkeypatch, _raise(KeyboardInterrupt()))
    assert main(_pnmi_inputs(tmp_path)) == 130
    assert _error_line(capsys.readouterr().err) == "spokenlm eval pnmi: interrupted"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, tmp_path, monkeypatch, capsys) -> None:
    _replace_pnmi(monkeypatch, _raise(ZeroDivisionError("division by zero")))
    if how == "env":
        monkeypatch.setenv("SPOKENLM_DEBUG", "1")
    argv = (["--debug"] if how == "flag" else []) + _pnmi_inputs(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    assert err.rstrip().splitlines()[-1].startswith("spokenlm eval pnmi: error: internal error")


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["eval", "pnmi"])
    assert e.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_printed_results_are_strict_json(tmp_path, monkeypatch, capsys) -> None:
    import json

    _replace_pnmi(monkeypatch, lambda: {"pnmi": float("nan")})
    assert main(_pnmi_inputs(tmp_path)) == 0

    def reject(constant):
        raise ValueError(f"{constant} in printed JSON")

    printed = json.loads(capsys.readouterr().out, parse_constant=reject)
    assert printed["pnmi"] is None and "pnmi_reason" in printed
