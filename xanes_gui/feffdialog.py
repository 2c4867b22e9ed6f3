"""Non-modal window to simulate the selected sites with FEFF10.

It shows the presets (with their descriptions and the expected time for the
symmetry-reduced sites), the output folder, and the progress of the run, which
the :class:`~xanes_gui.state.Simulations` part runs in a worker; the FEFF processes
themselves run in subprocesses started by :mod:`model_core.feff`.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout)

from xanes_gui.state import AppState


def format_duration(seconds: float) -> str:
    """"45 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class FeffDialog(QDialog):
    """Preset, output folder, Run/Cancel and progress of a FEFF10 simulation."""

    def __init__(self, state: AppState, default_folder: str, parent=None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setWindowTitle("Simulate with FEFF10")
        self.state = state
        self.simulations = state.simulations
        self._presets: dict = {}
        self.sites_label = QLabel(self)
        self.sites_label.setWordWrap(True)
        self.preset_combo = QComboBox(self)
        self.description_label = QLabel(self)
        self.description_label.setWordWrap(True)
        self.time_label = QLabel(self)
        self.workers_spin = QSpinBox(self)
        self.workers_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.workers_spin.setValue(1)
        self.workers_spin.setToolTip("FEFF runs in parallel (one CPU core each)")
        self.folder_edit = QLineEdit(default_folder, self)
        self.browse_button = QPushButton("Browse…", self)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.run_button = QPushButton("Run", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close", self)

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Sites:", self.sites_label)
        form.addRow("Preset:", self.preset_combo)
        form.addRow("", self.description_label)
        form.addRow("Expected time:", self.time_label)
        form.addRow("Parallel runs:", self.workers_spin)
        form.addRow("Output folder:", folder_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        self.resize(520, 300)

        self.preset_combo.currentIndexChanged.connect(lambda *_: self._update_estimate())
        self.workers_spin.valueChanged.connect(lambda *_: self._update_estimate())
        self.browse_button.clicked.connect(self._browse)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(state.simulations.cancel)
        self.close_button.clicked.connect(self.close)
        state.structures.selectionChanged.connect(lambda *_: self.refresh())
        state.structures.currentStructureChanged.connect(lambda *_: self.refresh())
        state.simulations.feffStarted.connect(self._on_started)
        state.simulations.feffProgress.connect(self._on_progress)
        state.simulations.feffFinished.connect(self._on_finished)
        state.simulations.feffChecked.connect(self._on_checked)
        self._fill_presets()
        # Finding out whether feff10 imports takes a moment: done in a worker.
        self.status_label.setText("Checking FEFF10…")
        state.simulations.check()

    def _fill_presets(self) -> None:
        try:
            self._presets = dict(self.state.backend.feff_presets())
        except Exception as exc:  # noqa: BLE001 - FEFF package missing or broken: say so, keep the app running
            self._presets = {}
            self.state.messages.errorMessage.emit(f"FEFF10 presets unavailable: {exc}")
        self.preset_combo.clear()
        for name in self._presets:
            self.preset_combo.addItem(name, name)
        # The cheapest preset is the sensible first try from a desktop.
        fast = self.preset_combo.findData("fast")
        self.preset_combo.setCurrentIndex(fast if fast >= 0 else 0)

    def refresh(self) -> None:
        """Update the site count and time estimate for the current selection."""
        doc = self.state.structures.current
        sites, weights = self.simulations.sites()
        if doc is None:
            self.sites_label.setText("Open a structure first")
        elif len(sites) == 0:
            self.sites_label.setText("Select the absorbing atoms in the Sites panel")
        else:
            symbols = doc.structure.symbols
            text = ", ".join(f"{symbols[i]}{int(i)}" + (f" ×{w:g}" if w != 1 else "") for i, w in zip(sites, weights))
            self.sites_label.setText(f"{len(sites)} symmetry-unique site(s) of {doc.title}: {text}")
        self._update_estimate()
        self.run_button.setEnabled(len(sites) > 0 and bool(self._presets) and not self.simulations.running)

    @property
    def preset_name(self) -> str:
        return str(self.preset_combo.currentData() or "")

    def _update_estimate(self) -> None:
        preset = self._presets.get(self.preset_name)
        if preset is None:
            self.description_label.setText("")
            self.time_label.setText("—")
            return
        self.description_label.setText(str(getattr(preset, "description", "")))
        per_site = float(getattr(preset, "expected_seconds_per_site", 0.0))
        n = len(self.simulations.sites()[0])
        workers = self.workers_spin.value()
        total = per_site * n / max(1, min(workers, n or 1))
        self.time_label.setText(f"~{format_duration(per_site)} per site × {n} site(s) ≈ {format_duration(total)}"
                                + (f" with {workers} parallel runs" if workers > 1 and n > 1 else ""))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "FEFF10 output folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def run(self):
        """Start the simulation with the chosen preset and folder (returns the task or None)."""
        folder = self.folder_edit.text().strip()
        if not folder:
            self.state.messages.errorMessage.emit("Choose an output folder for FEFF10")
            return None
        return self.simulations.simulate(self.preset_name, folder, workers=self.workers_spin.value())

    def _on_started(self) -> None:
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status_label.setText("Preparing FEFF10 inputs…")

    def _on_progress(self, done: int, total: int, status: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status_label.setText(f"{done}/{total}: {status}")

    def _on_finished(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if "cancel" not in self.status_label.text() else 0)
        self.refresh()

    def _on_checked(self, ok: bool, text: str) -> None:
        if ok:
            self.status_label.setText(f"FEFF10 {text} ready")
        else:
            self.status_label.setText(f"<span style='color:#b00'>{text}</span>")
            self.status_label.setTextFormat(Qt.TextFormat.RichText)
