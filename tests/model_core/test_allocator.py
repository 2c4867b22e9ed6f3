"""The heap-keeping allocator setting: applied once, switchable off, harmless elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

from model_core.allocator import keep_freed_memory

_PROBE = "from model_core.allocator import keep_freed_memory as k; print(k(), k())"


def test_keep_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() is first
    if platform.libc_ver()[0] == "glibc":
        assert first


def test_the_environment_switch_leaves_the_allocator_alone():
    env_off = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True,
                             env={"XANES_KEEP_HEAP": "0", "PATH": ""}, cwd=".")
    assert env_off.stdout.split() == ["False", "False"]
