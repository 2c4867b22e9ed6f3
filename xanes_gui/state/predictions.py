"""Models, devices and predictions: the engine start, the model choice, the per-site cache."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from model_core.registry import ModelEntry
from model_core.types import Prediction, SiteSelection, Structure
from xanes_gui.backend import Backend
from xanes_gui.state.messages import Messages
from xanes_gui.state.structures import Structures, StructureDoc
from xanes_gui.tasks import LatestWins, Task, TaskRunner

AUTO_MODEL = ""  # model name meaning "choose by the absorber element"


def model_entry(entry: Any) -> ModelEntry:
    """A registry entry, or anything with the same attributes, as a ModelEntry."""
    if isinstance(entry, ModelEntry):
        return entry
    return ModelEntry(name=str(entry.name), element=str(entry.element), edge=str(getattr(entry, "edge", "K")),
                      trained=bool(getattr(entry, "trained", False)), path=str(getattr(entry, "path", "")),
                      card=str(getattr(entry, "card", "") or ""))


def _start_engine(backend: Backend) -> dict[str, Any]:
    """Worker body: import the inference stack and list models and devices."""
    backend.warm_up()
    models = [model_entry(e) for e in backend.list_models()]
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


class Predictions(QObject):
    """Models and devices, the model chosen for the current selection, and predictions.

    Predictions are cached per (structure, site, model); a selection whose sites
    are all cached is shown at once. Models injected with :meth:`set_predictor`
    (tests, scripting) have ``path == ""``.

    Args:
        backend: lists and loads models, predicts.
        structures: the structures whose selection is predicted.
        messages: where status and error messages go.
        tasks: runs the workers.

    Signals:
        engineReady(): the inference stack is imported and models/devices are listed.
        engineFailed(str): the inference stack could not be loaded (the message).
        modelsChanged(): the list of models changed.
        modelChanged(str): the current model name ("" when none fits).
        modelOverrideChanged(str): the model chosen by hand (AUTO_MODEL: by element).
        devicesChanged(): the device list changed.
        deviceChanged(str): the current device string.
        predictionReady(str, object): structure id and the Prediction for its selection.
        predictionStarted(): a prediction worker started.
        predictionProgress(int, int): done, total.
        predictionFinished(): the worker ended (success, failure or cancel).
        predictionCancelled(): the user cancelled.
    """

    engineReady = Signal()
    engineFailed = Signal(str)
    modelsChanged = Signal()
    modelChanged = Signal(str)
    modelOverrideChanged = Signal(str)
    devicesChanged = Signal()
    deviceChanged = Signal(str)
    predictionReady = Signal(str, object)
    predictionStarted = Signal()
    predictionProgress = Signal(int, int)
    predictionFinished = Signal()
    predictionCancelled = Signal()

    def __init__(self, backend: Backend, structures: Structures, messages: Messages, tasks: TaskRunner,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._structures = structures
        self._messages = messages
        self._tasks = tasks
        self._latest = LatestWins(tasks)
        self._models: list[ModelEntry] = []
        self._model_override = AUTO_MODEL
        self._model_name = ""
        self._devices: list[tuple[str, str]] = []
        self._device = "auto"
        self._engine_ready = False
        self._predictors: dict[tuple[str, str], Any] = {}
        self._cache: dict[tuple[str, int, str], Prediction] = {}
        self._shown: dict[str, Prediction] = {}

    # ------------------------------------------------------------------ engine
    @property
    def engine_ready(self) -> bool:
        return self._engine_ready

    def start_engine(self) -> Task:
        """Import the science stack and list models/devices in a worker."""
        self._messages.status("Loading model engine…")
        task = Task(_start_engine, self.backend)
        task.signals.succeeded.connect(self._on_engine_started)
        task.signals.failed.connect(self._on_engine_failed)
        return self._tasks.start(task)

    def _on_engine_started(self, result: dict[str, Any]) -> None:
        listed = {x.name for x in result["models"]}
        injected = [m for m in self._models if not m.path and m.name not in listed]
        self._models = [*result["models"], *injected]
        self._devices = result["devices"] or [("cpu", "CPU")]
        if self._device == "auto" or self._device not in {d for d, _ in self._devices}:
            self._device = self._devices[0][0]
        self._engine_ready = True
        self.modelsChanged.emit()
        self.devicesChanged.emit()
        self.deviceChanged.emit(self._device)
        # Before engineReady: its listeners start further work that reports its own status.
        self._messages.status(f"Ready: {self.device_name}")
        self.engineReady.emit()

    def _on_engine_failed(self, message: str) -> None:
        self._devices = [("cpu", "CPU")]
        self._device = "cpu"
        self.devicesChanged.emit()
        self._messages.error(f"Model engine could not be loaded: {message}")
        self.engineFailed.emit(message)

    # ------------------------------------------------------------------ models
    @property
    def models(self) -> list[ModelEntry]:
        return list(self._models)

    def model(self, name: str | None = None) -> ModelEntry | None:
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
        if name != self._model_override:
            self._model_override = name
            self.modelOverrideChanged.emit(name)
        if name:
            self._set_model_name(name)
        else:
            self.update_auto_model()

    def update_auto_model(self) -> None:
        """Choose the model by the element selected in the current structure (unless chosen by hand)."""
        if self._model_override:
            self._set_model_name(self._model_override)
            return
        doc = self._structures.current
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
                self._messages.error(f"Model registry failed: {exc}")
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
        entry = ModelEntry(name=info.name, element=info.element, edge=info.edge,
                           trained=info.trained if trained is None else trained, path="", card=info.card)
        self._models = [m for m in self._models if m.name != info.name] + [entry]
        self._predictors[(info.name, self._device)] = predictor
        self._predictors[(info.name, "*")] = predictor
        self.modelsChanged.emit()
        if self._model_override != AUTO_MODEL:
            self._model_override = AUTO_MODEL
            self.modelOverrideChanged.emit(AUTO_MODEL)
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
            self._messages.status(f"Ready: {self.device_name}")

    # -------------------------------------------------------------- prediction
    @property
    def predicting(self) -> bool:
        return self._latest.running() is not None

    def shown_prediction(self, doc_id: str | None = None) -> Prediction | None:
        """The prediction last shown for a structure."""
        return self._shown.get(doc_id or self._structures.current_id)

    def cached(self, doc_id: str, site: int, model_name: str) -> Prediction | None:
        return self._cache.get((doc_id, int(site), model_name))

    def forget(self, doc_id: str) -> None:
        """Drop what is kept for a closed structure."""
        self._shown.pop(doc_id, None)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != doc_id}

    def _plan(self) -> tuple[StructureDoc, ModelEntry, np.ndarray, np.ndarray] | None:
        """Representative sites (of the model's element) and weights for the current selection."""
        doc, model = self._structures.current, self.model()
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
        prediction = Prediction.combine(parts, weights)
        self._shown[doc.id] = prediction
        self.predictionReady.emit(doc.id, prediction)
        return True

    def predict(self) -> Task | None:
        """Predict the current selection (cached sites are not predicted again).

        Returns:
            The worker task, or None when everything came from the cache or
            nothing could be predicted (an error message says why).
        """
        if self.predicting:
            self._messages.status("A prediction is already running")
            return None
        doc, model = self._structures.current, self.model()
        if doc is None:
            self._messages.error("Open a structure first")
            return None
        if model is None:
            element = doc.selected_element() or "the selected element"
            self._messages.error(f"No model for {element}; choose one by hand or select other atoms")
            return None
        if len(doc.selection) == 0:
            self._messages.error(f"Select {model.element} atoms to predict")
            return None
        try:
            plan = self._plan()
        except Exception as exc:  # noqa: BLE001
            self._messages.error(f"Cannot choose sites: {exc}")
            return None
        assert plan is not None
        doc, model, sites, weights = plan
        if len(sites) == 0:
            self._messages.error(f"No {model.element} atoms selected: model {model.name} predicts "
                                 f"{model.element} {model.edge}-edge spectra")
            return None
        ignored = len(doc.selection) - int(sum(np.isin(doc.selection.indices, doc.structure.indices_of(model.element))))
        if ignored:
            self._messages.status(f"{ignored} selected atom(s) are not {model.element} and are ignored")
        missing = [int(i) for i in sites if (doc.id, int(i), model.name) not in self._cache]
        if not missing:
            self.show_cached_prediction()
            self._messages.status("Prediction from cache")
            return None
        predictor = self._predictors.get((model.name, self._device)) or self._predictors.get((model.name, "*"))
        task = Task(_run_prediction, self.backend, predictor, model.name, self._device, doc.structure,
                    np.array(missing), with_progress=True)
        task.signals.progress.connect(self.predictionProgress)
        # Outcomes arrive as queued signals, so none can be applied before predictionStarted.
        self._latest.start(
            task,
            succeeded=lambda result, d=doc.id, m=model.name, dev=self._device: self._on_predicted(d, m, dev, result),
            failed=lambda message: self._messages.error(f"Prediction failed: {message}"),
            cancelled=self._on_prediction_cancelled, ended=self.predictionFinished.emit)
        self.predictionStarted.emit()
        self._messages.status(f"Predicting {len(missing)} site(s) with {model.name} on {self.device_name}…")
        return task

    def cancel_prediction(self) -> None:
        """Ask the running prediction to stop (it stops at its next progress report)."""
        task = self._latest.running()
        if task is not None:
            task.cancel()
            self._messages.status("Cancelling…")

    def _on_predicted(self, doc_id: str, model_name: str, device: str, result: dict[str, Any]) -> None:
        self._predictors[(model_name, device)] = result["predictor"]
        for part in result["prediction"].split():
            self._cache[(doc_id, int(part.site_indices[0]), model_name)] = part
        if self._structures.document(doc_id) is None:
            self.forget(doc_id)  # closed while it was predicted
        elif doc_id == self._structures.current_id and self.show_cached_prediction():
            self._messages.status(f"Predicted with {model_name} on {self.device_name}")

    def _on_prediction_cancelled(self) -> None:
        self._messages.status("Prediction cancelled")
        self.predictionCancelled.emit()
