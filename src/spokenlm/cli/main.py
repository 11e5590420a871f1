"""The ``spokenlm`` command: a sub-command per registered library function.

Commands are generated from the options dataclass of each function (see
:mod:`spokenlm.common.options`), so CLI defaults are the library defaults.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ..common.errors import SpokenLMError
from ..common.options import COMMANDS, add_options, options_from_namespace

#: Modules whose import registers commands. One line per stage.
COMMAND_MODULES = [
    "spokenlm.audio.manifest",
    "spokenlm.data.synth",
    "spokenlm.data.spoken_benchmark",
    "spokenlm.tokenize.train",
    "spokenlm.tokenize.run",
    "spokenlm.lm.train",
    "spokenlm.lm.text_lm",
    "spokenlm.pipeline.generate",
    "spokenlm.vocoder.train",
    "spokenlm.pipeline.resynth",
    "spokenlm.eval.spot_the_word",
    "spokenlm.data.benchmark_builders",
    "spokenlm.eval.abx",
    "spokenlm.eval.pnmi",
    "spokenlm.eval.acceptability",
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
    parser = build_parser()
    ns = parser.parse_args(argv)
    fn = getattr(ns, "_fn", None)
    if fn is None:
        parser.print_help()
        return 2
    opts = options_from_namespace(fn.options, ns)
    try:
        result = fn(opts)
    except SpokenLMError as e:
        print(f"spokenlm {fn.command}: error: {e}", file=sys.stderr)
        return 1
    if isinstance(result, Path):
        print(result)
    elif isinstance(result, (dict, list)):
        print(json.dumps(result, indent=2, default=str))
    elif result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
