"""The application state: the parts that hold what the app knows, and the wiring between them."""

from __future__ import annotations

import os
from typing import Iterable

from PySide6.QtCore import QObject, QTimer, Signal

from xanes_gui.backend import Backend, default_backend
from xanes_gui.state.attributions import Attributions
from xanes_gui.state.interpret import Interpret
from xanes_gui.state.inverse import Inverse
from xanes_gui.state.measured import MeasuredSpectra, Target
from xanes_gui.state.messages import Messages
from xanes_gui.state.predictions import Predictions
from xanes_gui.state.simulations import Simulations
from xanes_gui.state.structures import Structures
from xanes_gui.state.view import View
from xanes_gui.tasks import Task, TaskRunner


class AppState(QObject):
    """Everything the app knows, in parts that each emit signals for their changes.

    Widgets subscribe to the part they show and call its methods; this object
    only composes the parts and connects them where one part's change concerns
    another (a new selection shows its cached prediction, the model follows the
    selected element, a new prediction or FEFF10 result is compared with the
    measured spectra, a closed structure's results are dropped).

    Args:
        backend: the science services (model_core by default; fakes in tests).

    Attributes:
        messages: status, error and notice messages of every part (:class:`Messages`).
        structures: open structures and selections (:class:`Structures`).
        predictions: models, devices and predictions (:class:`Predictions`).
        measured: measured spectra, alignment, comparisons (:class:`MeasuredSpectra`).
        simulations: FEFF10 runs and results (:class:`Simulations`).
        interpret: calibrations, fit, Identify, LCF and Refine (:class:`Interpret`).
        inverse: candidate structures inferred from a measured or simulated spectrum (:class:`Inverse`).
        view: view settings (:class:`View`).
        attributions: attribution results per structure, model and site (:class:`Attributions`).
        tasks: the runner of every background task.

    Signals:
        sessionChanged(): something a saved session records changed (structures opened
            or closed, current structure, selection, model choice, device, view
            settings, measured spectra and their settings, alignment, FEFF10 results);
            emitted once per burst of changes, from the event loop.
    """

    sessionChanged = Signal()

    def __init__(self, backend: Backend | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        backend = backend or default_backend()
        self.tasks = TaskRunner(self)
        self.messages = Messages(self)
        self.structures = Structures(backend, self.messages, self.tasks, self)
        self.predictions = Predictions(backend, self.structures, self.messages, self.tasks, self)
        self.measured = MeasuredSpectra(backend, self.messages, self.tasks, self._comparison_target, self)
        self.simulations = Simulations(backend, self.structures, self.messages, self.tasks, self)
        self.view = View(self)
        self.attributions = Attributions(self)
        self.interpret = Interpret(backend, self.messages, self.tasks, self.structures, self.predictions,
                                   self.measured, self)
        self.inverse = Inverse(backend, self.messages, self.tasks, self.structures, self.predictions, self.measured,
                               self.interpret, self.simulations, self)
        self._session_pending = False
        # Connected before any widget exists, so these run before widgets hear of a change.
        structures, predictions, measured = self.structures, self.predictions, self.measured
        structures.selectionChanged.connect(self._on_selection)
        structures.currentStructureChanged.connect(lambda *_: predictions.update_auto_model())
        structures.currentStructureChanged.connect(lambda *_: measured.schedule_comparison())
        structures.structureRemoved.connect(self._on_structure_removed)
        predictions.modelsChanged.connect(self._on_models)
        predictions.engineReady.connect(self._on_engine_ready)
        predictions.engineFailed.connect(lambda *_: self._start_spectra())
        predictions.predictionReady.connect(lambda *_: measured.schedule_comparison())
        self.simulations.feffReady.connect(lambda *_: measured.schedule_comparison())
        for signal in (structures.structureAdded, structures.structureRemoved, structures.currentStructureChanged,
                       structures.selectionChanged, predictions.modelOverrideChanged, predictions.deviceChanged,
                       self.view.viewSettingsChanged, measured.measuredAdded, measured.measuredRemoved,
                       measured.measuredChanged, measured.alignChanged, self.simulations.feffReady,
                       self.interpret.calibrationChanged):
            signal.connect(self._schedule_session_changed)

    @property
    def backend(self) -> Backend:
        """The science services; setting it gives every part the new one."""
        return self.structures.backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        for part in (self.structures, self.predictions, self.measured, self.simulations, self.interpret,
                     self.inverse):
            part.backend = backend

    def start_engine(self) -> Task:
        """Import the science stack and list models/devices in a worker; then load larch."""
        return self.predictions.start_engine()

    def open_files(self, paths: Iterable[str | os.PathLike]) -> list[Task]:
        """Read structure files in workers (see :meth:`Structures.open_files`)."""
        return self.structures.open_files(paths)

    def shutdown(self) -> None:
        """Cancel running work and wait for workers (called when the window closes)."""
        self.simulations.shutdown()
        self.tasks.wait_all()

    # ------------------------------------------------------------------ wiring
    def _on_selection(self, doc_id: str, _indices) -> None:
        if doc_id == self.structures.current_id:
            self.predictions.update_auto_model()
            self.predictions.show_cached_prediction()

    def _on_structure_removed(self, doc_id: str) -> None:
        self.predictions.forget(doc_id)
        self.simulations.forget(doc_id)
        self.attributions.forget(doc_id)

    def _on_models(self) -> None:
        self.structures.modelled_elements = frozenset(m.element for m in self.predictions.models)

    def _on_engine_ready(self) -> None:
        for doc in self.structures.documents:
            # Files opened before the model list was known get their default sites now.
            if len(doc.selection) == 0:
                self.structures.select_default_sites(doc.id)
        self.predictions.update_auto_model()
        self._start_spectra()

    def _start_spectra(self) -> None:
        # Measured spectra and FEFF10 do not need the model engine: larch is
        # loaded after it whether it started or not.
        if not self.measured.spectra_ready:
            self.measured.start_spectra()

    def _comparison_target(self) -> Target:
        """The ML prediction of the current structure, else its FEFF10 average (or first site)."""
        prediction = self.predictions.shown_prediction()
        if prediction is not None:
            return "ml", prediction.average_spectrum()
        for result in self.simulations.results().values():
            spectrum = result.average or (result.spectra[0].spectrum if result.spectra else None)
            if spectrum is not None:
                return "feff", spectrum
        return None

    def _schedule_session_changed(self, *_args) -> None:
        if not self._session_pending:
            self._session_pending = True
            QTimer.singleShot(0, self._emit_session_changed)

    def _emit_session_changed(self) -> None:
        self._session_pending = False
        self.sessionChanged.emit()
