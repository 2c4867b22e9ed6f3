"""The application state: one QObject that owns every open structure, the model
choice, cached predictions and view settings, and tells widgets about changes.

Widgets never talk to each other: they call methods here and subscribe to the
signals. Everything slow (reading files, loading models, predicting) runs in
:mod:`xanes_gui.tasks` workers; their results are applied here, in the main
thread, so the signals (and the widget updates they trigger) always come from
the GUI thread.

Data held here is made of frozen dataclasses; changing something (a
selection, a view setting) replaces the object and emits a signal.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from model_core.spectra.measured import ChannelChoice, MeasuredData
from model_core.spectra.normalize import NormParams
from model_core.types import Prediction, SiteSelection, SiteSymmetry, Spectrum, Structure
from xanes_gui.backend import Backend, default_backend
from xanes_gui.comparison import (FEFF_COLORS, MEASURED_COLORS, AlignSettings, FeffResult, MeasuredDoc,
                                  auto_align, check_feff, column_signature, compare_all, load_feff_result,
                                  load_measured, run_feff)
from xanes_gui.tasks import Task, TaskRunner

AUTO_MODEL = ""  # model name meaning "choose by the absorber element"


@dataclass(frozen=True)
class ModelChoice:
    """A model the user can pick (from the registry or injected).

    Attributes:
        name: registry name.
        element: absorbing element symbol.
        edge: absorption edge.
        trained: False for placeholder weights.
        path: checkpoint path ("" for an injected predictor).
        card: model card text.
    """

    name: str
    element: str
    edge: str = "K"
    trained: bool = False
    path: str = ""
    card: str = ""

    @property
    def display_name(self) -> str:
        flag = "" if self.trained else " (UNTRAINED)"
        return f"{self.name} - {self.element} {self.edge}-edge{flag}"

    @classmethod
    def from_entry(cls, entry: Any) -> "ModelChoice":
        """Convert a registry entry (or anything with the same attributes)."""
        return cls(name=str(entry.name), element=str(entry.element), edge=str(getattr(entry, "edge", "K")),
                   trained=bool(getattr(entry, "trained", False)), path=str(getattr(entry, "path", "")),
                   card=str(getattr(entry, "card", "") or ""))


@dataclass(frozen=True, eq=False)
class StructureDoc:
    """One open structure and what the GUI knows about it.

    Attributes:
        id: stable id within this session ("s1", "s2", ...).
        structure: the structure.
        symmetry: its site symmetry (trivial when the analysis failed).
        coordination: (N,) coordination numbers (NaN when unknown).
        nearest: (N,) nearest-neighbour distances in Å (NaN when unknown).
        selection: the atoms the user selected (weights all one).
    """

    id: str
    structure: Structure
    symmetry: SiteSymmetry
    coordination: np.ndarray
    nearest: np.ndarray
    selection: SiteSelection = field(default_factory=lambda: SiteSelection(np.zeros(0, dtype=np.int64)))

    @property
    def title(self) -> str:
        return self.structure.name or self.structure.formula

    def selected_element(self) -> str | None:
        """The most common element among the selected atoms (None without a selection)."""
        if len(self.selection) == 0:
            return None
        symbols = self.structure.symbols
        return Counter(symbols[i] for i in self.selection.indices).most_common(1)[0][0]


@dataclass(frozen=True)
class ViewSettings:
    """How results are displayed.

    Attributes:
        energy_reference: "edge" (E - E0) or "absolute" (needs predicted E0).
        hidden_curves: labels of curves the user switched off.
        color_mode: "element" (Jmol colours) or "attention".
        supercell: repeats along a, b, c in the 3-D view.
        show_bonds: draw bond sticks.
        show_cell: draw the unit-cell box.
        attention_site: absorber atom whose attention is shown (None: the first predicted site).
    """

    energy_reference: str = "edge"
    hidden_curves: frozenset[str] = frozenset()
    color_mode: str = "element"
    supercell: tuple[int, int, int] = (1, 1, 1)
    show_bonds: bool = True
    show_cell: bool = True
    attention_site: int | None = None


def trivial_symmetry(n_atoms: int) -> SiteSymmetry:
    """"No symmetry known": every atom its own group of multiplicity one."""
    return SiteSymmetry(group=np.arange(n_atoms), wyckoff=("",) * n_atoms, multiplicity=np.ones(n_atoms))


def combine_site_predictions(parts: Sequence[Prediction], weights: np.ndarray) -> Prediction:
    """Join single-site predictions (from the cache) into one multi-site Prediction.

    The average is the weighted mean of the per-site spectra, the same quantity
    :meth:`Predictor.predict` returns; here it is only re-assembled from cached parts.
    """
    first = parts[0]
    mu = np.stack([p.mu[0] for p in parts])
    weights = np.asarray(weights, dtype=np.float64)
    e0 = None
    if all(p.e0_ev is not None and len(p.e0_ev) for p in parts):
        e0 = np.array([float(p.e0_ev[0]) for p in parts])
    attention = tuple(p.attention[0] for p in parts) if all(p.attention for p in parts) else ()
    spread = None
    if all(p.mu_spread is not None for p in parts):
        spread = np.stack([p.mu_spread[0] for p in parts])
    return Prediction(
        energy_ev=first.energy_ev, site_indices=np.array([int(p.site_indices[0]) for p in parts]),
        weights=weights, mu=mu, average=np.average(mu, axis=0, weights=weights), e0_ev=e0,
        attention=attention, model_name=first.model_name, trained=first.trained,
        element=first.element, edge=first.edge, mu_spread=spread,
    )


def split_prediction(prediction: Prediction) -> list[Prediction]:
    """One single-site Prediction per site of ``prediction`` (what the cache stores)."""
    out = []
    for k in range(len(prediction.site_indices)):
        out.append(Prediction(
            energy_ev=prediction.energy_ev, site_indices=prediction.site_indices[k:k + 1],
            weights=np.ones(1), mu=prediction.mu[k:k + 1], average=prediction.mu[k],
            e0_ev=None if prediction.e0_ev is None else prediction.e0_ev[k:k + 1],
            attention=(prediction.attention[k],) if len(prediction.attention) > k else (),
            model_name=prediction.model_name, trained=prediction.trained,
            element=prediction.element, edge=prediction.edge,
            mu_spread=None if prediction.mu_spread is None else prediction.mu_spread[k:k + 1],
        ))
    return out


def _open_document(backend: Backend, path: str) -> dict[str, Any]:
    """Worker body: read a file and analyse it (runs off the GUI thread)."""
    structure = backend.read_structure(path)
    warnings: list[str] = list(structure.info.get("warnings", ()) or ())
    try:
        symmetry = backend.analyze_symmetry(structure)
    except Exception as exc:  # noqa: BLE001 - a structure without symmetry is still usable
        warnings.append(f"symmetry analysis failed ({exc}); every atom is treated as unique")
        symmetry = trivial_symmetry(structure.n_atoms)
    try:
        coordination, nearest = backend.coordination_info(structure)
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"coordination analysis failed ({exc})")
        coordination = np.full(structure.n_atoms, np.nan)
        nearest = np.full(structure.n_atoms, np.nan)
    return {"path": path, "structure": structure, "symmetry": symmetry,
            "coordination": np.asarray(coordination, dtype=float), "nearest": np.asarray(nearest, dtype=float),
            "warnings": warnings}


def _start_engine(backend: Backend) -> dict[str, Any]:
    """Worker body: import the inference stack and list models and devices."""
    backend.warm_up()
    models = [ModelChoice.from_entry(e) for e in backend.list_models()]
    devices = [(str(d), str(n)) for d, n in backend.available_devices()]
    return {"models": models, "devices": devices}


def _run_prediction(backend: Backend, predictor: Any, model_name: str, device: str,
                    structure: Structure, sites: np.ndarray, progress) -> dict[str, Any]:
    """Worker body: load the model when needed, then predict ``sites``."""
    if predictor is None:
        progress(0, len(sites))
        predictor = backend.load_model(model_name, device=device)
    prediction = predictor.predict(structure, SiteSelection(np.asarray(sites, dtype=np.int64)), progress=progress)
    return {"predictor": predictor, "prediction": prediction}


class AppState(QObject):
    """Everything the app knows, with signals for every change.

    Args:
        backend: the science services (model_core by default; fakes in tests).

    Signals:
        structureAdded(str): a structure was opened (its id).
        structureRemoved(str): a structure was closed.
        currentStructureChanged(str): the shown structure ("" when none).
        selectionChanged(str, object): structure id and (M,) selected atom indices.
        predictionReady(str, object): structure id and the Prediction for its selection.
        predictionStarted(): a prediction worker started.
        predictionProgress(int, int): done, total.
        predictionFinished(): the worker ended (success, failure or cancel).
        predictionCancelled(): the user cancelled.
        modelsChanged(): the list of models changed.
        modelChanged(str): the current model name ("" when none fits).
        devicesChanged(): the device list changed.
        deviceChanged(str): the current device string.
        engineReady(): the inference stack is imported and models/devices are listed.
        viewSettingsChanged(object): new ViewSettings.
        statusMessage(str): transient information for the status bar.
        errorMessage(str): a problem to show (status bar + message log); never modal.
        noticeMessage(str): something worth keeping in the message log but not an error
            (repairs made while reading a file, normalization windows clipped).
        fileOpened(str): a file was read (its path).
        fileFailed(str, str): path and message of a file that could not be read.
        spectraReady(): larch is imported (measured spectra can be read quickly).
        measuredAdded(str): a measured spectrum was added (its id).
        measuredRemoved(str): a measured spectrum was removed.
        measuredChanged(str): its parameters, normalization, visibility or display changed.
        measuredNormalized(str): a normalization finished (success or failure; see MeasuredDoc).
        currentMeasuredChanged(str): the measured spectrum the editor shows ("" when none).
        measuredNeedsGroup(str, list): an Athena project with several groups: path, names.
        measuredNeedsColumns(str, list, str): a column file without a usable channel: path,
            column names, the reader's message.
        measuredFailed(str, str): path and message of a measured file that could not be read.
        measuredOpened(str): a measured file was read (its path).
        alignChanged(object): new AlignSettings.
        comparisonsReady(object): {measured id: ComparisonResult or error text}.
        feffStarted(): a FEFF10 simulation started.
        feffProgress(int, int, str): sites finished, total, status line.
        feffFinished(): the simulation worker ended (success, failure or cancel).
        feffReady(str, object): structure id and a FeffResult (new or restored).
        feffChecked(bool, str): whether FEFF10 works, and its version or the problem.
    """

    structureAdded = Signal(str)
    structureRemoved = Signal(str)
    currentStructureChanged = Signal(str)
    selectionChanged = Signal(str, object)
    predictionReady = Signal(str, object)
    predictionStarted = Signal()
    predictionProgress = Signal(int, int)
    predictionFinished = Signal()
    predictionCancelled = Signal()
    modelsChanged = Signal()
    modelChanged = Signal(str)
    devicesChanged = Signal()
    deviceChanged = Signal(str)
    engineReady = Signal()
    viewSettingsChanged = Signal(object)
    statusMessage = Signal(str)
    errorMessage = Signal(str)
    noticeMessage = Signal(str)
    fileOpened = Signal(str)
    fileFailed = Signal(str, str)
    spectraReady = Signal()
    measuredAdded = Signal(str)
    measuredRemoved = Signal(str)
    measuredChanged = Signal(str)
    measuredNormalized = Signal(str)
    currentMeasuredChanged = Signal(str)
    measuredNeedsGroup = Signal(str, list)
    measuredNeedsColumns = Signal(str, list, str)
    measuredFailed = Signal(str, str)
    measuredOpened = Signal(str)
    alignChanged = Signal(object)
    comparisonsReady = Signal(object)
    feffStarted = Signal()
    feffProgress = Signal(int, int, str)
    feffFinished = Signal()
    feffReady = Signal(str, object)
    feffChecked = Signal(bool, str)

    def __init__(self, backend: Backend | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend or default_backend()
        self.tasks = TaskRunner(self)
        self._docs: dict[str, StructureDoc] = {}
        self._next_id = 1
        self._current = ""
        self._models: list[ModelChoice] = []
        self._model_override = AUTO_MODEL
        self._model_name = ""
        self._devices: list[tuple[str, str]] = []
        self._device = "auto"
        self._engine_ready = False
        self._predictors: dict[tuple[str, str], Any] = {}
        self._cache: dict[tuple[str, int, str], Prediction] = {}
        self._shown: dict[str, Prediction] = {}
        self._prediction_task: Task | None = None
        self._opening: set[str] = set()
        self.view = ViewSettings()
        # Measured spectra and their comparison with the prediction.
        self._measured: dict[str, MeasuredDoc] = {}
        self._next_measured = 1
        self._current_measured = ""
        self._norm_seq: dict[str, int] = {}
        self._loading_measured: set[str] = set()
        self.align = AlignSettings()
        self._comparisons: dict[str, Any] = {}
        self._compare_seq = 0
        self._compare_pending = False
        self.column_memory: dict[str, ChannelChoice] = {}
        self._spectra_ready = False
        # FEFF10 simulations: structure id -> preset -> result.
        self._feff: dict[str, dict[str, FeffResult]] = {}
        self._feff_task: Task | None = None
        self._feff_cancel: threading.Event | None = None
        self.predictionReady.connect(lambda *_: self.schedule_comparison())
        self.currentStructureChanged.connect(lambda *_: self.schedule_comparison())

    # ------------------------------------------------------------------ engine
    @property
    def engine_ready(self) -> bool:
        return self._engine_ready

    def start_engine(self) -> Task:
        """Import the science stack and list models/devices in a worker."""
        self.statusMessage.emit("Loading model engine…")
        task = Task(_start_engine, self.backend)
        task.signals.succeeded.connect(self._on_engine_started)
        task.signals.failed.connect(self._on_engine_failed)
        return self.tasks.start(task)

    def _on_engine_started(self, result: dict[str, Any]) -> None:
        injected = [m for m in self._models if not m.path]
        self._models = [*result["models"], *[m for m in injected if m.name not in {x.name for x in result["models"]}]]
        self._devices = result["devices"] or [("cpu", "CPU")]
        if self._device == "auto" or self._device not in {d for d, _ in self._devices}:
            self._device = self._devices[0][0]
        self._engine_ready = True
        self.modelsChanged.emit()
        self.devicesChanged.emit()
        self.deviceChanged.emit(self._device)
        for doc in list(self._docs.values()):
            # Files opened before the model list was known get their default sites now.
            if len(doc.selection) == 0:
                self._select_default_sites(doc.id)
        self._update_auto_model()
        self.engineReady.emit()
        self.statusMessage.emit(f"Ready: {self.device_name}")
        if not self._spectra_ready:
            self.start_spectra()

    def _on_engine_failed(self, message: str) -> None:
        self._devices = [("cpu", "CPU")]
        self._device = "cpu"
        self.devicesChanged.emit()
        self.errorMessage.emit(f"Model engine could not be loaded: {message}")
        if not self._spectra_ready:
            self.start_spectra()  # measured spectra and FEFF10 do not need the model engine

    # -------------------------------------------------------------- structures
    @property
    def documents(self) -> list[StructureDoc]:
        return list(self._docs.values())

    def document(self, doc_id: str) -> StructureDoc | None:
        return self._docs.get(doc_id)

    @property
    def current_id(self) -> str:
        return self._current

    @property
    def current(self) -> StructureDoc | None:
        return self._docs.get(self._current)

    @property
    def busy_opening(self) -> bool:
        return bool(self._opening)

    def open_files(self, paths: Iterable[str | os.PathLike]) -> list[Task]:
        """Read structure files in workers; each success adds a structure, each failure a message."""
        tasks = []
        for path in paths:
            path = str(path)
            self._opening.add(path)
            self.statusMessage.emit(f"Reading {os.path.basename(path)}…")
            task = Task(_open_document, self.backend, path)
            task.signals.succeeded.connect(self._on_file_read)
            task.signals.failed.connect(lambda message, p=path: self._on_file_failed(p, message))
            tasks.append(self.tasks.start(task))
        return tasks

    def _on_file_read(self, result: dict[str, Any]) -> None:
        path = result["path"]
        self._opening.discard(path)
        doc_id = self.add_structure(result["structure"], symmetry=result["symmetry"],
                                    coordination=result["coordination"], nearest=result["nearest"])
        for warning in result["warnings"]:
            self.errorMessage.emit(f"{os.path.basename(path)}: {warning}")
        self.statusMessage.emit(f"Opened {path} ({self._docs[doc_id].structure.formula}, "
                                f"{self._docs[doc_id].structure.n_atoms} atoms)")
        self.fileOpened.emit(path)

    def _on_file_failed(self, path: str, message: str) -> None:
        self._opening.discard(path)
        # Reader errors already name the file; others get the name added.
        if os.path.basename(path) not in message:
            message = f"{path}: {message}"
        self.errorMessage.emit(message)
        self.fileFailed.emit(path, message)

    def add_structure(self, structure: Structure, symmetry: SiteSymmetry | None = None,
                      coordination: np.ndarray | None = None, nearest: np.ndarray | None = None,
                      make_current: bool = True) -> str:
        """Add an already-read structure (main thread); returns its id."""
        n = structure.n_atoms
        doc_id = f"s{self._next_id}"
        self._next_id += 1
        doc = StructureDoc(
            id=doc_id, structure=structure, symmetry=symmetry or trivial_symmetry(n),
            coordination=np.full(n, np.nan) if coordination is None else np.asarray(coordination, dtype=float),
            nearest=np.full(n, np.nan) if nearest is None else np.asarray(nearest, dtype=float),
        )
        self._docs[doc_id] = doc
        self.structureAdded.emit(doc_id)
        if make_current or not self._current:
            self.set_current(doc_id)
        self._select_default_sites(doc_id)
        return doc_id

    def _select_default_sites(self, doc_id: str) -> None:
        # Start with the FEFF absorber, else all atoms of the first element a
        # model exists for, so a freshly opened file is one click from a prediction.
        doc = self._docs[doc_id]
        if doc.structure.absorber_index is not None:
            self.set_selection(doc_id, [doc.structure.absorber_index])
            return
        modelled = {m.element for m in self._models}
        for element in doc.structure.elements:
            if element in modelled:
                self.select_element(doc_id, element)
                return

    def close_structure(self, doc_id: str) -> None:
        """Close a structure and drop its cached predictions."""
        if doc_id not in self._docs:
            return
        del self._docs[doc_id]
        self._shown.pop(doc_id, None)
        self._feff.pop(doc_id, None)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != doc_id}
        self.structureRemoved.emit(doc_id)
        if self._current == doc_id:
            self.set_current(next(iter(self._docs), ""))

    def set_current(self, doc_id: str) -> None:
        """Show another open structure."""
        if doc_id == self._current or (doc_id and doc_id not in self._docs):
            return
        self._current = doc_id
        self.currentStructureChanged.emit(doc_id)
        self._update_auto_model()

    # --------------------------------------------------------------- selection
    def set_selection(self, doc_id: str, indices: Sequence[int] | np.ndarray) -> None:
        """Select atoms (replaces the selection; order kept, duplicates dropped)."""
        doc = self._docs.get(doc_id)
        if doc is None:
            return
        unique = list(dict.fromkeys(int(i) for i in np.asarray(indices, dtype=np.int64).ravel()))
        unique = [i for i in unique if 0 <= i < doc.structure.n_atoms]
        if unique == [int(i) for i in doc.selection.indices]:
            return
        self._docs[doc_id] = replace(doc, selection=SiteSelection(np.array(unique, dtype=np.int64)))
        self.selectionChanged.emit(doc_id, self._docs[doc_id].selection.indices)
        if doc_id == self._current:
            self._update_auto_model()
            self.show_cached_prediction()

    def selection(self, doc_id: str | None = None) -> np.ndarray:
        doc = self._docs.get(doc_id or self._current)
        return np.zeros(0, dtype=np.int64) if doc is None else doc.selection.indices

    def select_equivalent(self, doc_id: str | None = None) -> None:
        """Extend the selection to every atom symmetry-equivalent to a selected one."""
        doc = self._docs.get(doc_id or self._current)
        if doc is None or len(doc.selection) == 0:
            return
        groups = set(doc.symmetry.group[doc.selection.indices].tolist())
        self.set_selection(doc.id, np.flatnonzero(np.isin(doc.symmetry.group, list(groups))))

    def select_element(self, doc_id: str | None, element: str) -> None:
        """Select every atom of ``element``."""
        doc = self._docs.get(doc_id or self._current)
        if doc is None:
            return
        self.set_selection(doc.id, doc.structure.indices_of(element))

    # ------------------------------------------------------------------ models
    @property
    def models(self) -> list[ModelChoice]:
        return list(self._models)

    def model(self, name: str | None = None) -> ModelChoice | None:
        name = self._model_name if name is None else name
        return next((m for m in self._models if m.name == name), None)

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def model_override(self) -> str:
        return self._model_override

    def set_model_override(self, name: str) -> None:
        """Choose a model by hand (``AUTO_MODEL`` goes back to choosing by element)."""
        self._model_override = name
        if name:
            self._set_model_name(name)
        else:
            self._update_auto_model()

    def _update_auto_model(self) -> None:
        if self._model_override:
            self._set_model_name(self._model_override)
            return
        doc = self.current
        element = doc.selected_element() if doc else None
        if element is None:
            # Keep the last model while nothing is selected, so the panel doesn't flicker.
            return
        name = ""
        injected = next((m for m in self._models if not m.path and m.element == element), None)
        if injected is not None:
            name = injected.name
        elif self._engine_ready:
            try:
                entry = self.backend.model_for_element(element)
            except Exception as exc:  # noqa: BLE001
                self.errorMessage.emit(f"Model registry failed: {exc}")
                entry = None
            name = entry.name if entry is not None else ""
        self._set_model_name(name)

    def _set_model_name(self, name: str) -> None:
        if name != self._model_name:
            self._model_name = name
            self.modelChanged.emit(name)
            self.show_cached_prediction()

    def set_predictor(self, predictor: Any, trained: bool | None = None) -> None:
        """Use an already-loaded predictor (tests, scripting); it becomes the current model."""
        info = predictor.info
        choice = ModelChoice(name=info.name, element=info.element, edge=info.edge,
                             trained=info.trained if trained is None else trained, path="", card=info.card)
        self._models = [m for m in self._models if m.name != info.name] + [choice]
        self._predictors[(info.name, self._device)] = predictor
        self._predictors[(info.name, "*")] = predictor
        self.modelsChanged.emit()
        self._model_override = AUTO_MODEL
        self._set_model_name(info.name)

    # ----------------------------------------------------------------- devices
    @property
    def devices(self) -> list[tuple[str, str]]:
        return list(self._devices)

    @property
    def device(self) -> str:
        return self._device

    @property
    def device_name(self) -> str:
        return dict(self._devices).get(self._device, self._device)

    def set_device(self, device: str) -> None:
        """Run later predictions on ``device`` (loaded models are reloaded there on demand)."""
        if device != self._device:
            self._device = device
            self.deviceChanged.emit(device)
            self.statusMessage.emit(f"Ready: {self.device_name}")

    # -------------------------------------------------------------- prediction
    @property
    def predicting(self) -> bool:
        return self._prediction_task is not None

    def shown_prediction(self, doc_id: str | None = None) -> Prediction | None:
        """The prediction last shown for a structure."""
        return self._shown.get(doc_id or self._current)

    def cached(self, doc_id: str, site: int, model_name: str) -> Prediction | None:
        return self._cache.get((doc_id, int(site), model_name))

    def _plan(self) -> tuple[StructureDoc, ModelChoice, np.ndarray, np.ndarray] | None:
        """Representative sites (of the model's element) and weights for the current selection."""
        doc, model = self.current, self.model()
        if doc is None or model is None or len(doc.selection) == 0:
            return None
        symbols = doc.structure.symbols
        chosen = np.array([i for i in doc.selection.indices if symbols[i] == model.element], dtype=np.int64)
        # One representative per symmetry-equivalence group, weighted by how many
        # selected atoms it stands for (model_core's reduction; select_sites only
        # reduces whole elements, the user may have picked any subset).
        representatives, weights = doc.symmetry.representatives(chosen)
        return doc, model, representatives, weights

    def show_cached_prediction(self) -> bool:
        """Emit predictionReady from the cache when every needed site is there."""
        try:
            plan = self._plan()
        except Exception:  # noqa: BLE001 - selection analysis errors surface on Predict
            return False
        if plan is None or len(plan[2]) == 0:
            return False
        doc, model, sites, weights = plan
        parts = [self._cache.get((doc.id, int(i), model.name)) for i in sites]
        if any(p is None for p in parts):
            return False
        self._publish(doc.id, combine_site_predictions(parts, weights))
        return True

    def _publish(self, doc_id: str, prediction: Prediction) -> None:
        self._shown[doc_id] = prediction
        self.predictionReady.emit(doc_id, prediction)

    def predict(self) -> Task | None:
        """Predict the current selection (cached sites are not predicted again).

        Returns:
            The worker task, or None when everything came from the cache or
            nothing could be predicted (an error message says why).
        """
        if self._prediction_task is not None:
            self.statusMessage.emit("A prediction is already running")
            return None
        doc, model = self.current, self.model()
        if doc is None:
            self.errorMessage.emit("Open a structure first")
            return None
        if model is None:
            element = doc.selected_element() or "the selected element"
            self.errorMessage.emit(f"No model for {element}; choose one by hand or select other atoms")
            return None
        if len(doc.selection) == 0:
            self.errorMessage.emit(f"Select {model.element} atoms to predict")
            return None
        try:
            plan = self._plan()
        except Exception as exc:  # noqa: BLE001
            self.errorMessage.emit(f"Cannot choose sites: {exc}")
            return None
        assert plan is not None
        doc, model, sites, weights = plan
        if len(sites) == 0:
            self.errorMessage.emit(f"No {model.element} atoms selected: model {model.name} predicts "
                                   f"{model.element} {model.edge}-edge spectra")
            return None
        ignored = len(doc.selection) - int(sum(np.isin(doc.selection.indices, doc.structure.indices_of(model.element))))
        if ignored:
            self.statusMessage.emit(f"{ignored} selected atom(s) are not {model.element} and are ignored")
        missing = [int(i) for i in sites if (doc.id, int(i), model.name) not in self._cache]
        if not missing:
            self.show_cached_prediction()
            self.statusMessage.emit("Prediction from cache")
            return None
        predictor = self._predictors.get((model.name, self._device)) or self._predictors.get((model.name, "*"))
        task = Task(_run_prediction, self.backend, predictor, model.name, self._device, doc.structure,
                    np.array(missing), with_progress=True)
        task.signals.progress.connect(self.predictionProgress)
        # The task counts as ended as soon as its outcome is applied here, in the
        # GUI thread: waiting for its later "finished" signal would leave a window
        # in which a new predict() is refused although the result is already shown.
        task.signals.succeeded.connect(
            lambda result, d=doc.id, m=model.name, dev=self._device, t=task: (
                self._on_predicted(d, m, dev, result), self._end_prediction(t)))
        task.signals.failed.connect(lambda message, t=task: (self._on_prediction_failed(message),
                                                             self._end_prediction(t)))
        task.signals.cancelled.connect(lambda t=task: (self._on_prediction_cancelled(), self._end_prediction(t)))
        self._prediction_task = task
        self.predictionStarted.emit()
        self.statusMessage.emit(f"Predicting {len(missing)} site(s) with {model.name} on {self.device_name}…")
        return self.tasks.start(task)

    def cancel_prediction(self) -> None:
        """Ask the running prediction to stop (it stops at its next progress report)."""
        if self._prediction_task is not None:
            self._prediction_task.cancel()
            self.statusMessage.emit("Cancelling…")

    def _on_predicted(self, doc_id: str, model_name: str, device: str, result: dict[str, Any]) -> None:
        predictor = result["predictor"]
        self._predictors[(model_name, device)] = predictor
        for part in split_prediction(result["prediction"]):
            self._cache[(doc_id, int(part.site_indices[0]), model_name)] = part
        if doc_id in self._docs:
            if doc_id == self._current and self.show_cached_prediction():
                self.statusMessage.emit(f"Predicted with {model_name} on {self.device_name}")

    def _on_prediction_failed(self, message: str) -> None:
        self.errorMessage.emit(f"Prediction failed: {message}")

    def _on_prediction_cancelled(self) -> None:
        self.statusMessage.emit("Prediction cancelled")
        self.predictionCancelled.emit()

    def _end_prediction(self, task: Task) -> None:
        if self._prediction_task is task:
            self._prediction_task = None
            self.predictionFinished.emit()

    # --------------------------------------------------------- measured spectra
    @property
    def spectra_ready(self) -> bool:
        return self._spectra_ready

    def start_spectra(self) -> Task:
        """Import larch in a worker (seconds) so the first measured file opens quickly."""
        self.statusMessage.emit("Loading spectrum tools (larch)…")
        task = Task(self.backend.warm_up_spectra)
        task.signals.succeeded.connect(self._on_spectra_ready)
        task.signals.failed.connect(
            lambda message: self.errorMessage.emit(f"Spectrum tools (larch) could not be loaded: {message}; "
                                                   "measured spectra cannot be read"))
        return self.tasks.start(task)

    def _on_spectra_ready(self, _result: Any = None) -> None:
        self._spectra_ready = True
        self.spectraReady.emit()
        self.statusMessage.emit("Spectrum tools ready")

    @property
    def measured_docs(self) -> list[MeasuredDoc]:
        return list(self._measured.values())

    def measured(self, measured_id: str | None = None) -> MeasuredDoc | None:
        return self._measured.get(self._current_measured if measured_id is None else measured_id)

    @property
    def current_measured_id(self) -> str:
        return self._current_measured

    @property
    def busy_measured(self) -> bool:
        return bool(self._loading_measured)

    def visible_measured(self) -> list[MeasuredDoc]:
        """Measured spectra drawn in the plots (visible and normalized)."""
        return [m for m in self._measured.values() if m.visible and m.norm is not None]

    def set_current_measured(self, measured_id: str) -> None:
        if measured_id != self._current_measured and (not measured_id or measured_id in self._measured):
            self._current_measured = measured_id
            self.currentMeasuredChanged.emit(measured_id)

    def remember_columns(self, names: Sequence[str], choice: ChannelChoice) -> None:
        """Remember a column choice for files with these column names."""
        self.column_memory[column_signature(names)] = choice

    def import_measured(self, paths: Iterable[str | os.PathLike], *, group: str | None = None,
                        columns: ChannelChoice | None = None) -> list[Task]:
        """Read measured spectra in workers.

        Each success adds a spectrum; an Athena project with several groups emits
        measuredNeedsGroup, a column file without a usable channel
        measuredNeedsColumns; failures are messages naming the file.

        Args:
            paths: files.
            group: Athena group to read (for a project).
            columns: explicit column choice (from the chooser).
        """
        tasks = []
        memory = dict(self.column_memory)
        for path in paths:
            path = str(path)
            self._loading_measured.add(path)
            self.statusMessage.emit(f"Reading spectrum {os.path.basename(path)}…")
            task = Task(load_measured, self.backend, path, group, columns, memory)
            task.signals.succeeded.connect(self._on_measured_read)
            task.signals.failed.connect(lambda message, p=path: self._on_measured_failed(p, message))
            tasks.append(self.tasks.start(task))
        return tasks

    def import_athena_groups(self, path: str, groups: Sequence[str]) -> list[Task]:
        """Read several groups of one Athena project."""
        return [task for name in groups for task in self.import_measured([path], group=name)]

    def _on_measured_read(self, result: dict[str, Any]) -> None:
        path = result["path"]
        self._loading_measured.discard(path)
        if "needs_group" in result:
            self.statusMessage.emit(f"{os.path.basename(path)}: choose the Athena group(s) to import")
            self.measuredNeedsGroup.emit(path, result["needs_group"])
            return
        if "needs_columns" in result:
            self.statusMessage.emit(f"{os.path.basename(path)}: choose the energy and absorption columns")
            self.measuredNeedsColumns.emit(path, result["needs_columns"], result.get("message", ""))
            return
        data: MeasuredData = result["data"]
        name = os.path.basename(path)
        for warning in data.warnings:
            self.noticeMessage.emit(f"{name}: {warning}")
        if result.get("remembered"):
            self.noticeMessage.emit(f"{name}: used the remembered column choice ({data.channel})")
        self.add_measured(data, columns=result.get("columns"))
        self.measuredOpened.emit(path)

    def _on_measured_failed(self, path: str, message: str) -> None:
        self._loading_measured.discard(path)
        if os.path.basename(path) not in message:
            message = f"{path}: {message}"
        self.errorMessage.emit(message)
        self.measuredFailed.emit(path, message)

    def add_measured(self, data: MeasuredData, *, columns: ChannelChoice | None = None,
                     params: NormParams | None = None, use_flat: bool = True, visible: bool = True,
                     color: tuple[int, int, int] | None = None) -> str:
        """Add a read spectrum (main thread) and normalize it in a worker; returns its id."""
        measured_id = f"m{self._next_measured}"
        self._next_measured += 1
        taken = {m.label for m in self._measured.values()}
        label = data.label or os.path.basename(data.source) or measured_id
        if data.group and data.group != label:
            label = f"{label} [{data.group}]"
        base, n = label, 2
        while label in taken:
            label, n = f"{base} ({n})", n + 1
        if color is None:
            used = {m.color for m in self._measured.values()}
            color = next((c for c in MEASURED_COLORS if c not in used),
                         MEASURED_COLORS[len(self._measured) % len(MEASURED_COLORS)])
        self._measured[measured_id] = MeasuredDoc(id=measured_id, data=data, color=tuple(color), label=label,
                                                  params=params or NormParams(), use_flat=use_flat,
                                                  visible=visible, columns=columns)
        self.measuredAdded.emit(measured_id)
        self.set_current_measured(measured_id)
        self._normalize(measured_id)
        return measured_id

    def remove_measured(self, measured_id: str) -> None:
        if measured_id not in self._measured:
            return
        del self._measured[measured_id]
        self._comparisons.pop(measured_id, None)
        self.measuredRemoved.emit(measured_id)
        if self._current_measured == measured_id:
            self.set_current_measured(next(iter(self._measured), ""))
        self.schedule_comparison()

    def set_norm_params(self, measured_id: str, params: NormParams) -> Task | None:
        """Change the normalization parameters of a spectrum and renormalize it in a worker."""
        doc = self._measured.get(measured_id)
        if doc is None:
            return None
        self._measured[measured_id] = replace(doc, params=params)
        self.measuredChanged.emit(measured_id)
        return self._normalize(measured_id)

    def _update_measured(self, measured_id: str, **changes: Any) -> None:
        doc = self._measured.get(measured_id)
        if doc is None:
            return
        new = replace(doc, **changes)
        self._measured[measured_id] = new
        self.measuredChanged.emit(measured_id)
        self.schedule_comparison()

    def set_measured_visible(self, measured_id: str, visible: bool) -> None:
        doc = self._measured.get(measured_id)
        if doc is not None and doc.visible != bool(visible):
            self._update_measured(measured_id, visible=bool(visible))

    def set_measured_use_flat(self, measured_id: str, use_flat: bool) -> None:
        doc = self._measured.get(measured_id)
        if doc is not None and doc.use_flat != bool(use_flat):
            self._update_measured(measured_id, use_flat=bool(use_flat))

    def set_measured_color(self, measured_id: str, color: tuple[int, int, int]) -> None:
        doc = self._measured.get(measured_id)
        if doc is not None and doc.color != tuple(color):
            self._update_measured(measured_id, color=tuple(int(c) for c in color))

    def _normalize(self, measured_id: str) -> Task:
        doc = self._measured[measured_id]
        seq = self._norm_seq.get(measured_id, 0) + 1
        self._norm_seq[measured_id] = seq
        task = Task(self.backend.normalize, doc.data.energy_ev, doc.data.mu, doc.params)
        task.signals.succeeded.connect(lambda result, i=measured_id, s=seq: self._on_normalized(i, s, result, ""))
        task.signals.failed.connect(lambda message, i=measured_id, s=seq: self._on_normalized(i, s, None, message))
        return self.tasks.start(task)

    def _on_normalized(self, measured_id: str, seq: int, result: Any, message: str) -> None:
        doc = self._measured.get(measured_id)
        if doc is None or self._norm_seq.get(measured_id) != seq:
            return  # removed, or parameters changed again meanwhile
        name = os.path.basename(doc.path)
        if result is None:
            self._measured[measured_id] = replace(doc, norm=None, norm_error=message)
            self.errorMessage.emit(f"{name}: cannot normalize: {message}")
        else:
            self._measured[measured_id] = replace(doc, norm=result, norm_error="")
            for warning in result.warnings:
                self.noticeMessage.emit(f"{name}: {warning}")
        self.measuredNormalized.emit(measured_id)
        self.measuredChanged.emit(measured_id)
        self.schedule_comparison()

    # -------------------------------------------------------------- comparison
    def set_align(self, **changes: Any) -> None:
        """Change alignment settings (shift_ev, broaden_fwhm_ev, broaden_kind, window, max_shift_ev)."""
        new = replace(self.align, **changes)
        if new != self.align:
            self.align = new
            self.alignChanged.emit(new)
            self.schedule_comparison()

    def comparison_target(self) -> tuple[str, Spectrum] | None:
        """What measured spectra are compared with: ("ml", average prediction) or ("feff", FEFF average/site).

        The ML prediction wins; a structure simulated with FEFF10 but without an ML
        prediction is compared through its FEFF spectrum (absolute energies).
        """
        prediction = self.shown_prediction()
        if prediction is not None:
            return "ml", prediction.average_spectrum()
        results = self._feff.get(self._current, {})
        for result in results.values():
            spectrum = result.average or (result.spectra[0].spectrum if result.spectra else None)
            if spectrum is not None:
                return "feff", spectrum
        return None

    @property
    def comparisons(self) -> dict[str, Any]:
        """measured id -> ComparisonResult or error text, for the current shift and window."""
        return dict(self._comparisons)

    def schedule_comparison(self) -> None:
        """Recompute the comparisons once the current burst of changes is over."""
        if not self._compare_pending:
            self._compare_pending = True
            QTimer.singleShot(0, self._run_comparison)

    def _run_comparison(self) -> None:
        self._compare_pending = False
        self._compare_seq += 1
        seq = self._compare_seq
        target = self.comparison_target()
        jobs = [(m.id, m.data, m.norm, m.use_flat) for m in self.visible_measured()]
        if target is None or not jobs:
            self._comparisons = {}
            self.comparisonsReady.emit({})
            return
        task = Task(compare_all, self.backend, jobs, target[1], self.align)
        task.signals.succeeded.connect(lambda result, s=seq: self._on_compared(s, result))
        task.signals.failed.connect(lambda message: self.errorMessage.emit(f"Comparison failed: {message}"))
        self.tasks.start(task)

    def _on_compared(self, seq: int, result: dict[str, Any]) -> None:
        if seq != self._compare_seq:
            return  # a newer comparison is on its way
        self._comparisons = {k: v for k, v in result.items() if k in self._measured}
        self.comparisonsReady.emit(dict(self._comparisons))

    def auto_align(self, measured_id: str | None = None) -> Task | None:
        """Find the shift that aligns the prediction with a measured spectrum (worker); sets shift_ev."""
        doc = self.measured(measured_id)
        if doc is None:
            self.errorMessage.emit("Import a measured spectrum to align with")
            return None
        if doc.norm is None:
            self.errorMessage.emit(f"{os.path.basename(doc.path)} is not normalized: {doc.norm_error or 'wait'}")
            return None
        target = self.comparison_target()
        if target is None:
            self.errorMessage.emit("Predict (or simulate) a spectrum to align with the measured one")
            return None
        task = Task(auto_align, self.backend, doc.data, doc.norm, doc.use_flat, target[1], self.align)
        task.signals.succeeded.connect(self._on_aligned)
        task.signals.failed.connect(lambda message: self.errorMessage.emit(f"Auto-align failed: {message}"))
        self.statusMessage.emit(f"Aligning with {doc.label}…")
        return self.tasks.start(task)

    def _on_aligned(self, shift: float) -> None:
        self.set_align(shift_ev=float(shift))
        self.statusMessage.emit(f"Auto-align: shift {shift:+.2f} eV")

    # -------------------------------------------------------------------- FEFF
    @property
    def simulating(self) -> bool:
        return self._feff_task is not None

    def feff_results(self, doc_id: str | None = None) -> dict[str, FeffResult]:
        """FEFF10 results of a structure by preset name."""
        return dict(self._feff.get(doc_id or self._current, {}))

    def feff_color(self, preset: str, index: int) -> tuple[int, int, int]:
        return FEFF_COLORS[index % len(FEFF_COLORS)]

    def check_feff(self) -> Task:
        """Check in a worker that FEFF10 can run; emits feffChecked."""
        task = Task(check_feff, self.backend)
        task.signals.succeeded.connect(lambda version: self.feffChecked.emit(True, str(version)))
        task.signals.failed.connect(lambda message: self.feffChecked.emit(False, message))
        return self.tasks.start(task)

    def feff_sites(self, doc_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Symmetry-reduced selected sites (representatives, multiplicities) FEFF would compute."""
        doc = self._docs.get(doc_id or self._current)
        if doc is None or len(doc.selection) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return doc.symmetry.representatives(doc.selection.indices)

    def simulate_feff(self, preset: str, out_dir: str, *, edge: str = "K", workers: int = 1) -> Task | None:
        """Simulate the selected sites of the current structure with FEFF10 in a worker.

        The runner starts FEFF in subprocesses; cancel_feff() sets its cancel event,
        which kills them. Results arrive as feffReady.
        """
        if self._feff_task is not None:
            self.statusMessage.emit("A FEFF10 simulation is already running")
            return None
        doc = self.current
        if doc is None:
            self.errorMessage.emit("Open a structure first")
            return None
        if len(doc.selection) == 0:
            self.errorMessage.emit("Select the absorbing atoms to simulate")
            return None
        cancel = threading.Event()
        signals = self  # progress is re-emitted by this object (queued to the GUI thread)
        task = Task(run_feff, self.backend, doc.structure, doc.selection, doc.symmetry, str(out_dir), preset,
                    edge, max(1, int(workers)), cancel,
                    lambda done, total, status: signals.feffProgress.emit(int(done), int(total), str(status)))
        task.signals.succeeded.connect(lambda result, d=doc.id: self._on_feff_done(d, result))
        task.signals.failed.connect(lambda message: self.errorMessage.emit(f"FEFF10 simulation failed: {message}"))
        task.signals.finished.connect(self._on_feff_finished)
        self._feff_task, self._feff_cancel = task, cancel
        self.feffStarted.emit()
        n = len(self.feff_sites(doc.id)[0])
        self.statusMessage.emit(f"Simulating {n} site(s) of {doc.title} with FEFF10 ({preset})…")
        return self.tasks.start(task)

    def cancel_feff(self) -> None:
        """Stop the running simulation (the runner kills the FEFF processes)."""
        if self._feff_cancel is not None:
            self._feff_cancel.set()
        if self._feff_task is not None:
            self.statusMessage.emit("Cancelling FEFF10…")

    def _on_feff_done(self, doc_id: str, result: FeffResult) -> None:
        failed = [s for s in result.sites if s.spectrum is None]
        if result.cancelled:
            self.statusMessage.emit(f"FEFF10 cancelled; {len(result.spectra)} site(s) finished")
        for site in failed:
            if not result.cancelled:
                self.errorMessage.emit(f"FEFF10 site {site.site} ({site.run_dir}): {site.error}")
        self.add_feff_result(doc_id, result)

    def add_feff_result(self, doc_id: str, result: FeffResult) -> None:
        """Keep a FEFF10 result for a structure (replaces one of the same preset)."""
        if doc_id not in self._docs:
            return
        if result.spectra:
            self._feff.setdefault(doc_id, {})[result.preset] = result
            self.statusMessage.emit(f"FEFF10 ({result.preset}): {len(result.spectra)} site spectrum(s)")
        self.feffReady.emit(doc_id, result)
        self.schedule_comparison()

    def _on_feff_finished(self) -> None:
        self._feff_task, self._feff_cancel = None, None
        self.feffFinished.emit()

    def load_feff(self, doc_id: str, preset: str, edge: str, structure_dir: str,
                  runs: Sequence[tuple[int, Sequence[int], str]], on_finished: Any = None) -> Task:
        """Read FEFF10 results from run folders in a worker (session restore).

        Args:
            on_finished: called (in the GUI thread) when the worker ended; connected
                before the worker starts so a fast worker cannot be missed.
        """
        task = Task(load_feff_result, self.backend, preset, edge, structure_dir, runs)
        task.signals.succeeded.connect(lambda result, d=doc_id: self.add_feff_result(d, result))
        task.signals.failed.connect(lambda message: self.errorMessage.emit(f"FEFF10 results: {message}"))
        if on_finished is not None:
            task.signals.finished.connect(on_finished)
        return self.tasks.start(task)

    # ------------------------------------------------------------------- view
    def set_view(self, **changes: Any) -> None:
        """Change view settings (energy_reference, hidden_curves, color_mode, ...)."""
        new = replace(self.view, **changes)
        if new != self.view:
            self.view = new
            self.viewSettingsChanged.emit(new)

    def set_curve_visible(self, label: str, visible: bool) -> None:
        hidden = set(self.view.hidden_curves)
        (hidden.discard if visible else hidden.add)(label)
        self.set_view(hidden_curves=frozenset(hidden))

    def shutdown(self) -> None:
        """Cancel running work and wait for workers (called when the window closes)."""
        if self._feff_cancel is not None:
            self._feff_cancel.set()  # kills running FEFF processes
        self.tasks.wait_all()
