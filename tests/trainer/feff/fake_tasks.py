"""Picklable stand-ins for :func:`trainer.feff.runner.run_site` (importable by spawned workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from trainer.feff.runner import SiteResult, SiteTask


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
