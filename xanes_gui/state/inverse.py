"""Infer structure: candidate local structures for the current measured spectrum.

The inversion (:func:`model_core.inverse.api.invert`, as ``xanes-invert`` runs it on the
spectrum's file and group) is a :class:`~xanes_gui.backend.Backend` function run in a
worker; this part holds the candidates, puts a candidate's round-trip spectrum on the
plots (through :meth:`Interpret.set_overlay`) and opens a candidate cluster as a structure.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from xanes_gui.backend import Backend
from xanes_gui.state.interpret import Interpret
from xanes_gui.state.measured import MeasuredSpectra
from xanes_gui.state.messages import Messages
from xanes_gui.state.predictions import Predictions
from xanes_gui.state.structures import Structures
from xanes_gui.tasks import LatestWins, Task, TaskRunner

KIND = "infer"


def spread_summary(candidates: Sequence[Any]) -> str:
    """The spread across samples in one line: first-shell CN counts and mean ± std distance.

    Over the diffusion samples when there are any (the spread of the generative model),
    else over every candidate.
    """
    diffusion = [c for c in candidates if c.method == "diffusion"]
    pool, which = (diffusion, "diffusion samples") if diffusion else (list(candidates), "candidates")
    if not pool:
        return "No candidates"
    counts = Counter(int(c.coordination_number) for c in pool)
    cn = ", ".join(f"CN {n}: {counts[n]}" for n in sorted(counts))
    distances = np.array([c.first_shell_distance_a for c in pool], dtype=float)
    distances = distances[np.isfinite(distances)]
    distance = (f"first shell {distances.mean():.3f} ± {distances.std():.3f} Å" if distances.size
                else "first shell —")
    return f"{len(pool)} {which}: {cn}; {distance}"


class Inverse(QObject):
    """Candidate structures inferred from the current measured spectrum.

    Args:
        backend, messages, tasks: as for the other parts.
        structures, predictions, measured, interpret: the selected element, the device,
            the measured spectrum inverted, and the overlay curves.

    Attributes:
        candidates: the last result (Candidate, best first).
        spectrum: the GridSpectrum they were inverted from (its ``e0_ev`` places the
            round-trip spectra on the measured energy axis).

    Signals:
        candidatesReady(object): the candidates (tuple, best first).
        runningChanged(bool): an inversion started or ended.
        progress(int, int): done, total.
    """

    candidatesReady = Signal(object)
    runningChanged = Signal(bool)
    progress = Signal(int, int)

    def __init__(self, backend: Backend, messages: Messages, tasks: TaskRunner, structures: Structures,
                 predictions: Predictions, measured: MeasuredSpectra, interpret: Interpret,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._messages = messages
        self._latest = LatestWins(tasks)
        self._structures, self._predictions, self._measured, self._interpret = (structures, predictions,
                                                                                measured, interpret)
        self._models: dict[tuple[str, str], Any] = {}
        self.candidates: tuple[Any, ...] = ()
        self.spectrum: Any = None

    def element(self) -> str:
        """The inverted element: the current structure's selected one, else the interpreted one."""
        doc = self._structures.current
        selected = doc.selected_element() if doc is not None else None
        return selected or self._interpret.element()

    def infer(self, n_samples: int, element: str | None = None) -> Task | None:
        """Invert the current measured spectrum (its file and group) into candidates, with progress."""
        doc = self._measured.doc()
        if doc is None:
            self._messages.error("Import a measured spectrum first")
            return None
        element = element or self.element()
        if not element:
            self._messages.error("Choose the absorbing element (select atoms or pick it in the Infer panel)")
            return None
        key = (element, self._predictions.device)
        task = Task(self.backend.infer_structure, doc.path, element, int(n_samples), group=doc.data.group,
                    model=self._models.get(key), device=key[1], with_progress=True)
        task.signals.progress.connect(self.progress.emit)
        self._latest.start(task, KIND, succeeded=lambda result: self._on_result(key, result),
                           failed=lambda message: self._messages.error(f"Infer structure failed: {message}"),
                           cancelled=lambda: self._messages.status("Infer structure cancelled"),
                           ended=lambda: self.runningChanged.emit(False))
        self.runningChanged.emit(True)
        self._messages.status(f"Inferring {element} structures from {doc.label}…")
        return task

    def _on_result(self, key: tuple[str, str], result: dict[str, Any]) -> None:
        self._models[key] = result["model"]
        self.spectrum, self.candidates = result["spectrum"], tuple(result["candidates"])
        for warning in getattr(self.spectrum, "warnings", ()):
            self._messages.status(f"Infer structure: {warning}")
        self.candidatesReady.emit(self.candidates)
        self._messages.status(f"Infer structure: {len(self.candidates)} candidate(s)")

    def running(self) -> bool:
        return self._latest.running(KIND) is not None

    def cancel(self) -> None:
        """Cancel the running inversion (it stops at its next progress report)."""
        task = self._latest.running(KIND)
        if task is not None:
            task.cancel()
            self._messages.status("Cancelling…")

    def show_candidate(self, row: int) -> None:
        """Overlay candidate ``row``'s round-trip spectrum on the measured one."""
        if 0 <= row < len(self.candidates) and self.spectrum is not None:
            c = self.candidates[row]
            e0 = float(self.spectrum.e0_ev)
            self._interpret.set_overlay(KIND, f"infer #{row + 1}: {c.method} CN {c.coordination_number}",
                                        np.asarray(c.energy_ev) + (0.0 if math.isnan(e0) else e0), c.roundtrip_mu)

    def open_candidate(self, row: int) -> str | None:
        """Add candidate ``row``'s cluster as a structure document (shown in 3D); its id."""
        if not 0 <= row < len(self.candidates):
            return None
        candidate = self.candidates[row]
        name = f"infer #{row + 1} {candidate.method} (CN {candidate.coordination_number})"
        return self._structures.add_structure(replace(candidate.structure(), name=name))
