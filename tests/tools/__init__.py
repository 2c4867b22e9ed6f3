"""Tests of the maintainer scripts in tools/ (plain files, not a package: loaded by path)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import REPO_ROOT


def load_tool(name: str) -> ModuleType:
    """The module ``tools/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
