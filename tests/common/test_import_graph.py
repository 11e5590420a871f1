"""The sub-packages of spokenlm import each other one way (issue 15 item 4): no circle between
packages, counting imports inside functions too. The one known exception is a plugin
registration: ``tokenize.encoders`` imports ``joint.encoder`` to register the ``joint``
encoder, which is built on ``tokenize``'s Encoder base."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import spokenlm

SRC = Path(spokenlm.__file__).parent
#: (importing module, imported module) edges allowed to close a circle
KNOWN = {("spokenlm.tokenize.encoders", "spokenlm.joint.encoder")}
#: packages that sit above everything (they may import any package)
TOP = {"spokenlm", "spokenlm.__main__", "spokenlm.cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ["spokenlm", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """spokenlm modules ``name`` imports (module level and inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("spokenlm"):
                found.add(target)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_packages_import_one_way() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for name, path in modules.items():
        for target in _imports(name, path, modules):
            a, b = _package(name), _package(target)
            if a != b and a not in TOP and (name, target) not in KNOWN:
                graph[a].add(b)
                why.setdefault((a, b), f"{name} imports {target}")
    # a package reaching itself through others is a circle
    for start in list(graph):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    steps = [why[(x, y)] for x, y in zip(trail, trail[1:] + [start])]
                    raise AssertionError("import circle between packages: " + "; ".join(steps))
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
