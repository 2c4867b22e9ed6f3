"""Infer structure: candidate local structures for a measured or simulated spectrum.

The inversion (:func:`model_core.inverse.api.invert`, as ``xanes-invert`` runs it on a
measured spectrum's file and group, or on a FEFF10 result or prediction in memory) is a
:class:`~xanes_gui.backend.Backend` function run in a worker, cancellable at every
diffusion step; this part lists the spectra it can invert (:meth:`Inverse.sources`),
holds the candidates, puts a candidate's round-trip spectrum on the plots (through
:meth:`Interpret.set_overlay`) and opens a candidate cluster as a structure.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from model_core.types import Spectrum
from xanes_gui.backend import Backend
from xanes_gui.comparison import relative_energies
from xanes_gui.state.interpret import Interpret
from xanes_gui.state.measured import MeasuredSpectra
from xanes_gui.state.messages import Messages
from xanes_gui.state.predictions import Predictions
from xanes_gui.state.simulations import Simulations
from xanes_gui.state.structures import Structures
from xanes_gui.tasks import LatestWins, Task, TaskRunner

KIND = "infer"
#: The source key of "the current measured spectrum" (the default).
CURRENT_MEASURED = ""


@dataclass(frozen=True, eq=False)
class InferSource:
    """A spectrum "Infer structure" can invert.

    Attributes:
        key: ``"measured:<id>"``, ``"feff:<structure id>:<preset>:<site or 'average'>"``,
            ``"predicted:<structure id>"``, or :data:`CURRENT_MEASURED`.
        label: its name in the chooser.
        element: the absorbing element it belongs to ("" when the source names none).
        path, group: the measured file and Athena group (measured sources).
        spectrum: the edge-relative simulated spectrum (FEFF10 and predicted sources).
    """

    key: str
    label: str
    element: str = ""
    path: str = ""
    group: str | None = None
    spectrum: Spectrum | None = None


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
    """Candidate structures inferred from a measured spectrum, a FEFF10 result or a prediction.

    Args:
        backend, messages, tasks: as for the other parts.
        structures, predictions, measured, interpret, simulations: the selected element,
            the device and the predictions, the measured spectra, the overlay curves, and
            the FEFF10 results.

    Attributes:
        candidates: the last result (Candidate, best first).
        spectrum: the GridSpectrum they were inverted from (its ``e0_ev`` places the
            round-trip spectra on the measured energy axis).

    Signals:
        candidatesReady(object): the candidates (tuple, best first).
        runningChanged(bool): an inversion started or ended.
        progress(int, int): done, total (every diffusion step while sampling).
        sourcesChanged(): the spectra :meth:`sources` lists may have changed.
    """

    candidatesReady = Signal(object)
    runningChanged = Signal(bool)
    progress = Signal(int, int)
    sourcesChanged = Signal()

    def __init__(self, backend: Backend, messages: Messages, tasks: TaskRunner, structures: Structures,
                 predictions: Predictions, measured: MeasuredSpectra, interpret: Interpret,
                 simulations: Simulations, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._messages = messages
        self._latest = LatestWins(tasks)
        self._structures, self._predictions, self._measured, self._interpret = (structures, predictions,
                                                                                measured, interpret)
        self._simulations = simulations
        for signal in (measured.measuredAdded, measured.measuredRemoved, measured.measuredChanged,
                       simulations.feffReady, predictions.predictionReady, structures.structureAdded,
                       structures.structureRemoved):
            signal.connect(lambda *_: self.sourcesChanged.emit())
        self._models: dict[tuple[str, str], Any] = {}
        self.candidates: tuple[Any, ...] = ()
        self.spectrum: Any = None

    def element(self) -> str:
        """The inverted element: the current structure's selected one, else the interpreted one."""
        doc = self._structures.current
        selected = doc.selected_element() if doc is not None else None
        return selected or self._interpret.element()

    def sources(self) -> list[InferSource]:
        """What can be inverted: the current measured spectrum (first, the default), every
        measured spectrum, every FEFF10 site spectrum and average, every shown prediction."""
        found = [InferSource(CURRENT_MEASURED, "Current measured spectrum")]
        found += [InferSource(f"measured:{m.id}", m.label, path=m.path, group=m.data.group)
                  for m in self._measured.docs]
        for doc in self._structures.documents:
            symbols = doc.structure.symbols
            for preset, result in self._simulations.results(doc.id).items():
                sites = result.spectra
                for site in sites:
                    found.append(self._simulated(f"feff:{doc.id}:{preset}:{site.site}",
                                                 f"FEFF10 {preset} #{site.site} {symbols[site.site]} · {doc.title}",
                                                 symbols[site.site], site.spectrum))
                if result.average is not None and sites:
                    found.append(self._simulated(f"feff:{doc.id}:{preset}:average",
                                                 f"FEFF10 {preset} average · {doc.title}", symbols[sites[0].site],
                                                 result.average))
            prediction = self._predictions.shown_prediction(doc.id)
            if prediction is not None:
                label = f"predicted {prediction.model_name} · {doc.title}"
                found.append(InferSource(f"predicted:{doc.id}", label, prediction.element,
                                         spectrum=prediction.average_spectrum().replace(label=label)))
        return found

    @staticmethod
    def _simulated(key: str, label: str, element: str, spectrum: Spectrum) -> InferSource:
        edge = Spectrum(relative_energies(spectrum), spectrum.mu, label=label, energy_reference="edge",
                        e0_ev=spectrum.e0_ev)
        return InferSource(key, label, element, spectrum=edge)

    def source(self, key: str = CURRENT_MEASURED) -> InferSource | None:
        """The source of ``key`` (the current measured spectrum resolved), None when gone."""
        if key == CURRENT_MEASURED:
            doc = self._measured.doc()
            if doc is None:
                return None
            key = f"measured:{doc.id}"
        return next((s for s in self.sources() if s.key == key), None)

    def infer(self, n_samples: int, element: str | None = None, source: str = CURRENT_MEASURED) -> Task | None:
        """Invert a source spectrum (by :meth:`sources` key; default the current measured one)
        into candidates, with progress.

        The element: ``element``, else a simulated source's own, else :meth:`element`.
        """
        chosen = self.source(source)
        if chosen is None:
            self._messages.error("Import a measured spectrum first" if source == CURRENT_MEASURED
                                 else "The chosen spectrum is gone; choose another")
            return None
        element = element or chosen.element or self.element()
        if not element:
            self._messages.error("Choose the absorbing element (select atoms or pick it in the Infer panel)")
            return None
        key = (element, self._predictions.device)
        task = Task(self.backend.infer_structure, chosen.path or chosen.label, element, int(n_samples),
                    group=chosen.group, model=self._models.get(key), device=key[1], spectrum=chosen.spectrum,
                    with_progress=True)
        task.signals.progress.connect(self.progress.emit)
        self._latest.start(task, KIND, succeeded=lambda result: self._on_result(key, result),
                           failed=lambda message: self._messages.error(f"Infer structure failed: {message}"),
                           cancelled=lambda: self._messages.status("Infer structure cancelled"),
                           ended=lambda: self.runningChanged.emit(False))
        self.runningChanged.emit(True)
        self._messages.status(f"Inferring {element} structures from {chosen.label}…")
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
        """Cancel the running inversion (it stops at its next progress report: the next diffusion step)."""
        task = self._latest.running(KIND)
        if task is not None:
            task.cancel()
            self._messages.status("Cancelling…")

    def show_candidate(self, row: int) -> None:
        """Overlay candidate ``row``'s round-trip spectrum on the inverted one."""
        if 0 <= row < len(self.candidates) and self.spectrum is not None:
            c = self.candidates[row]
            e0 = float(self.spectrum.e0_ev)
            # On the absolute axis where the inverted spectrum has an edge, else edge-relative only.
            known = not math.isnan(e0)
            self._interpret.set_overlay(KIND, f"infer #{row + 1}: {c.method} CN {c.coordination_number}",
                                        np.asarray(c.energy_ev) + (e0 if known else 0.0), c.roundtrip_mu,
                                        e0_ev=e0, relative=not known)

    def open_candidate(self, row: int) -> str | None:
        """Add candidate ``row``'s cluster as a structure document (shown in 3D); its id."""
        if not 0 <= row < len(self.candidates):
            return None
        candidate = self.candidates[row]
        name = f"infer #{row + 1} {candidate.method} (CN {candidate.coordination_number})"
        return self._structures.add_structure(replace(candidate.structure(), name=name))
