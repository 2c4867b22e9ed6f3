"""Background tasks: run slow calls (file reading, model loading, inference) off the GUI thread.

A :class:`Task` wraps a function in a :class:`~PySide6.QtCore.QRunnable` for the
global :class:`~PySide6.QtCore.QThreadPool`. Results, errors and progress come
back as Qt signals of a :class:`TaskSignals` object that lives in the main
thread, so connected slots (which update widgets) always run there.

Cancelling sets a flag; the function receives a ``progress(done, total)``
callable that raises :class:`Cancelled` once the flag is set, which is how
:data:`model_core.inference.ProgressCallback` cancels a prediction.
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
