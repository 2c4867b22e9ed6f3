"""Identify dock: the element's energy calibration, candidate structures, the ranking and LCF.

Shows what :class:`xanes_gui.state.Interpret` holds and sends every request back to it;
the ranking (:func:`model_core.interpret.identify.rank_candidates`) and the linear
combinations (:func:`model_core.interpret.lcf.linear_combinations`) run in its workers.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QListWidget, QProgressBar, QPushButton, QSpinBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from xanes_gui.fitbox import value_with_error
from xanes_gui.state import AppState

RANK_COLUMNS = ("rank", "structure", "score", "confidence", "shift (eV)", "broadening (eV)", "scale", "MSE",
                "r(dμ/dE)")
LCF_COLUMNS = ("components", "fractions", "reduced χ²", "MSE", "r(dμ/dE)")


def _number(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _table(columns: Sequence[str], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def _fill(table: QTableWidget, rows: Sequence[Sequence[str]], tips: Sequence[str] = ()) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if r < len(tips):
                item.setToolTip(tips[r])
            table.setItem(r, c, item)


class IdentifyPanel(QWidget):
    """Calibration, candidates, Identify with progress/Cancel, ranked table, LCF table."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.interpret = interpret = state.interpret

        # ---- calibration
        box = QGroupBox("Energy calibration", self)
        self.calibration_label = QLabel("", box)
        self.calibration_label.setWordWrap(True)
        self.reference_combo = QComboBox(box)
        self.reference_combo.setToolTip("A reference measured with the sample (typically the metal foil); "
                                        "its structure is the metal built by ASE")
        self.reference_structure_check = QCheckBox("its structure: the current one (else the metal)", box)
        self.reference_button = QPushButton("From reference", box)
        self.tabulated_button = QPushButton("Tabulated edge", box)
        self.clear_calibration_button = QPushButton("Clear", box)
        row = QHBoxLayout()
        for widget in (self.reference_combo, self.reference_button, self.tabulated_button,
                       self.clear_calibration_button):
            row.addWidget(widget)
        calibration_layout = QVBoxLayout(box)
        calibration_layout.addWidget(self.calibration_label)
        calibration_layout.addLayout(row)
        calibration_layout.addWidget(self.reference_structure_check)

        # ---- candidates
        self.candidate_list = QListWidget(self)
        self.candidate_list.setMaximumHeight(90)
        self.add_files_button = QPushButton("Add files…", self)
        self.add_folder_button = QPushButton("Add folder…", self)
        self.library_button = QPushButton("Library…", self)
        self.library_button.setToolTip("A folder of known structures whose predictions are cached in it")
        self.clear_button = QPushButton("Clear", self)
        candidates_row = QHBoxLayout()
        for widget in (self.add_files_button, self.add_folder_button, self.library_button, self.clear_button):
            candidates_row.addWidget(widget)
        self.identify_button = QPushButton("Identify", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setVisible(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.identify_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress_bar, 1)
        self.ranking_table = _table(RANK_COLUMNS, self)

        # ---- linear combinations
        self.lcf_spin = QSpinBox(self)
        self.lcf_spin.setRange(1, 4)
        self.lcf_spin.setValue(2)
        self.lcf_button = QPushButton("Linear combination (up to K)", self)
        self.lcf_button.setToolTip("Fit the measured spectrum as a mixture of up to K of the top-ranked candidates")
        lcf_row = QHBoxLayout()
        lcf_row.addWidget(QLabel("K", self))
        lcf_row.addWidget(self.lcf_spin)
        lcf_row.addWidget(self.lcf_button, 1)
        self.lcf_table = _table(LCF_COLUMNS, self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(box)
        layout.addWidget(QLabel("Candidate structures (files, folders, a library)", self))
        layout.addWidget(self.candidate_list)
        layout.addLayout(candidates_row)
        layout.addLayout(run_row)
        layout.addWidget(self.ranking_table, 2)
        layout.addLayout(lcf_row)
        layout.addWidget(self.lcf_table, 1)

        # ---- wiring
        self.reference_button.clicked.connect(self._calibrate_reference)
        self.tabulated_button.clicked.connect(interpret.calibrate_tabulated)
        self.clear_calibration_button.clicked.connect(lambda: interpret.clear_calibration())
        self.add_files_button.clicked.connect(self._add_files)
        self.add_folder_button.clicked.connect(self._add_folder)
        self.library_button.clicked.connect(self._choose_library)
        self.clear_button.clicked.connect(interpret.clear_candidates)
        self.identify_button.clicked.connect(interpret.identify)
        self.cancel_button.clicked.connect(lambda: (interpret.cancel("identify"), interpret.cancel("lcf")))
        self.lcf_button.clicked.connect(lambda: interpret.run_lcf(self.lcf_spin.value()))
        self.ranking_table.currentCellChanged.connect(lambda row, *_: interpret.show_candidate(row))
        self.lcf_table.currentCellChanged.connect(lambda row, *_: interpret.show_lcf(row))
        interpret.calibrationChanged.connect(self._show_calibration)
        interpret.candidatesChanged.connect(self._show_candidates)
        interpret.rankingReady.connect(self._show_ranking)
        interpret.lcfReady.connect(self._show_lcf)
        interpret.runningChanged.connect(self._on_running)
        interpret.progress.connect(self._on_progress)
        measured = state.measured
        for signal in (measured.measuredAdded, measured.measuredRemoved, measured.measuredChanged):
            signal.connect(self._show_references)
        state.predictions.modelChanged.connect(self._show_calibration)
        self._show_calibration()
        self._show_references()

    # ------------------------------------------------------------ calibration
    def _show_calibration(self, *_args) -> None:
        element = self.interpret.element()
        calibration = self.interpret.calibration()
        if calibration is None:
            self.calibration_label.setText(f"{element or 'No element'}: not calibrated (fits use a free "
                                           "alignment; Identify places at the model's E0)")
        else:
            where = f" from {os.path.basename(calibration.reference)}" if calibration.reference else ""
            self.calibration_label.setText(f"{calibration.element}: shift "
                                           f"{value_with_error(calibration.shift_ev, calibration.stderr_ev, 'eV')} "
                                           f"({calibration.source}{where})")

    def _show_references(self, *_args) -> None:
        current = self.reference_combo.currentData()
        self.reference_combo.clear()
        for doc in self.state.measured.docs:
            self.reference_combo.addItem(doc.label, doc.id)
        index = self.reference_combo.findData(current)
        if index >= 0:
            self.reference_combo.setCurrentIndex(index)

    def _calibrate_reference(self) -> None:
        measured_id = self.reference_combo.currentData()
        doc = self.state.structures.current
        structure = doc.structure if doc is not None and self.reference_structure_check.isChecked() else None
        if measured_id:
            self.interpret.calibrate_from_measured(measured_id, structure)
        else:
            self.state.messages.error("Import the reference (metal foil) spectrum first")

    # ------------------------------------------------------------- candidates
    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Candidate structures", "", self.state.backend.format_filter())
        self.interpret.add_candidates(paths)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of candidate structures")
        if folder:
            self.interpret.add_candidates([folder])

    def _choose_library(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Library of known structures")
        if folder:
            self.interpret.set_library(folder)

    def _show_candidates(self) -> None:
        self.candidate_list.clear()
        self.candidate_list.addItems(self.interpret.candidate_paths)
        if self.interpret.library:
            self.candidate_list.addItem(f"library: {self.interpret.library}")

    # ----------------------------------------------------------------- results
    def _on_running(self, kind: str, running: bool) -> None:
        if kind in ("identify", "lcf"):
            self.identify_button.setEnabled(not running)
            self.lcf_button.setEnabled(not running)
            self.cancel_button.setEnabled(running)
            self.progress_bar.setVisible(running)
            self.progress_bar.setRange(0, 0)  # busy until the first report
        elif kind == "calibrate":
            self.reference_button.setEnabled(not running)
            self.tabulated_button.setEnabled(not running)

    def _on_progress(self, kind: str, done: int, total: int) -> None:
        if kind == "identify" and total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)

    def _show_ranking(self, ranking: Sequence[Any]) -> None:
        rows, tips = [], []
        for entry in ranking:
            fit, metrics = entry.fit, entry.fit.metrics_after
            rows.append((str(entry.rank), entry.candidate.name, _number(entry.score), _number(entry.confidence, 2),
                         value_with_error(fit.shift_ev, fit.stderr["shift_ev"]), _number(fit.broaden_fwhm_ev),
                         _number(fit.scale), _number(metrics["mse"]), _number(metrics["pearson_r_deriv"])))
            tips.append(entry.candidate.path)
        _fill(self.ranking_table, rows, tips)
        self.lcf_table.setRowCount(0)

    def _show_lcf(self, results: Sequence[Any]) -> None:
        rows = []
        for entry in results:
            rows.append((" + ".join(c.name for c in entry.candidates),
                         ", ".join(value_with_error(f, s) for f, s in zip(entry.fractions, entry.stderr)),
                         _number(entry.reduced_chi2), _number(entry.fit.metrics_after["mse"]),
                         _number(entry.fit.metrics_after["pearson_r_deriv"])))
        _fill(self.lcf_table, rows)
