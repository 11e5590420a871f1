"""Load a ``benchmarks/<name>.py`` script as a module (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """``load_script("recipe")``: benchmarks/recipe.py, freshly executed."""
    return _load
