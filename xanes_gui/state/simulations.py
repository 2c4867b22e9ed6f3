"""FEFF10 simulations of the selected sites, and their results per structure."""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from xanes_gui.backend import Backend
from xanes_gui.comparison import FEFF_COLORS, FeffResult, check_feff, load_feff_result, run_feff
from xanes_gui.state.messages import Messages
from xanes_gui.state.structures import Structures
from xanes_gui.tasks import LatestWins, Task, TaskRunner


class Simulations(QObject):
    """FEFF10 runs of the current structure's selected sites, and the results of every structure.

    Args:
        backend: checks and runs FEFF10, reads its output.
        structures: the structures simulated.
        messages: where status and error messages go.
        tasks: runs the workers.

    Signals:
        feffStarted(): a FEFF10 simulation started.
        feffProgress(int, int, str): sites finished, total, status line.
        feffFinished(): the simulation worker ended (success, failure or cancel).
        feffReady(str, object): structure id and a FeffResult (new or restored).
        feffChecked(bool, str): whether FEFF10 works, and its version or the problem.
    """

    feffStarted = Signal()
    feffProgress = Signal(int, int, str)
    feffFinished = Signal()
    feffReady = Signal(str, object)
    feffChecked = Signal(bool, str)

    def __init__(self, backend: Backend, structures: Structures, messages: Messages, tasks: TaskRunner,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._structures = structures
        self._messages = messages
        self._tasks = tasks
        self._latest = LatestWins(tasks)
        # structure id -> preset -> result.
        self._results: dict[str, dict[str, FeffResult]] = {}
        self._cancel: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self._latest.running() is not None

    def results(self, doc_id: str | None = None) -> dict[str, FeffResult]:
        """FEFF10 results of a structure (the current one by default) by preset name."""
        return dict(self._results.get(doc_id or self._structures.current_id, {}))

    def color(self, preset: str, index: int) -> tuple[int, int, int]:
        return FEFF_COLORS[index % len(FEFF_COLORS)]

    def forget(self, doc_id: str) -> None:
        """Drop the results of a closed structure."""
        self._results.pop(doc_id, None)

    def check(self) -> Task:
        """Check in a worker that FEFF10 can run; emits feffChecked."""
        task = Task(check_feff, self.backend)
        task.signals.succeeded.connect(lambda version: self.feffChecked.emit(True, str(version)))
        task.signals.failed.connect(lambda message: self.feffChecked.emit(False, message))
        return self._tasks.start(task)

    def sites(self, doc_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Symmetry-reduced selected sites (representatives, multiplicities) FEFF would compute."""
        doc = self._structures.document(doc_id or self._structures.current_id)
        if doc is None or len(doc.selection) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return doc.symmetry.representatives(doc.selection.indices)

    def simulate(self, preset: str, out_dir: str, *, edge: str = "K", workers: int = 1) -> Task | None:
        """Simulate the selected sites of the current structure with FEFF10 in a worker.

        The runner starts FEFF in subprocesses; cancel() sets its cancel event,
        which kills them. Results arrive as feffReady.
        """
        if self.running:
            self._messages.status("A FEFF10 simulation is already running")
            return None
        doc = self._structures.current
        if doc is None:
            self._messages.error("Open a structure first")
            return None
        if len(doc.selection) == 0:
            self._messages.error("Select the absorbing atoms to simulate")
            return None
        cancel = threading.Event()
        signals = self  # progress is re-emitted by this object (queued to the GUI thread)
        task = Task(run_feff, self.backend, doc.structure, doc.selection, doc.symmetry, str(out_dir), preset,
                    edge, max(1, int(workers)), cancel,
                    lambda done, total, status: signals.feffProgress.emit(int(done), int(total), str(status)))
        self._cancel = cancel
        self._latest.start(task, succeeded=lambda result, d=doc.id: self._on_done(d, result),
                           failed=lambda message: self._messages.error(f"FEFF10 simulation failed: {message}"),
                           ended=self._on_ended)
        self.feffStarted.emit()
        n = len(self.sites(doc.id)[0])
        self._messages.status(f"Simulating {n} site(s) of {doc.title} with FEFF10 ({preset})…")
        return task

    def cancel(self) -> None:
        """Stop the running simulation (the runner kills the FEFF processes)."""
        if self._cancel is not None:
            self._cancel.set()
        if self.running:
            self._messages.status("Cancelling FEFF10…")

    def _on_done(self, doc_id: str, result: FeffResult) -> None:
        if result.cancelled:
            self._messages.status(f"FEFF10 cancelled; {len(result.spectra)} site(s) finished")
        else:
            for site in result.sites:
                if site.spectrum is None:
                    self._messages.error(f"FEFF10 site {site.site} ({site.run_dir}): {site.error}")
        self.add_result(doc_id, result)

    def add_result(self, doc_id: str, result: FeffResult) -> None:
        """Keep a FEFF10 result for a structure (replaces one of the same preset)."""
        if self._structures.document(doc_id) is None:
            return
        if result.spectra:
            self._results.setdefault(doc_id, {})[result.preset] = result
            self._messages.status(f"FEFF10 ({result.preset}): {len(result.spectra)} site spectrum(s)")
        self.feffReady.emit(doc_id, result)

    def _on_ended(self) -> None:
        self._cancel = None
        self.feffFinished.emit()

    def load(self, doc_id: str, preset: str, edge: str, structure_dir: str,
             runs: Sequence[tuple[int, Sequence[int], str]], on_finished: Any = None) -> Task:
        """Read FEFF10 results from run folders in a worker (session restore).

        Args:
            on_finished: called (in the GUI thread) when the worker ended; connected
                before the worker starts so a fast worker cannot be missed.
        """
        task = Task(load_feff_result, self.backend, preset, edge, structure_dir, runs)
        task.signals.succeeded.connect(lambda result, d=doc_id: self.add_result(d, result))
        task.signals.failed.connect(lambda message: self._messages.error(f"FEFF10 results: {message}"))
        if on_finished is not None:
            task.signals.finished.connect(on_finished)
        return self._tasks.start(task)

    def shutdown(self) -> None:
        """Kill running FEFF processes (the window is closing)."""
        if self._cancel is not None:
            self._cancel.set()
