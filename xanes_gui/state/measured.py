"""Measured spectra, their normalization, the alignment settings and the comparisons."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

from PySide6.QtCore import QObject, QTimer, Signal

from model_core.spectra.measured import ChannelChoice, MeasuredData
from model_core.spectra.normalize import NormParams
from model_core.types import Spectrum
from xanes_gui.backend import Backend
from xanes_gui.comparison import (MEASURED_COLORS, AlignSettings, MeasuredDoc, auto_align, column_signature,
                                  compare_all, load_measured)
from xanes_gui.state.messages import Messages
from xanes_gui.tasks import LatestWins, Task, TaskRunner

#: What measured spectra are compared with: ("ml" or "feff", spectrum), or None.
Target = tuple[str, Spectrum] | None

_COMPARE, _ALIGN = "compare", "align"


class MeasuredSpectra(QObject):
    """Measured spectra, how they are normalized and shown, and how they compare with the target.

    Args:
        backend: reads, normalizes and compares spectra.
        messages: where status and error messages go.
        tasks: runs the workers.
        target: () -> what the spectra are compared with (the prediction or a FEFF10
            spectrum of the current structure; given by AppState).

    Attributes:
        column_memory: column choices remembered by :func:`column_signature`.

    Signals:
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
    """

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

    def __init__(self, backend: Backend, messages: Messages, tasks: TaskRunner, target: Callable[[], Target],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._messages = messages
        self._tasks = tasks
        self._latest = LatestWins(tasks)
        self._target = target
        self._docs: dict[str, MeasuredDoc] = {}
        self._next_id = 1
        self._current = ""
        self._loading: set[str] = set()
        self.align = AlignSettings()
        self._comparisons: dict[str, Any] = {}
        self._compare_pending = False
        self.column_memory: dict[str, ChannelChoice] = {}
        self._spectra_ready = False

    # ------------------------------------------------------------------ larch
    @property
    def spectra_ready(self) -> bool:
        return self._spectra_ready

    def start_spectra(self) -> Task:
        """Import larch in a worker (seconds) so the first measured file opens quickly."""
        self._messages.status("Loading spectrum tools (larch)…")
        task = Task(self.backend.warm_up_spectra)
        task.signals.succeeded.connect(self._on_spectra_ready)
        task.signals.failed.connect(
            lambda message: self._messages.error(f"Spectrum tools (larch) could not be loaded: {message}; "
                                                 "measured spectra cannot be read"))
        return self._tasks.start(task)

    def _on_spectra_ready(self, _result: Any = None) -> None:
        self._spectra_ready = True
        self.spectraReady.emit()
        self._messages.status("Spectrum tools ready")

    # ---------------------------------------------------------------- spectra
    @property
    def docs(self) -> list[MeasuredDoc]:
        return list(self._docs.values())

    def doc(self, measured_id: str | None = None) -> MeasuredDoc | None:
        """A measured spectrum by id (the current one when None)."""
        return self._docs.get(self._current if measured_id is None else measured_id)

    @property
    def current_id(self) -> str:
        return self._current

    @property
    def busy(self) -> bool:
        return bool(self._loading)

    def visible(self) -> list[MeasuredDoc]:
        """Measured spectra drawn in the plots (visible and normalized)."""
        return [m for m in self._docs.values() if m.visible and m.norm is not None]

    def set_current(self, measured_id: str) -> None:
        if measured_id != self._current and (not measured_id or measured_id in self._docs):
            self._current = measured_id
            self.currentMeasuredChanged.emit(measured_id)

    def remember_columns(self, names: Sequence[str], choice: ChannelChoice) -> None:
        """Remember a column choice for files with these column names."""
        self.column_memory[column_signature(names)] = choice

    def import_files(self, paths: Iterable[str | os.PathLike], *, group: str | None = None,
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
            self._loading.add(path)
            self._messages.status(f"Reading spectrum {os.path.basename(path)}…")
            task = Task(load_measured, self.backend, path, group, columns, memory)
            task.signals.succeeded.connect(self._on_read)
            task.signals.failed.connect(lambda message, p=path: self._on_failed(p, message))
            tasks.append(self._tasks.start(task))
        return tasks

    def import_athena_groups(self, path: str, groups: Sequence[str]) -> list[Task]:
        """Read several groups of one Athena project."""
        return [task for name in groups for task in self.import_files([path], group=name)]

    def _on_read(self, result: dict[str, Any]) -> None:
        path = result["path"]
        self._loading.discard(path)
        if "needs_group" in result:
            self._messages.status(f"{os.path.basename(path)}: choose the Athena group(s) to import")
            self.measuredNeedsGroup.emit(path, result["needs_group"])
            return
        if "needs_columns" in result:
            self._messages.status(f"{os.path.basename(path)}: choose the energy and absorption columns")
            self.measuredNeedsColumns.emit(path, result["needs_columns"], result.get("message", ""))
            return
        data: MeasuredData = result["data"]
        name = os.path.basename(path)
        for warning in data.warnings:
            self._messages.notice(f"{name}: {warning}")
        if result.get("remembered"):
            self._messages.notice(f"{name}: used the remembered column choice ({data.channel})")
        self.add(data, columns=result.get("columns"))
        self.measuredOpened.emit(path)

    def _on_failed(self, path: str, message: str) -> None:
        self._loading.discard(path)
        if os.path.basename(path) not in message:
            message = f"{path}: {message}"
        self._messages.error(message)
        self.measuredFailed.emit(path, message)

    def add(self, data: MeasuredData, *, columns: ChannelChoice | None = None, params: NormParams | None = None,
            use_flat: bool = True, visible: bool = True, color: tuple[int, int, int] | None = None) -> str:
        """Add a read spectrum (main thread) and normalize it in a worker; returns its id."""
        measured_id = f"m{self._next_id}"
        self._next_id += 1
        taken = {m.label for m in self._docs.values()}
        label = data.label or os.path.basename(data.source) or measured_id
        if data.group and data.group != label:
            label = f"{label} [{data.group}]"
        base, n = label, 2
        while label in taken:
            label, n = f"{base} ({n})", n + 1
        if color is None:
            used = {m.color for m in self._docs.values()}
            color = next((c for c in MEASURED_COLORS if c not in used),
                         MEASURED_COLORS[len(self._docs) % len(MEASURED_COLORS)])
        self._docs[measured_id] = MeasuredDoc(id=measured_id, data=data, color=tuple(color), label=label,
                                              params=params or NormParams(), use_flat=use_flat,
                                              visible=visible, columns=columns)
        self.measuredAdded.emit(measured_id)
        self.set_current(measured_id)
        self._normalize(measured_id)
        return measured_id

    def remove(self, measured_id: str) -> None:
        if measured_id not in self._docs:
            return
        del self._docs[measured_id]
        self._latest.drop(("norm", measured_id))
        self._comparisons.pop(measured_id, None)
        self.measuredRemoved.emit(measured_id)
        if self._current == measured_id:
            self.set_current(next(iter(self._docs), ""))
        self.schedule_comparison()

    def set_norm_params(self, measured_id: str, params: NormParams) -> Task | None:
        """Change the normalization parameters of a spectrum and renormalize it in a worker."""
        doc = self._docs.get(measured_id)
        if doc is None:
            return None
        self._docs[measured_id] = replace(doc, params=params)
        self.measuredChanged.emit(measured_id)
        return self._normalize(measured_id)

    def _update(self, measured_id: str, **changes: Any) -> None:
        self._docs[measured_id] = replace(self._docs[measured_id], **changes)
        self.measuredChanged.emit(measured_id)
        self.schedule_comparison()

    def set_visible(self, measured_id: str, visible: bool) -> None:
        doc = self._docs.get(measured_id)
        if doc is not None and doc.visible != bool(visible):
            self._update(measured_id, visible=bool(visible))

    def set_use_flat(self, measured_id: str, use_flat: bool) -> None:
        doc = self._docs.get(measured_id)
        if doc is not None and doc.use_flat != bool(use_flat):
            self._update(measured_id, use_flat=bool(use_flat))

    def set_color(self, measured_id: str, color: tuple[int, int, int]) -> None:
        doc = self._docs.get(measured_id)
        if doc is not None and doc.color != tuple(color):
            self._update(measured_id, color=tuple(int(c) for c in color))

    def _normalize(self, measured_id: str) -> Task:
        doc = self._docs[measured_id]
        task = Task(self.backend.normalize, doc.data.energy_ev, doc.data.mu, doc.params)
        # Parameters changed again meanwhile: only the latest normalization is applied.
        return self._latest.start(task, ("norm", measured_id),
                                  succeeded=lambda result, i=measured_id: self._on_normalized(i, result, ""),
                                  failed=lambda message, i=measured_id: self._on_normalized(i, None, message))

    def _on_normalized(self, measured_id: str, result: Any, message: str) -> None:
        doc = self._docs[measured_id]
        name = os.path.basename(doc.path)
        if result is None:
            self._docs[measured_id] = replace(doc, norm=None, norm_error=message)
            self._messages.error(f"{name}: cannot normalize: {message}")
        else:
            self._docs[measured_id] = replace(doc, norm=result, norm_error="")
            for warning in result.warnings:
                self._messages.notice(f"{name}: {warning}")
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

    def comparison_target(self) -> Target:
        """What measured spectra are compared with: ("ml", average prediction) or ("feff", FEFF spectrum)."""
        return self._target()

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
        target = self.comparison_target()
        jobs = [(m.id, m.data, m.norm, m.use_flat) for m in self.visible()]
        if target is None or not jobs:
            self._latest.drop(_COMPARE)  # a comparison still on its way is out of date
            self._comparisons = {}
            self.comparisonsReady.emit({})
            return
        task = Task(compare_all, self.backend, jobs, target[1], self.align)
        self._latest.start(task, _COMPARE, succeeded=self._on_compared,
                           failed=lambda message: self._messages.error(f"Comparison failed: {message}"))

    def _on_compared(self, result: dict[str, Any]) -> None:
        self._comparisons = {k: v for k, v in result.items() if k in self._docs}
        self.comparisonsReady.emit(dict(self._comparisons))

    def auto_align(self, measured_id: str | None = None) -> Task | None:
        """Find the shift that aligns the target with a measured spectrum (worker); sets shift_ev."""
        doc = self.doc(measured_id)
        if doc is None:
            self._messages.error("Import a measured spectrum to align with")
            return None
        if doc.norm is None:
            self._messages.error(f"{os.path.basename(doc.path)} is not normalized: {doc.norm_error or 'wait'}")
            return None
        target = self.comparison_target()
        if target is None:
            self._messages.error("Predict (or simulate) a spectrum to align with the measured one")
            return None
        task = Task(auto_align, self.backend, doc.data, doc.norm, doc.use_flat, target[1], self.align)
        self._messages.status(f"Aligning with {doc.label}…")
        return self._latest.start(task, _ALIGN, succeeded=self._on_aligned,
                                  failed=lambda message: self._messages.error(f"Auto-align failed: {message}"))

    def _on_aligned(self, shift: float) -> None:
        self.set_align(shift_ev=float(shift))
        self._messages.status(f"Auto-align: shift {shift:+.2f} eV")
