"""Where site tasks run: a local thread or spawn-context process pool, or Parsl apps.

Both executors hand every finished task to a ``record(task, result, error)``
callback in the calling thread, and both stop on cancellation the same way: tasks
not yet started are cancelled, and the cancel file the running tasks poll
(:attr:`~model_core.feff.tasks.SiteTask.cancel_file`) is created, which kills their
FEFF processes (across processes and, on a shared file system, across Parsl nodes).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from model_core.feff.tasks import SiteResult, SiteTask

__all__ = ["Recorder", "TaskFunction", "load_parsl_config", "run_locally", "run_with_parsl"]

#: Called once per task as it finishes: (task, its result or None, the exception it raised or None).
Recorder = Callable[[SiteTask, "SiteResult | None", "BaseException | None"], None]

#: A site task function (:func:`model_core.feff.tasks.run_site` or a stand-in).
TaskFunction = Callable[[SiteTask], SiteResult]


def run_locally(tasks: Sequence[SiteTask], workers: int, function: TaskFunction,
                cancel_event: threading.Event | None, cancel_file: Path, record: Recorder) -> None:
    """Run the tasks on this machine and record each; returns when all are recorded.

    Args:
        tasks: the sites to run.
        workers: 1 runs them one at a time in a thread of this process; more run them
            in a spawn-context process pool of at most that many processes (``function``
            must then be picklable).
        function: runs one task.
        cancel_event: when set, stops the tasks (see the module docstring).
        cancel_file: the tasks' cancel file.
        record: receives each finished task.
    """
    workers = max(1, int(workers))
    if workers == 1:
        # FEFF itself runs in a child process; a thread keeps this process free to
        # watch for cancellation.
        executor: cf.Executor = cf.ThreadPoolExecutor(max_workers=1)
    else:
        # spawn: the same behaviour on Linux, macOS and Windows, and no fork of a
        # process that may hold threads (a GUI, Parsl).
        executor = cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                          mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {executor.submit(function, task): task for task in tasks}
        _drain(futures, cancel_event, cancel_file, record)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_with_parsl(tasks: Sequence[SiteTask], parsl_config: str | Path, function: TaskFunction,
                   cancel_event: threading.Event | None, cancel_file: Path, record: Recorder) -> None:
    """Run the tasks as Parsl python_apps of a private DataFlowKernel and record each.

    Args:
        parsl_config: a Python file defining ``config`` (see :func:`load_parsl_config`).
        Others as in :func:`run_locally`.

    Raises:
        ValueError: Parsl is not installed, or the config file is missing or bad.
    """
    try:
        from parsl import python_app
        from parsl.dataflow.dflow import DataFlowKernel
    except ImportError as exc:
        raise ValueError(f"--parsl-config needs Parsl: pip install parsl ({exc})") from exc
    config = load_parsl_config(parsl_config)
    # A private DataFlowKernel instead of parsl.load(): no global state, so several
    # simulations (or a GUI session) can run one after another.
    dfk = DataFlowKernel(config)
    try:
        app = python_app(function, data_flow_kernel=dfk)
        futures = {app(task): task for task in tasks}
        _drain(futures, cancel_event, cancel_file, record)
    finally:
        dfk.cleanup()


def load_parsl_config(path: str | Path) -> Any:
    """The ``config`` (a parsl.config.Config) defined by a Python file.

    Raises:
        ValueError: the file is missing or defines no such ``config``.
    """
    import runpy

    from parsl.config import Config

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: Parsl config file not found")
    namespace = runpy.run_path(str(path))
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise ValueError(f"{path}: must define `config`, a parsl.config.Config")
    return config


def _drain(futures: dict[cf.Future, SiteTask], cancel_event: threading.Event | None, cancel_file: Path,
           record: Recorder) -> None:
    """Wait for the futures, recording each; on cancellation stop the rest."""
    pending = set(futures)
    cancelling = False
    try:
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                task = futures[future]
                if future.cancelled():
                    record(task, SiteResult(task.run_dir, task.site, "cancelled", "cancelled before start"), None)
                    continue
                error = future.exception()
                record(task, None if error else future.result(), error)
            if not cancelling and cancel_event is not None and cancel_event.is_set():
                cancelling = True
                _request_cancel(cancel_file)
                for future in pending:
                    future.cancel()  # not started yet; Parsl cannot, its tasks see the file
    except BaseException:
        # KeyboardInterrupt in the caller: stop FEFF everywhere before unwinding.
        _request_cancel(cancel_file)
        for future in pending:
            future.cancel()
        raise


def _request_cancel(cancel_file: Path) -> None:
    cancel_file.parent.mkdir(parents=True, exist_ok=True)
    cancel_file.touch()
