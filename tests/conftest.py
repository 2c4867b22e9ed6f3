"""Shared test fixtures: the ../shared data folder (skipped when absent) and thread limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path | None:
    """The shared data folder: $XANES_SHARED, else ../shared beside the repository."""
    env = os.environ.get("XANES_SHARED")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared"
    return candidate if (candidate / "data").is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if root is None:
        pytest.skip("../shared is not present (set XANES_SHARED to run data tests)")
    return root


@pytest.fixture(scope="session", autouse=True)
def _limit_threads():
    # CI has 2 cores; more torch threads than cores only adds contention.
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)
