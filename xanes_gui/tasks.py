"""Background tasks: run slow calls (file reading, model loading, inference) off the GUI thread.

A :class:`Task` wraps a function in a :class:`~PySide6.QtCore.QRunnable` for the
global :class:`~PySide6.QtCore.QThreadPool`. Results, errors and progress come
back as Qt signals of a :class:`TaskSignals` object that lives in the main
thread, so connected slots (which update widgets) always run there.

Cancelling sets a flag; the function receives a ``progress(done, total)``
callable that raises :class:`Cancelled` once the flag is set, which is how
:data:`model_core.inference.ProgressCallback` cancels a prediction.

Work that a newer request makes obsolete (a normalization whose parameters
changed again, a comparison, an alignment, the one running prediction) goes
through :class:`LatestWins`, so that only the latest request's outcome is applied.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


#: Fewest threads of the pool tasks run in (see TaskRunner).
MIN_THREADS = 8


class Cancelled(Exception):
    """Raised from a progress callback to stop a task the user cancelled."""


class TaskSignals(QObject):
    """Signals of one task (created in the main thread, emitted from the worker).

    Signals:
        progress(int, int): done, total.
        succeeded(object): the function's return value.
        failed(str): a one-line message (the exception's text).
        cancelled(): the user cancelled the task.
        finished(): emitted last, after one of the three above.
    """

    progress = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()


class Task(QRunnable):
    """A function run once in the thread pool.

    Args:
        fn: called as ``fn(*args, progress=cb, **kwargs)`` when ``with_progress``,
            else ``fn(*args, **kwargs)``.
        with_progress: pass a cancellable progress callback as ``progress=``.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, **kwargs: Any) -> None:
        super().__init__()
        # The pool must not delete the runnable: Python owns it, and its
        # signals object must outlive the run so queued signals are delivered.
        self.setAutoDelete(False)
        self.signals = TaskSignals()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._with_progress = with_progress
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        """Ask the task to stop at its next progress report."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        self.signals.progress.emit(int(done), int(total))

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            kwargs = dict(self._kwargs)
            if self._with_progress:
                kwargs["progress"] = self._progress
            if self._cancel.is_set():
                raise Cancelled()
            result = self._fn(*self._args, **kwargs)
        except Cancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, (ValueError, OSError)):
                # Unexpected errors keep their type so bug reports are useful.
                message = f"{type(exc).__name__}: {message}"
                traceback.print_exc()
            self.signals.failed.emit(message)
        else:
            if self._cancel.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.succeeded.emit(result)
        finally:
            self.done.set()
            self.signals.finished.emit()


class TaskRunner(QObject):
    """Starts tasks and keeps them alive until they finish.

    Args:
        pool: the thread pool (the global one by default).
    """

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        # Qt sizes the pool by CPU cores, but several tasks mostly wait (importing
        # larch, a FEFF10 run waiting on its subprocesses for minutes): with two
        # cores they would hold every thread and a prediction could not start.
        if self._pool.maxThreadCount() < MIN_THREADS:
            self._pool.setMaxThreadCount(MIN_THREADS)
        self._running: set[Task] = set()

    def start(self, task: Task) -> Task:
        """Start ``task``; returns it so callers can connect signals or cancel."""
        self._running.add(task)
        task.signals.finished.connect(lambda t=task: self._running.discard(t))
        self._pool.start(task)
        return task

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def wait_all(self, msecs: int = 30000) -> bool:
        """Block until the pool is idle (used at shutdown so no worker outlives the app)."""
        for task in list(self._running):
            task.cancel()
        return self._pool.waitForDone(msecs)


class LatestWins:
    """Runs background tasks so that only the latest request of each key is answered.

    A request for a key supersedes the one before it: the older task is cancelled
    (it does not start if it has not yet, and its outcome is ignored if it has), so
    a slow early result can never overwrite a newer one. Outcome callbacks run in
    the GUI thread; ``ended`` runs after the outcome callback of the latest task,
    whatever the outcome.

    Args:
        runner: starts the tasks and keeps them alive.
    """

    def __init__(self, runner: TaskRunner) -> None:
        self._runner = runner
        self._latest: dict[Any, Task] = {}

    def start(self, task: Task, key: Any = None, *, succeeded: Callable[[Any], None] | None = None,
              failed: Callable[[str], None] | None = None, cancelled: Callable[[], None] | None = None,
              ended: Callable[[], None] | None = None) -> Task:
        """Start ``task`` as the latest request for ``key``; returns it."""
        previous = self._latest.get(key)
        if previous is not None:
            previous.cancel()
        self._latest[key] = task

        def outcome(callback: Callable[..., None] | None, *args: Any) -> None:
            if self._latest.get(key) is not task:
                return  # superseded or dropped
            if callback is not None:
                callback(*args)
            # The request counts as answered once its outcome is applied, not at the
            # later "finished" signal, so a new request is not refused in between.
            if self._latest.get(key) is task:
                del self._latest[key]
                if ended is not None:
                    ended()

        task.signals.succeeded.connect(lambda result: outcome(succeeded, result))
        task.signals.failed.connect(lambda message: outcome(failed, message))
        task.signals.cancelled.connect(lambda: outcome(cancelled))
        return self._runner.start(task)

    def running(self, key: Any = None) -> Task | None:
        """The latest task of ``key`` still waiting for its outcome (None when there is none)."""
        return self._latest.get(key)

    def drop(self, key: Any = None) -> None:
        """Forget the request of ``key``: its task is cancelled and its outcome ignored."""
        task = self._latest.pop(key, None)
        if task is not None:
            task.cancel()
