"""One FEFF run in a child process group: FEFF errors, timeout and cancel kill the tree, missing feff10."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from model_core.feff import process
from model_core.feff.errors import FeffCancelledError, FeffRunError, FeffTimeoutError, FeffUnavailableError
from tests.model_core.feff.fake_tasks import alive, use_sleeping_feff


def test_feff_error_is_reported_with_log(tmp_path):
    pytest.importorskip("feff10")
    run_dir = tmp_path / "000_Cu"
    run_dir.mkdir()
    (run_dir / "feff.inp").write_text("TITLE broken\nCONTROL 1 1 1 1 1 1\nPOTENTIALS\n 0 29 Cu\nATOMS\nEND\n")
    with pytest.raises(FeffRunError) as info:
        process.run_feff(run_dir, timeout_s=60)
    assert str(info.value) and "\n" not in str(info.value)
    assert (run_dir / "feff.log").is_file() and not (run_dir / "xmu.dat").exists()
    assert not (run_dir / process.WORK_DIR_NAME).exists()


def test_timeout_and_cancel_kill_feff_and_its_children(tmp_path, monkeypatch):
    pid_file = tmp_path / "pids.txt"
    use_sleeping_feff(monkeypatch, pid_file)
    run_dir = tmp_path / "000_Cu"
    run_dir.mkdir()
    (run_dir / "feff.inp").write_text("fake\n")
    with pytest.raises(FeffTimeoutError, match="within 1 s"):
        process.run_feff(run_dir, timeout_s=1.0)
    pids = [int(p) for p in pid_file.read_text().split()]
    time.sleep(0.5)
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(FeffCancelledError):
        process.run_feff(run_dir, cancel=lambda: True)


def test_missing_feff10_gives_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "feff10", None)  # "import feff10" now raises ImportError
    with pytest.raises(FeffUnavailableError, match="FEFF10 is not available.*pip install feff10-rs"):
        process.check_feff_available()


def test_child_entry_point_runs_from_the_package(tmp_path):
    # The command run_feff starts must resolve to this package's _process module.
    command = process._feff_command(tmp_path / "feff.inp", tmp_path)
    assert command[1:3] == ["-m", "model_core.feff._process"]
    result = subprocess.run([sys.executable, "-m", "model_core.feff._process"], capture_output=True, text=True,
                            env=process._child_env(), timeout=60)
    assert result.returncode == 2 and "usage: python -m model_core.feff._process" in result.stderr
