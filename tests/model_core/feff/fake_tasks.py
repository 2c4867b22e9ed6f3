"""Stand-ins for FEFF: picklable site tasks (importable by spawned workers) and a fake FEFF process."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from model_core.feff import process
from model_core.feff.tasks import SiteResult, SiteTask


def write_fake_xmu(path: Path, rows: int = 120) -> None:
    """A synthetic but valid xmu.dat: omega, e, k, mu, mu0, chi."""
    e = np.linspace(-10.0, 110.0, rows)
    omega = 8979.0 + e
    k = np.sign(e) * np.sqrt(np.abs(e) / 3.81)
    mu = 1.0 / (1.0 + np.exp(-e / 2.0))
    table = np.column_stack([omega, e, k, mu, mu, np.zeros_like(e)])
    header = "# fake xmu.dat written by tests\n#  omega    e    k    mu    mu0     chi\n"
    path.write_text(header + "\n".join(" ".join(f"{v:.6f}" for v in row) for row in table) + "\n")


def fake_site_task(task: SiteTask) -> SiteResult:
    """Pretend to run FEFF: write an xmu.dat and record which process did it."""
    run_dir = Path(task.run_dir)
    time.sleep(0.2)
    write_fake_xmu(run_dir / "xmu.dat")
    (run_dir / "worker.pid").write_text(str(os.getpid()))
    return SiteResult(task.run_dir, task.site, "done", "", 0.2)


# A FEFF child that sleeps and has a sleeping child of its own; it appends
# "<its pid> <its child's pid>" to the file named by its argument.
_SLEEPER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[1], "a") as handle:
        handle.write(f"{__import__('os').getpid()} {child.pid}\\n")
    time.sleep(120)
""")


def use_sleeping_feff(monkeypatch, pid_file: Path) -> None:
    """Replace the FEFF child of :func:`model_core.feff.process.run_feff` by the sleeper."""
    def command(feff_inp, work_dir):
        return [sys.executable, "-c", _SLEEPER, str(pid_file)]

    monkeypatch.setattr(process, "_feff_command", command)


def wait_for_pids(path: Path, count: int, timeout: float = 30.0) -> list[int]:
    """The pids written by ``count`` started sleepers (each writes two)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            pids = [int(p) for p in path.read_text().split()]
            if len(pids) >= 2 * count:
                return pids
        time.sleep(0.05)
    raise AssertionError("the fake FEFF process did not start")


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
