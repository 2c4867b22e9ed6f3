"""Interpreting the current measured spectrum: calibration, one fit, Identify, LCF and Refine.

Every computation is a :class:`~xanes_gui.backend.Backend` function (model_core.interpret)
run in a worker; this part only holds the results and the overlay curves they put on
the plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from model_core.interpret.calibration import FREE_ALIGNMENT, Calibration
from xanes_gui.backend import Backend
from xanes_gui.state.measured import MeasuredSpectra
from xanes_gui.state.messages import Messages
from xanes_gui.state.predictions import Predictions
from xanes_gui.state.structures import Structures
from xanes_gui.tasks import LatestWins, Task, TaskRunner

#: Colours of the overlay curves, by kind.
OVERLAY_COLORS = {"fit": (230, 120, 0), "identify": (0, 150, 200), "lcf": (150, 0, 200), "refine": (0, 160, 60),
                  "infer": (200, 40, 120)}


@dataclass(frozen=True, eq=False)
class Overlay:
    """A fitted or previewed curve drawn over the spectra.

    Attributes:
        energy_ev: absolute eV, or edge-relative eV where ``relative``.
        e0_ev: the edge that turns one axis into the other (NaN: unknown, so the curve is
            drawn on its own axis only; fits to a measured spectrum need none).
    """

    label: str
    energy_ev: np.ndarray
    mu: np.ndarray
    color: tuple[int, int, int]
    e0_ev: float = math.nan
    relative: bool = False

    def on_axis(self, reference: str) -> np.ndarray | None:
        """The energies on the plots' axis ("absolute" or "edge"), or None where that needs an unknown E0."""
        if (reference == "edge") == self.relative:
            return self.energy_ev
        if not math.isfinite(self.e0_ev):
            return None
        return self.energy_ev + self.e0_ev if self.relative else self.energy_ev - self.e0_ev


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def calibration_to_dict(calibration: Calibration) -> dict[str, Any]:
    """:meth:`Calibration.to_dict` with NaN as null (strict JSON)."""
    return _json_ready(calibration.to_dict())


def calibration_from_dict(data: Mapping[str, Any]) -> Calibration:
    """Inverse of :func:`calibration_to_dict` (a saved null comes back as NaN)."""
    stderr = data.get("stderr_ev")
    return Calibration(element=str(data["element"]), shift_ev=float(data.get("shift_ev", 0.0)),
                       source=str(data.get("source", "none")), reference=str(data.get("reference") or ""),
                       stderr_ev=math.nan if stderr is None else float(stderr),
                       details=dict(data.get("details") or {}))


def _with_predictor(backend: Backend, predictor: Any, model: str, device: str, fn: Callable[..., Any],
                    *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Worker body: load the model when needed, then ``fn(predictor, *args, **kwargs)``."""
    if predictor is None:
        predictor = backend.load_model(model, device=device)
    return {"predictor": predictor, "result": fn(predictor, *args, **kwargs)}


def _calibrated(predictor: Any, backend: Backend, calibration: Calibration | None, element: str,
                e0: float | None) -> Calibration:
    # As the CLIs do: without a measured reference, the tabulated edge energy.
    return calibration if calibration is not None else backend.calibrate_tabulated(predictor, element, e0)


def _identify(predictor: Any, backend: Backend, paths: list[str], library: str | None, element: str,
              norm: Any, mu: np.ndarray, calibration: Calibration | None, window: Any, progress) -> dict[str, Any]:
    """Worker body: predict the candidates and rank them; (ranking, problems, calibration used)."""
    candidates, skipped = backend.predict_candidates(predictor, paths, element, progress, library=library)
    if not candidates:
        raise ValueError("no candidate could be predicted: " + "; ".join(skipped or ["no structure files"]))
    calibration = _calibrated(predictor, backend, calibration, element, norm.e0)
    ranking = backend.rank_candidates(norm.energy_ev, mu, candidates, calibration, element=element, window=window)
    return {"ranking": ranking, "skipped": skipped, "calibration": calibration}


def _refine(predictor: Any, backend: Backend, structure: Any, sites: Any, weights: Any, norm: Any, mu: np.ndarray,
            calibration: Calibration | None, element: str, params: tuple[str, ...], window: Any) -> dict[str, Any]:
    calibration = _calibrated(predictor, backend, calibration, element, norm.e0)
    result = backend.refine_structure(predictor, structure, sites, weights, norm.energy_ev, mu, calibration,
                                      element=element, params=params, window=window)
    return {"result": result, "calibration": calibration}


def _preview(predictor: Any, backend: Backend, structure: Any, sites: Any, weights: Any, scales: Sequence[float],
             strain: float, gaussian: float, offset: float, scale: float) -> tuple[Overlay, Any]:
    """Worker body: the distorted prediction, broadened, scaled and placed; and its shells."""
    spectrum = backend.predict_distorted(predictor, structure, sites, weights, scales, strain)
    mu = scale * backend.broaden_preview(spectrum.energy_ev, spectrum.mu, gaussian)
    return Overlay("refine: live prediction", np.asarray(spectrum.energy_ev) + offset, np.asarray(mu),
                   OVERLAY_COLORS["refine"]), spectrum.metadata.get("shells", ())


class Interpret(QObject):
    """Calibrations per element, the fit, the ranking, linear combinations and refinement.

    Args:
        backend, messages, tasks: as for the other parts.
        structures, predictions, measured: the parts whose current structure,
            prediction (and model) and measured spectrum are interpreted.

    Attributes:
        candidate_paths: candidate structure files and folders; ``library``: a library folder ("" for none).
        fit, ranking, skipped, lcf, refined: the last FitResult, ranking (RankedCandidate rows),
            candidates left out (one line each), LcfResult rows and RefineResult.

    Work kinds (for :meth:`running`, :meth:`cancel` and ``runningChanged``): "calibrate", "fit",
    "identify", "lcf", "refine", "preview"; each runs in a worker, a newer request of a kind
    superseding the older one (previews wait for the running one instead).

    Signals:
        calibrationChanged(str): the element whose calibration was set or cleared.
        candidatesChanged(): candidate files or library changed.
        fitReady(object): a FitResult of the current measured spectrum and prediction.
        rankingReady(object): the ranking (list of RankedCandidate, best first).
        lcfReady(object): linear combinations (list of LcfResult, best first).
        previewReady(object): the refine live prediction (:class:`Overlay`) and its shells.
        refineReady(object): a RefineResult.
        overlaysChanged(): the overlay curves changed.
        runningChanged(str, bool): a kind of work started or ended.
        progress(str, int, int): kind, done, total.
    """

    calibrationChanged = Signal(str)
    candidatesChanged = Signal()
    fitReady = Signal(object)
    rankingReady = Signal(object)
    lcfReady = Signal(object)
    previewReady = Signal(object)
    refineReady = Signal(object)
    overlaysChanged = Signal()
    runningChanged = Signal(str, bool)
    progress = Signal(str, int, int)

    def __init__(self, backend: Backend, messages: Messages, tasks: TaskRunner, structures: Structures,
                 predictions: Predictions, measured: MeasuredSpectra, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._messages = messages
        self._latest = LatestWins(tasks)
        self._structures, self._predictions, self._measured = structures, predictions, measured
        self._calibrations: dict[str, Calibration] = {}
        self._predictors: dict[tuple[str, str], Any] = {}
        self.candidate_paths: list[str] = []
        self.library: str = ""
        self.fit: Any = None
        self._fit_label = ""
        self.ranking: list[Any] = []
        self.skipped: list[str] = []
        self.lcf: list[Any] = []
        self.refined: Any = None
        self._overlays: dict[str, Overlay] = {}
        self._pending_preview: tuple | None = None
        self.runningChanged.connect(self._on_running_changed)
        measured.measuredRemoved.connect(lambda *_: self.clear_overlays())
        structures.currentStructureChanged.connect(lambda *_: self._drop_overlays("fit", "refine"))

    # ------------------------------------------------------------ calibration
    @property
    def calibrations(self) -> dict[str, Calibration]:
        return dict(self._calibrations)

    def calibration(self, element: str | None = None) -> Calibration | None:
        """The calibration of ``element`` (the interpreted element by default), None when unset."""
        return self._calibrations.get(element or self.element())

    def set_calibration(self, calibration: Calibration) -> None:
        self._calibrations[calibration.element] = calibration
        self.calibrationChanged.emit(calibration.element)
        self._messages.status(f"{calibration.element} calibration ({calibration.source}): "
                              f"{calibration.shift_ev:+.2f} eV")

    def clear_calibration(self, element: str | None = None) -> None:
        element = element or self.element()
        if self._calibrations.pop(element, None) is not None:
            self.calibrationChanged.emit(element)

    def restore_calibrations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Set the calibrations saved in a session; a bad entry is a message, never a failure."""
        for entry in entries:
            try:
                self.set_calibration(calibration_from_dict(entry))
            except (KeyError, TypeError, ValueError) as exc:
                self._messages.error(f"Session: calibration {entry!r} ignored ({exc})")

    def calibrate_from_measured(self, measured_id: str, structure: Any = None) -> Task | None:
        """Calibrate the element from a measured reference (foil) and its structure (None: the metal)."""
        doc, element = self._measured.doc(measured_id), self.element()
        if doc is None or doc.norm is None or not element:
            self._messages.error("Calibration needs a normalized reference spectrum and a model")
            return None
        return self._run("calibrate", self.backend.calibrate_reference, doc.norm.energy_ev, doc.norm.flat, element,
                         structure=structure, reference=doc.path, done=self.set_calibration)

    def calibrate_tabulated(self) -> Task | None:
        """Calibrate the element so the predicted metal's edge is at the tabulated energy."""
        doc = self._measured.doc()
        e0 = doc.norm.e0 if doc is not None and doc.norm is not None else None
        return self._run("calibrate", self.backend.calibrate_tabulated, self.element(), e0,
                         done=self.set_calibration)

    # ---------------------------------------------------------------- context
    def element(self) -> str:
        """The interpreted element: the current model's, else the measured file's."""
        model = self._model()
        if model is not None:
            return model.element
        doc = self._measured.doc()
        return (doc.data.element or "") if doc is not None else ""

    def _model(self) -> Any:
        """The current model, else the first one of the current measured spectrum's element."""
        model = self._predictions.model()
        doc = self._measured.doc()
        if model is None and doc is not None and doc.data.element:
            model = next((m for m in self._predictions.models if m.element == doc.data.element), None)
        return model

    def _measured_curve(self) -> tuple[Any, np.ndarray] | None:
        doc = self._measured.doc()
        if doc is None or doc.norm is None:
            self._messages.error("Import (and normalize) a measured spectrum first")
            return None
        return doc, doc.curve

    def _window(self) -> tuple[float, float] | None:
        return self._measured.align.window

    # ------------------------------------------------------------------- fit
    def fit_current(self) -> Task | None:
        """Fit shift, broadening and scale of the shown prediction to the current measured spectrum."""
        measured = self._measured_curve()
        target = self._measured.comparison_target()
        if measured is None:
            return None
        doc, curve = measured
        comparison = self._measured.comparisons.get(doc.id)
        if target is None or comparison is None or isinstance(comparison, str):
            self._messages.error("Predict a spectrum and compare it with the measured one first")
            return None
        # The calibration places edge-relative ML predictions; FEFF10 spectra have their own energies.
        calibration = self.calibration() if target[0] == "ml" else None
        task = Task(self.backend.fit_measured, doc.norm, curve, target[1], comparison, calibration, self.element())
        return self._start("fit", task, lambda fit, c=calibration: self._on_fit(fit, c))

    def _on_fit(self, fit: Any, calibration: Calibration | None) -> None:
        self.fit = fit
        self._fit_label = FREE_ALIGNMENT if calibration is None else f"calibrated {calibration.source}"
        self.set_overlay("fit", f"fit ({self._fit_label})", fit.energy_ev, fit.fitted)
        self.fitReady.emit(fit)

    def fit_label(self) -> str:
        """How the shift of the last fit was found: "free alignment" or "calibrated <source>"."""
        return self._fit_label

    # -------------------------------------------------------------- identify
    def add_candidates(self, paths: Sequence[str]) -> None:
        """Add candidate structure files or folders of them."""
        new = [str(p) for p in paths if str(p) not in self.candidate_paths]
        if new:
            self.candidate_paths.extend(new)
            self.candidatesChanged.emit()

    def set_library(self, folder: str) -> None:
        """A folder of known structures whose predictions are cached in it ("" for none)."""
        if folder != self.library:
            self.library = folder
            self.candidatesChanged.emit()

    def clear_candidates(self) -> None:
        self.candidate_paths, self.library = [], ""
        self.candidatesChanged.emit()

    def identify(self) -> Task | None:
        """Predict every candidate and rank them against the current measured spectrum (with progress)."""
        measured = self._measured_curve()
        if measured is None:
            return None
        if not self.candidate_paths and not self.library:
            self._messages.error("Add candidate structures (files, a folder or a library) first")
            return None
        doc, curve = measured
        self._messages.status(f"Identifying: {len(self.candidate_paths)} candidate path(s)…")
        return self._run("identify", _identify, self.backend, list(self.candidate_paths), self.library or None,
                         self.element(), doc.norm, curve, self.calibration(), self._window(), done=self._on_ranked,
                         with_progress=True)

    def _adopt(self, calibration: Calibration) -> None:
        """Keep a calibration a worker made (the tabulated one, when none was set)."""
        if self._calibrations.get(calibration.element) is not calibration:
            self.set_calibration(calibration)

    def _on_ranked(self, result: dict[str, Any]) -> None:
        self._adopt(result["calibration"])
        self.ranking, self.skipped = list(result["ranking"]), list(result["skipped"])
        for problem in self.skipped:
            self._messages.error(problem)
        self.rankingReady.emit(self.ranking)
        self._messages.status(f"Identify: {len(self.ranking)} candidate(s) ranked")

    def show_candidate(self, row: int) -> None:
        """Overlay the fitted spectrum of ranking row ``row``."""
        if 0 <= row < len(self.ranking):
            entry = self.ranking[row]
            self.set_overlay("identify", f"identify #{entry.rank}: {entry.candidate.name}", entry.fit.energy_ev,
                             entry.fit.fitted)

    def run_lcf(self, max_components: int) -> Task | None:
        """Linear combinations of up to ``max_components`` of the top-ranked candidates."""
        measured = self._measured_curve()
        if measured is None:
            return None
        if not self.ranking:
            self._messages.error("Identify first: the combinations are made of the ranked candidates")
            return None
        doc, curve = measured
        element = self.element()
        task = Task(self.backend.linear_combinations, doc.norm.energy_ev, curve,
                    [r.candidate for r in self.ranking], self.calibration() or Calibration(element),
                    int(max_components), element=element, window=self._window(), start=self.ranking[0].fit)
        return self._start("lcf", task, self._on_lcf)

    def _on_lcf(self, results: list[Any]) -> None:
        self.lcf = list(results)
        self.lcfReady.emit(self.lcf)

    def show_lcf(self, row: int) -> None:
        if 0 <= row < len(self.lcf):
            entry = self.lcf[row]
            names = " + ".join(f"{f:.2f} {c.name}" for c, f in zip(entry.candidates, entry.fractions))
            self.set_overlay("lcf", f"LCF: {names}", entry.fit.energy_ev, entry.fit.fitted)

    # ---------------------------------------------------------------- refine
    def refine_target(self) -> tuple[Any, Any] | None:
        """(structure document, shown prediction) refined, or None (a message says why)."""
        doc, prediction = self._structures.current, self._predictions.shown_prediction()
        if doc is None or prediction is None:
            self._messages.error("Predict the selected site(s) of a structure first")
            return None
        return doc, prediction

    def preview(self, shell_scales: Sequence[float], strain: float, shift_ev: float, gaussian_fwhm_ev: float,
                scale: float) -> Task | None:
        """The live prediction of the distorted structure.

        One runs at a time (the model keeps one forward pass for the structure); a request
        made meanwhile waits, replaced by any later one, and starts when it ends.
        """
        if self.running("preview"):
            self._pending_preview = (shell_scales, strain, shift_ev, gaussian_fwhm_ev, scale)
            return None
        target = self.refine_target()
        if target is None:
            return None
        doc, prediction = target
        base = self.backend.placement_base(prediction.average_spectrum(), self.element())
        return self._run("preview", _preview, self.backend, doc.structure, prediction.site_indices, prediction.weights,
                         list(shell_scales), float(strain), float(gaussian_fwhm_ev), base + float(shift_ev),
                         float(scale), done=self._on_preview, quiet=True)

    def _on_running_changed(self, kind: str, running: bool) -> None:
        if kind == "preview" and not running and self._pending_preview is not None:
            pending, self._pending_preview = self._pending_preview, None
            self.preview(*pending)

    def _on_preview(self, result: tuple[Overlay, Any]) -> None:
        overlay, _shells = result
        self._overlays["refine"] = overlay
        self.overlaysChanged.emit()
        self.previewReady.emit(result)

    def refine(self, params: Sequence[str]) -> Task | None:
        """Refine shells/strain of the current structure against the current measured spectrum."""
        target, measured = self.refine_target(), self._measured_curve()
        if target is None or measured is None:
            return None
        (doc, prediction), (mdoc, curve) = target, measured
        return self._run("refine", _refine, self.backend, doc.structure, prediction.site_indices, prediction.weights,
                         mdoc.norm, curve, self.calibration(), self.element(), tuple(params), self._window(),
                         done=self._on_refined)

    def _on_refined(self, outcome: dict[str, Any]) -> None:
        self._adopt(outcome["calibration"])
        self.refined = result = outcome["result"]
        fit = result.fit_end
        self.set_overlay("refine", "refine: refined", fit.energy_ev, fit.fitted)
        self.refineReady.emit(result)
        self._messages.status(f"Refined in {result.seconds:.1f} s")

    # -------------------------------------------------------------- overlays
    def overlays(self) -> list[Overlay]:
        """Curves to draw over the spectra (:meth:`Overlay.on_axis` places each)."""
        return list(self._overlays.values())

    def clear_overlays(self) -> None:
        self._drop_overlays(*OVERLAY_COLORS)

    def _drop_overlays(self, *kinds: str) -> None:
        dropped = [self._overlays.pop(kind, None) for kind in kinds]
        if any(overlay is not None for overlay in dropped):
            self.overlaysChanged.emit()

    def set_overlay(self, kind: str, label: str, energy: Any, mu: Any, e0_ev: float = math.nan,
                    relative: bool = False) -> None:
        """Draw (or replace) the overlay curve of ``kind`` (a key of OVERLAY_COLORS; see :class:`Overlay`)."""
        self._overlays[kind] = Overlay(label, np.asarray(energy, dtype=float), np.asarray(mu, dtype=float),
                                       OVERLAY_COLORS[kind], float(e0_ev), relative)
        self.overlaysChanged.emit()

    # ----------------------------------------------------------------- tasks
    def running(self, kind: str) -> bool:
        return self._latest.running(kind) is not None

    def cancel(self, kind: str) -> None:
        """Cancel the running work of ``kind`` (it stops at its next progress report)."""
        task = self._latest.running(kind)
        if task is not None:
            task.cancel()
            self._messages.status("Cancelling…")

    def _run(self, kind: str, fn: Callable[..., Any], *args: Any, done: Callable[[Any], None],
             with_progress: bool = False, quiet: bool = False, **kwargs: Any) -> Task | None:
        """Run ``fn(predictor, *args, **kwargs)`` in a worker, loading the current model first if needed."""
        model = self._model()
        if model is None:
            self._messages.error("No model for this element; choose one in the model panel")
            return None
        key = (model.name, self._predictions.device)
        task = Task(_with_predictor, self.backend, self._predictors.get(key), model.name, key[1], fn, *args,
                    with_progress=with_progress, **kwargs)

        def succeeded(result: dict[str, Any]) -> None:
            self._predictors[key] = result["predictor"]
            done(result["result"])

        return self._start(kind, task, succeeded, quiet=quiet)

    def _start(self, kind: str, task: Task, succeeded: Callable[[Any], None], quiet: bool = False) -> Task:
        task.signals.progress.connect(lambda d, t, k=kind: self.progress.emit(k, d, t))
        self._latest.start(task, kind, succeeded=succeeded,
                           failed=lambda message: self._messages.error(f"{kind.capitalize()} failed: {message}"),
                           cancelled=lambda: quiet or self._messages.status(f"{kind.capitalize()} cancelled"),
                           ended=lambda: self.runningChanged.emit(kind, False))
        self.runningChanged.emit(kind, True)
        return task
