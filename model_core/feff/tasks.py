"""The unit of work sent to pool workers and Parsl apps: one site's FEFF run.

:class:`SiteTask` and :class:`SiteResult` are picklable (paths as strings) and
:func:`run_site` never raises, so a task behaves the same in a thread, a spawned
process or on a Parsl node. Cancellation crosses those boundaries as a file
(:attr:`SiteTask.cancel_file`) that the run polls.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from model_core.feff.errors import FeffCancelledError, one_line
from model_core.feff.process import run_feff

__all__ = ["SiteResult", "SiteTask", "run_site"]


@dataclass(frozen=True)
class SiteTask:
    """Everything a worker needs to run one site (picklable, paths as strings).

    Attributes:
        run_dir: the site folder holding feff.inp.
        site: 0-based absorber index (for reports).
        timeout_s: wall-time limit of FEFF in seconds, or None.
        cancel_file: when this file exists the run stops (works across processes
            and, on a shared file system, across Parsl nodes).
        keep_work: keep FEFF's scratch folder.
    """

    run_dir: str
    site: int
    timeout_s: float | None = None
    cancel_file: str | None = None
    keep_work: bool = False

    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return bool(self.cancel_file) and os.path.exists(self.cancel_file)


@dataclass(frozen=True)
class SiteResult:
    """Outcome of one :class:`SiteTask`.

    Attributes:
        run_dir: the site folder.
        site: 0-based absorber index.
        status: "done", "failed" or "cancelled".
        reason: one line explaining a failure or cancellation.
        seconds: wall time of the run.
    """

    run_dir: str
    site: int
    status: str
    reason: str = ""
    seconds: float = 0.0


def run_site(task: SiteTask) -> SiteResult:
    """Run FEFF for one site; never raises (failures become a "failed" result).

    This is the function sent to pool workers and Parsl apps.
    """
    start = time.monotonic()
    if task.cancelled():
        return SiteResult(task.run_dir, task.site, "cancelled", "cancelled before start")
    try:
        run_feff(task.run_dir, timeout_s=task.timeout_s, cancel=task.cancelled, keep_work=task.keep_work)
    except FeffCancelledError as exc:
        return SiteResult(task.run_dir, task.site, "cancelled", str(exc), time.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - every failure is reported per site
        return SiteResult(task.run_dir, task.site, "failed", one_line(exc), time.monotonic() - start)
    return SiteResult(task.run_dir, task.site, "done", "", time.monotonic() - start)
