"""One FEFF10 run in a child process group: start, poll, time out, cancel, kill the whole tree.

FEFF runs in a child process (``python -m model_core.feff._process``) started in its own
process group (a new session on POSIX, ``CREATE_NEW_PROCESS_GROUP`` on Windows), so
that cancelling or timing out kills FEFF and the per-stage worker processes feff10
starts together, whichever pool the site task runs in. A failed run leaves a
``feff.log`` in the site folder; a successful one leaves exactly ``feff.inp`` and
``xmu.dat``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from model_core.feff import _process
from model_core.feff.errors import (UNAVAILABLE_HINT, FeffCancelledError, FeffRunError, FeffTimeoutError,
                                    FeffUnavailableError)
from model_core.feff.xmu import validate_xmu

__all__ = ["WORK_DIR_NAME", "check_feff_available", "run_feff"]

#: Name of the scratch folder FEFF runs in, inside the site folder (removed afterwards).
WORK_DIR_NAME = "feff-work"


def check_feff_available() -> str:
    """Check that FEFF10 can be imported in this interpreter.

    Returns:
        The feff10-rs version.

    Raises:
        FeffUnavailableError: one message naming the problem and the fix.
    """
    try:
        import feff10
    except Exception as exc:  # noqa: BLE001 - a broken native extension raises more than ImportError
        raise FeffUnavailableError(
            f"FEFF10 is not available: importing 'feff10' failed ({type(exc).__name__}: {exc}); "
            f"{UNAVAILABLE_HINT}") from exc
    if not callable(getattr(feff10, "run", None)):
        raise FeffUnavailableError(f"FEFF10 is not available: the 'feff10' package has no run(); {UNAVAILABLE_HINT}")
    return str(getattr(feff10, "__version__", "unknown"))


def _feff_command(feff_inp: Path, work_dir: Path) -> list[str]:
    """Command line of the FEFF child process (a function so tests can substitute it)."""
    return [sys.executable, "-m", "model_core.feff._process", str(feff_inp), str(work_dir)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import model_core even when the project is not installed (a source
    # checkout on a cluster): put the folder holding the package on its path.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    # FEFF-serial is single threaded; stop any OpenMP/BLAS runtime from
    # oversubscribing the cores the other workers use.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the child and every process in its group (feff10's stage workers)."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    else:
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(proc.pid):
                if proc.poll() is None:
                    try:
                        proc.wait(timeout=0.05)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.05)
            if not _group_alive(proc.pid):
                break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not deliver SIGKILL
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _last_message(log_path: Path, limit: int = 300) -> str:
    """The last informative line of a FEFF log (errors come last)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = " ".join(line.split())
        if text:
            return text[:limit]
    return ""


def run_feff(run_dir: str | Path, *, timeout_s: float | None = None,
             cancel: Callable[[], bool] | None = None, poll_s: float = 0.2,
             keep_work: bool = False) -> Path:
    """Run FEFF10 on ``run_dir/feff.inp`` and leave a validated ``run_dir/xmu.dat``.

    FEFF runs in ``run_dir/feff-work`` in a child process group; on success only
    xmu.dat is kept (the dataset layout), on failure the FEFF log is kept as
    ``run_dir/feff.log``.

    Args:
        run_dir: the site folder holding feff.inp.
        timeout_s: wall-time limit in seconds (None: no limit).
        cancel: polled every ``poll_s`` seconds; when it returns True the FEFF
            processes are killed.
        poll_s: polling interval in seconds.
        keep_work: keep FEFF's scratch folder (for debugging).

    Returns:
        The path of xmu.dat.

    Raises:
        FeffUnavailableError: feff10 cannot be imported in the child.
        FeffCancelledError, FeffTimeoutError: the run was stopped.
        FeffRunError: FEFF failed; InvalidXmuError: it wrote no usable xmu.dat.
    """
    run_dir = Path(run_dir).resolve()
    feff_inp = run_dir / "feff.inp"
    if not feff_inp.is_file():
        raise FeffRunError(f"{feff_inp} does not exist")
    work = run_dir / WORK_DIR_NAME
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_path = work / "feff.log"
    xmu_out = run_dir / "xmu.dat"
    xmu_out.unlink(missing_ok=True)  # never leave a stale result beside new inputs
    popen_kwargs: dict[str, Any] = {}
    if os.name == "nt":
        popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        popen_kwargs["start_new_session"] = True
    ok = False
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(_feff_command(feff_inp, work), cwd=work, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=_child_env(), **popen_kwargs)
            start = time.monotonic()
            try:
                while True:
                    try:
                        rc = proc.wait(timeout=poll_s)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if cancel is not None and cancel():
                        _kill_tree(proc)
                        raise FeffCancelledError("cancelled; FEFF was stopped")
                    if timeout_s is not None and time.monotonic() - start > timeout_s:
                        _kill_tree(proc)
                        raise FeffTimeoutError(f"FEFF did not finish within {timeout_s:g} s and was stopped")
            finally:
                # Also on KeyboardInterrupt, and for stage workers outliving their parent.
                _kill_tree(proc)
        if rc == _process.EXIT_UNAVAILABLE:
            raise FeffUnavailableError(f"FEFF10 is not available: {_last_message(log_path)}; {UNAVAILABLE_HINT}")
        if rc != 0:
            raise FeffRunError(f"FEFF failed (exit code {rc}): {_last_message(log_path) or 'no output'}")
        validate_xmu(work / "xmu.dat")
        # Copy then rename: a valid-looking but truncated xmu.dat would be skipped on resume.
        tmp = run_dir / "xmu.dat.tmp"
        shutil.copyfile(work / "xmu.dat", tmp)
        os.replace(tmp, xmu_out)
        ok = True
    finally:
        saved_log = run_dir / "feff.log"
        if ok:
            saved_log.unlink(missing_ok=True)
        elif log_path.is_file():
            shutil.copyfile(log_path, saved_log)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return xmu_out
