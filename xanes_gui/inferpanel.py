"""Infer structure dock: candidate local structures for a measured or simulated spectrum.

Shows what :class:`xanes_gui.state.inverse.Inverse` holds and sends every request back to
it; the inversion (:func:`model_core.inverse.api.invert`, as ``xanes-invert`` runs it)
runs in its worker. With OpenGL (:meth:`InferPanel.enable_3d`, called by the window once
its 3-D view exists) the best candidates are also drawn in 3-D side by side
(:class:`xanes_gui.infer3d.CandidateGallery`), the one selected in the table framed.
"""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from xanes_gui.identifypanel import _fill, _number, _table
from xanes_gui.state import AppState
from xanes_gui.state.inverse import CURRENT_MEASURED, spread_summary

COLUMNS = ("rank", "method", "CN", "first shell (Å)", "neighbours", "round-trip MSE")


class InferPanel(QWidget):
    """Source spectrum, element and samples, "Infer structure" with progress/Cancel, the candidates,
    their spread and (with OpenGL) the best ones in 3-D."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.inverse = inverse = state.inverse

        self.source_combo = QComboBox(self)
        self.source_combo.setToolTip("The spectrum inverted: a measured spectrum, a FEFF10 result or a prediction")
        self.source_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source_combo.setMinimumContentsLength(16)
        self.element_combo = QComboBox(self)
        self.element_combo.setToolTip("Absorbing element (Auto: a simulated spectrum's own, else the selected "
                                      "atoms' element, else the model's)")
        self.samples_spin = QSpinBox(self)
        self.samples_spin.setRange(0, 256)
        self.samples_spin.setValue(16)
        self.samples_spin.setToolTip("Clusters sampled from the diffusion model (retrieval and refined "
                                     "candidates join them)")
        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Spectrum", self))
        source_row.addWidget(self.source_combo, 1)
        options = QHBoxLayout()
        options.addWidget(QLabel("Element", self))
        options.addWidget(self.element_combo)
        options.addWidget(QLabel("Samples", self))
        options.addWidget(self.samples_spin)
        options.addStretch(1)
        self.infer_button = QPushButton("Infer structure", self)
        self.infer_button.setToolTip("Candidate local structures for the chosen spectrum, "
                                     "ranked by the forward model's round trip")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setVisible(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.infer_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress_bar, 1)
        self.table = _table(COLUMNS, self)
        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        self.open_button = QPushButton("Open as structure", self)
        self.open_button.setToolTip("Add the selected candidate cluster as a structure (shown in 3D)")
        self.open_button.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(source_row)
        layout.addLayout(options)
        layout.addLayout(run_row)
        layout.addWidget(self.table, 1)
        self.gallery = None  # the 3-D views, once enable_3d() made them
        self._layout = layout
        layout.addWidget(self.summary_label)
        layout.addWidget(self.open_button)

        self.infer_button.clicked.connect(self._infer)
        self.cancel_button.clicked.connect(inverse.cancel)
        self.open_button.clicked.connect(lambda: inverse.open_candidate(self.table.currentRow()))
        self.table.currentCellChanged.connect(self._on_row)
        inverse.candidatesReady.connect(self._show_candidates)
        inverse.runningChanged.connect(self._on_running)
        inverse.progress.connect(self._on_progress)
        inverse.sourcesChanged.connect(self._show_sources)
        state.predictions.modelsChanged.connect(self._show_elements)
        self._show_elements()
        self._show_sources()

    def enable_3d(self) -> None:
        """Add the 3-D views of the best candidates (only where OpenGL works; once)."""
        if self.gallery is not None:
            return
        from xanes_gui.infer3d import CandidateGallery  # imports PyOpenGL only when used

        self.gallery = CandidateGallery(self)
        self.gallery.setMinimumHeight(170)
        self._layout.insertWidget(self._layout.indexOf(self.summary_label) + 1, self.gallery)
        self.gallery.candidateClicked.connect(lambda row: self.table.setCurrentCell(row, 0))
        self.gallery.show_candidates(self.inverse.candidates)
        self.gallery.set_selected(self.table.currentRow())

    def _show_sources(self) -> None:
        current = self.source_combo.currentData()
        self.source_combo.clear()
        for source in self.inverse.sources():
            self.source_combo.addItem(source.label, source.key)
        # A source that went away falls back to the current measured spectrum.
        self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(current)))

    def _show_elements(self, *_args) -> None:
        current = self.element_combo.currentData()
        self.element_combo.clear()
        self.element_combo.addItem("Auto", "")
        for element in sorted({m.element for m in self.state.predictions.models if m.element}):
            self.element_combo.addItem(element, element)
        self.element_combo.setCurrentIndex(max(0, self.element_combo.findData(current)))

    def _infer(self) -> None:
        self.inverse.infer(self.samples_spin.value(), self.element_combo.currentData() or None,
                           self.source_combo.currentData() or CURRENT_MEASURED)

    def _on_row(self, row: int, *_args) -> None:
        self.open_button.setEnabled(row >= 0)
        if self.gallery is not None:
            self.gallery.set_selected(row)
        self.inverse.show_candidate(row)

    def _on_running(self, running: bool) -> None:
        self.infer_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress_bar.setVisible(running)
        self.progress_bar.setRange(0, 0)  # busy until the first report

    def _on_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)

    def _show_candidates(self, candidates: Sequence[Any]) -> None:
        rows, tips = [], []
        for rank, c in enumerate(candidates, start=1):
            neighbours = " ".join(f"{k}{v}" for k, v in c.neighbours.items())
            rows.append((str(rank), c.method, str(c.coordination_number), _number(c.first_shell_distance_a, 4),
                         neighbours, _number(c.roundtrip_mse)))
            tips.append(f"{c.method}" + (f" from {c.source_id}" if c.source_id else "")
                        + (f" (refined from {c.refined_from})" if c.refined_from else ""))
        self.table.setCurrentCell(-1, -1)
        _fill(self.table, rows, tips)
        self.open_button.setEnabled(False)
        self.summary_label.setText(spread_summary(candidates))
        if self.gallery is not None:
            self.gallery.show_candidates(candidates)
