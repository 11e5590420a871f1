"""The ``spokenlm`` command: a sub-command per registered library function.

Commands are generated from the options dataclass of each function (see
:mod:`spokenlm.common.options`), so CLI defaults are the library defaults. :func:`main` is
the one error boundary: a failure prints one line naming the file and the fix (see
:mod:`spokenlm.common.failures`), never a traceback unless ``--debug`` asks for it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..common.failures import DEBUG_ENV, bug_message, debug_enabled, describe_failure
from ..common.files import json_safe
from ..common.options import COMMANDS, add_options, options_from_namespace

#: Modules whose import registers commands. One line per stage.
COMMAND_MODULES = [
    "spokenlm.audio.manifest",
    "spokenlm.data.synth",
    "spokenlm.data.spoken_benchmark",
    "spokenlm.data.corpora.librispeech",
    "spokenlm.data.corpora.librilight",
    "spokenlm.data.corpora.vad",
    "spokenlm.data.corpora.lhotse",
    "spokenlm.data.corpora.kaldi",
    "spokenlm.data.corpora.hf_datasets",
    "spokenlm.tokenize.train",
    "spokenlm.tokenize.run",
    "spokenlm.lm.train",
    "spokenlm.lm.dpo",
    "spokenlm.lm.text_lm",
    "spokenlm.pipeline.generate",
    "spokenlm.vocoder.train",
    "spokenlm.pipeline.resynth",
    "spokenlm.eval.spot_the_word",
    "spokenlm.data.benchmark_builders",
    "spokenlm.eval.abx",
    "spokenlm.eval.abx_items",
    "spokenlm.eval.pnmi",
    "spokenlm.eval.acceptability",
    "spokenlm.eval.official",
    "spokenlm.eval.salmon",
    "spokenlm.eval.zerospeech_submission",
    "spokenlm.eval.generation",
    "spokenlm.eval.resynthesis",
    "spokenlm.eval.all",
    "spokenlm.asr.sphinx_align",
    "spokenlm.ssl.train",
    "spokenlm.asr.ctc_train",
    "spokenlm.asr.align",
    "spokenlm.data.phoneme_units",
    "spokenlm.joint.t2u_train",
    "spokenlm.joint.speechlm_train",
    "spokenlm.joint.slam_train",
    "spokenlm.pipeline.demo",
    "spokenlm.interop.fairseq_hubert",
    "spokenlm.interop.sklearn_kmeans",
    "spokenlm.interop.speech_resynthesis",
]


def load_commands() -> dict[str, Any]:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    return COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spokenlm", description="Spoken language modelling: audio -> units -> LM -> audio.")
    parser.add_argument("--debug", dest="_debug", action="store_true",
                        help=f"show the full traceback of a failure (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="_cmd", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, fn in sorted(load_commands().items()):
        words = name.split()
        target = sub
        for depth, word in enumerate(words[:-1]):
            key = " ".join(words[: depth + 1])
            if key not in groups:
                p = target.add_parser(word, help=f"{key} commands")
                groups[key] = p.add_subparsers(dest=f"_cmd{depth + 1}", metavar="COMMAND")
            target = groups[key]
        doc = (fn.__doc__ or "").strip()
        p = target.add_parser(words[-1], help=doc.splitlines()[0] if doc else None,
                              description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_options(p, fn.options)
        p.set_defaults(_fn=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends as one line on stderr, ``spokenlm CMD: error:
    <file>: <what> (<fix>)``, and exit code 1 (2 for usage errors, 130 when interrupted);
    ``--debug`` or ``SPOKENLM_DEBUG=1`` adds the full traceback, for bug reports."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    fn = getattr(ns, "_fn", None)
    if fn is None:
        parser.print_help()
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
