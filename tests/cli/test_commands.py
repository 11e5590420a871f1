"""The command table: it agrees with the ``@command`` registrations, ``--help`` of the top level
and of a group imports no torch, old names still work, and every ``spokenlm ...`` command
that the README, a docstring, an error message or a benchmark names exists and parses."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from spokenlm.cli.commands import ALIASES, GROUPS, TABLE, children, resolve
from spokenlm.cli.main import build_parser, load_commands, main

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "spokenlm"
TABLE_FILE = "src/spokenlm/cli/commands.py"


# ---- the table is the registrations -------------------------------------------------------


def _registrations() -> dict[str, tuple[str, str]]:
    """command name -> (module, function) of every top-level ``@command("...")`` in src/."""
    found: dict[str, tuple[str, str]] = {}
    pattern = re.compile(r'^@command\(\s*"([^"]+)".*?\n(?:@.*\n)*def (\w+)', re.M | re.S)
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            assert m.group(1) not in found, f"{m.group(1)!r} registered twice"
            found[m.group(1)] = (module, m.group(2))
    return found


def _table_line(name: str, module: str, function: str) -> str:
    mod = importlib.import_module(module)
    summary = (inspect.getdoc(getattr(mod, function)) or "").splitlines()[:1]
    return f'    "{name}": Entry("{module}", "{function}", {json.dumps("".join(summary))}),'


def test_every_registered_command_is_in_the_table_and_nothing_else() -> None:
    registered = _registrations()
    missing = [_table_line(n, *registered[n]) for n in registered if n not in TABLE]
    assert not missing, (f"commands registered with @command but missing from TABLE in "
                         f"{TABLE_FILE}; add these lines:\n" + "\n".join(missing))
    stale = [n for n in TABLE if n not in registered]
    assert not stale, (f"TABLE in {TABLE_FILE} lists {stale}, which no module registers with "
                       f"@command; remove those lines or register the commands")
    wrong = {n: (TABLE[n].module, TABLE[n].function) for n in TABLE
             if (TABLE[n].module, TABLE[n].function) != registered[n]}
    assert not wrong, (f"TABLE in {TABLE_FILE} points these commands at the wrong place; "
                       f"write:\n" + "\n".join(_table_line(n, *registered[n]) for n in wrong))


def test_table_entries_are_the_registered_functions() -> None:
    commands = load_commands()
    for name, entry in TABLE.items():
        fn = getattr(importlib.import_module(entry.module), entry.function)
        assert commands[name] is fn and fn.command == name, name


@pytest.mark.parametrize("name", list(TABLE))
def test_summary_is_the_whole_first_line_of_the_docstring(name: str) -> None:
    doc = (inspect.getdoc(load_commands()[name]) or "").splitlines()
    entry = TABLE[name]
    where = f"{entry.module}.{entry.function}"
    assert doc and doc[0] == entry.summary, (
        f"{where}: the docstring's first line {doc[:1]} is not the summary in {TABLE_FILE} "
        f"({entry.summary!r}); make them the same")
    assert len(doc) == 1 or not doc[1].strip(), (
        f"{where}: the docstring's first sentence runs onto a second line, so help would cut "
        f"it off; make the first line a whole sentence and continue after a blank line")
    assert doc[0][-1] in ".?" and len(doc[0]) <= 92, f"{where}: {doc[0]!r}"


def test_names_follow_the_package_folders() -> None:
    for name, entry in TABLE.items():
        package = entry.module.split(".")[1]
        words = name.split()
        if package == "pipeline":
            assert len(words) == 1, f"{name!r}: pipeline commands are one word"
        else:
            assert words[0] == package, f"{name!r} lives in spokenlm.{package}: name it " \
                                        f"'{package} {' '.join(words[1:])}'"
    for group in GROUPS:
        assert group in {" ".join(n.split()[:k]) for n in TABLE for k in range(1, len(n.split()))}


# ---- help without torch -------------------------------------------------------------------


def test_top_level_and_group_help_import_no_torch() -> None:
    argvs = [["--help"], ["--debug", "--help"], []] + [[*g.split(), "--help"] for g in GROUPS]
    code = (
        "import contextlib, io, json, sys\n"
        "from spokenlm.cli.main import main\n"
        f"for argv in {argvs!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    assert 'usage: spokenlm' in out.getvalue(), (argv, out.getvalue())\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('torch', 'transformers', 'numpy', 'faiss', 'soundfile'))\n"
        "print(json.dumps(heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_group_help_lists_its_commands_with_their_summaries(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["tokenize", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for word in children("tokenize"):
        assert word in out
    assert TABLE["tokenize run"].summary[:40] in " ".join(out.split())
    assert main(["eval"]) == 2  # a group without a command: its help, usage error
    assert "abx-items" in capsys.readouterr().out


def test_help_states_each_default_once() -> None:
    parser = build_parser()
    for _, leaf in _leaves(parser):
        for action in leaf._actions:
            text = action.help or ""
            assert len(re.findall(r"\(default\b|\bdefault:", text, re.I)) <= 1, (leaf.prog, text)


# ---- old names ----------------------------------------------------------------------------


def test_aliases_point_at_commands_and_are_hidden(capsys) -> None:
    for old, alias in ALIASES.items():
        assert alias.new in TABLE and old not in TABLE, old
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()
              if re.match(r"    \S", line)}
    assert listed == set(children(""))  # bench, convert, tokenizer, t2u, align: hidden
    assert {"bench", "convert", "tokenizer", "t2u", "align"}.isdisjoint(listed)


@pytest.mark.parametrize("old,new", [
    (["tokenizer", "train", "m.jsonl", "--output", "t"], ["tokenize", "train", "m.jsonl",
                                                          "--output", "t"]),
    (["tokenize", "m.jsonl", "--tokenizer", "t"], ["tokenize", "run", "m.jsonl", "--tokenizer",
                                                   "t"]),
    (["tokenize", "--tokenizer", "t", "m.jsonl"], ["tokenize", "run", "--tokenizer", "t",
                                                   "m.jsonl"]),
    (["--debug", "t2u", "train", "x.jsonl"], ["--debug", "joint", "t2u", "train", "x.jsonl"]),
    (["align", "--device", "cpu", "asr-ph/final", "m.jsonl", "--output", "a.jsonl"],
     ["asr", "align", "--device", "cpu", "--aligner", "spokenlm-ctc:asr-ph/final", "m.jsonl",
      "--output", "a.jsonl"]),
    (["eval", "align", "m.jsonl", "--limit", "3"],
     ["asr", "align", "m.jsonl", "--max-utterances", "3", "--aligner", "pocketsphinx"]),
    (["convert", "hubert", "x.pt", "--output", "hf"], ["interop", "hubert-import", "x.pt",
                                                       "--output", "hf"]),
    (["bench", "build", "--generate", "preference"], ["data", "bench", "build", "--generate",
                                                      "preference"]),
    (["data", "manifest", "wavs"], ["audio", "manifest", "wavs"]),
])
def test_old_names_resolve_to_the_new_command(old: list[str], new: list[str]) -> None:
    resolved = resolve(old)
    assert resolved.argv == new and resolved.command in TABLE
    assert resolved.note and f"`spokenlm {resolved.command}`" in resolved.note
    _relaxed_parser().parse_args(resolved.argv)


def test_new_names_and_groups_resolve_as_they_are() -> None:
    assert resolve(["tokenize", "run", "x"]) == (("tokenize run", ["tokenize", "run", "x"],
                                                  None))
    assert resolve(["tokenize", "--help"]).command is None
    assert resolve(["tokenize"]).command is None
    assert resolve(["nope", "x"]).command is None


def test_an_old_name_runs_with_a_one_line_note(tmp_path, capsys) -> None:
    (tmp_path / "u.jsonl").write_text('{"id": "x", "units": [1, 2], "durations": [3, 2]}\n')
    (tmp_path / "l.jsonl").write_text('{"id": "x", "intervals": [[0, 0.1, "A"]]}\n')
    with pytest.raises(SystemExit) as e:
        main(["tokenizer", "train", "--help"])
    captured = capsys.readouterr()
    assert e.value.code == 0 and "usage: spokenlm tokenize train" in captured.out
    notes = [line for line in captured.err.splitlines() if "note:" in line]
    assert notes == ["spokenlm: note: `spokenlm tokenizer train` is now `spokenlm tokenize "
                     "train`; the old name still works for now"]


# ---- every command the docs name exists and parses ----------------------------------------


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                yield from _leaves(sub, (*words, word))
            return
    yield " ".join(words), parser


_RELAXED: list[argparse.ArgumentParser] = []


def _relaxed_parser() -> argparse.ArgumentParser:
    """The real parser with nothing required, so a doc's partial command still parses: its
    command, flags, choices and value types are checked, missing arguments are not."""
    if not _RELAXED:
        parser = build_parser()
        for _, leaf in _leaves(parser):
            for action in leaf._actions:
                action.required = False
                if not action.option_strings and action.nargs in (None, "+"):
                    action.nargs = "?" if action.nargs is None else "*"
        _RELAXED.append(parser)
    return _RELAXED[0]


#: `spokenlm ...` or ``spokenlm ...`` spans (docs and messages), README lines, Makefile lines
_SPAN = re.compile(r"``(spokenlm [^`]+)``|`(spokenlm [^`]+)`")
_CONCAT = re.compile(r"""["']\s*(?:\n\s*)?f?["']""")  # "..." f"..." string concatenation
_PLACEHOLDER = re.compile(r"\{[^}]*\}|<[^>]*>|[A-Z][A-Z0-9_]*(?:/[\w.]+)?|\.\.\..*")


def _mentions() -> list[tuple[str, str]]:
    """(where, command line) for every ``spokenlm ...`` command the project names."""
    out: list[tuple[str, str]] = []
    files = [ROOT / "README.md", *sorted(SRC.rglob("*.py")),
             *sorted((ROOT / "benchmarks").glob("*.py"))]
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        for m in _SPAN.finditer(text):
            span = m.group(1) or m.group(2)
            if path.suffix == ".py":
                span = _CONCAT.sub("", span)
            out.append((f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", " ".join(span.split())))
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    in_code, pending = False, ""
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        stripped = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
        if in_code and (pending or stripped.startswith("spokenlm ")):
            pending += " " + stripped.removesuffix("\\")
            if not stripped.endswith("\\"):
                out.append((f"README.md:{i}", pending.strip()))
                pending = ""
    for i, line in enumerate((ROOT / "Makefile").read_text().splitlines(), 1):
        if "bin/spokenlm " in line:
            out.append((f"Makefile:{i}", "spokenlm " + line.split("bin/spokenlm ", 1)[1]))
    return out


def _check(line: str) -> str | None:
    """None if ``line`` (``spokenlm ...``) names a command (or group) whose arguments parse,
    else what is wrong and the fix."""
    line = re.sub(r"\{[^{}]*\}", "X", line)  # an f-string's field is a placeholder
    try:
        tokens = shlex.split(line, comments=True)[1:]
    except ValueError:
        tokens = line.split()[1:]
    cut = [i for i, t in enumerate(tokens) if t in ("|", "||", "&&", ";", ">", "2>&1")]
    tokens = tokens[: cut[0]] if cut else tokens
    if not tokens or re.fullmatch(r"[A-Z]+:?", tokens[0]) or \
            set(tokens) <= {"--debug", "-h", "--help"}:
        return None  # `spokenlm COMMAND --help`, `spokenlm CMD: error`, `spokenlm --help`
    resolved = resolve(tokens)
    if resolved.note:
        return "old name: " + resolved.note.split("note: ", 1)[1].split(";")[0]
    if resolved.command is None:
        if " ".join(tokens) in GROUPS:
            return None  # a group named on its own (`spokenlm eval`)
        words = " ".join(t for t in tokens[:3] if not t.startswith("-"))
        return f"no command `spokenlm {words}`; the commands are in {TABLE_FILE}"
    n = len(resolved.command.split())
    args = [t for t in tokens[n:] if not t.startswith("[") and not t.endswith("]")]
    variants = [args]
    for k, t in enumerate(args):  # `--generate acceptability|story_cloze`: each alternative
        if "|" in t.strip("|"):
            variants = [[*args[:k], alt, *args[k + 1:]] for alt in t.split("|")]
            break
    parser = _relaxed_parser()
    leaf = dict(_leaves(parser))[resolved.command]
    for variant in variants:
        argv = [*resolved.command.split(), *_fill_placeholders(leaf, variant)]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                parser.parse_args(argv)
            except SystemExit:
                return err.getvalue().strip().splitlines()[-1]
    return None


def _fill_placeholders(leaf: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """Drop a free ``...``; give an option named without its value (```lm train
    --init-from```) or with a placeholder (``N``, ``<dir>``, ``.../x``) a value of its type."""
    out: list[str] = []
    for k, t in enumerate([*args, None]):
        before = leaf._option_string_actions.get(args[k - 1]) if k else None
        wants = before is not None and before.nargs != 0
        if wants and (t is None or t.startswith("-") or _PLACEHOLDER.fullmatch(t)):
            if before.choices:
                out.append(str(list(before.choices)[0]))
            elif getattr(before.type, "__name__", "") in ("int", "float"):
                out.append("1")
            else:
                out.append("x" if t is None or t.startswith("-") else t)
            if t is None or not t.startswith("-"):
                continue
        if t is None or t.startswith("..."):
            continue
        out.append(t)
    return out


def test_every_command_the_project_names_exists_and_parses() -> None:
    mentions = _mentions()
    assert len(mentions) > 150  # README, docstrings, errors, benchmarks
    bad = [f"{where}: `{line}`: {problem}" for where, line in mentions
           if (problem := _check(line)) is not None]
    assert not bad, "commands named in the docs or messages that do not exist or parse:\n" + \
        "\n".join(bad)


@pytest.mark.parametrize("line,words", [
    ("spokenlm tokenizer train m.jsonl", "old name"),
    ("spokenlm tokenize m.jsonl", "old name"),
    ("spokenlm nope run", "no command"),
    ("spokenlm eval pnmi u.jsonl --no-such-flag 1", "unrecognized arguments"),
    ("spokenlm lm train u.jsonl --size enormous", "invalid choice"),
    ("spokenlm eval abx-items a b c", "unrecognized arguments"),
    ("spokenlm tokenize ... --pack", "old name"),
])
def test_the_docs_check_catches_wrong_commands(line: str, words: str) -> None:
    problem = _check(line)
    assert problem is not None and words in problem, problem
