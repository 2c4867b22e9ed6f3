"""Measured-spectra dock: the list of measured spectra, the normalization editor with
its preview, the alignment controls and similarity metrics (the choosers of Athena
groups and columns are in :mod:`xanes_gui.choosers`).

The widgets hold no data of their own: they show what the
:class:`~xanes_gui.state.MeasuredSpectra` part holds and send every change back to it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from model_core.spectra.normalize import NormParams
from xanes_gui.fitbox import FitBox
from xanes_gui.state import AppState

#: Float fields of the editor: (NormParams name, label, tooltip).
FLOAT_FIELDS = (
    ("e0", "E0 (eV)", "Absolute edge energy; empty: found automatically (max of dμ/dE)"),
    ("pre1", "pre1 (eV)", "Start of the pre-edge line fit, relative to E0; empty: automatic"),
    ("pre2", "pre2 (eV)", "End of the pre-edge line fit, relative to E0; empty: automatic"),
    ("norm1", "norm1 (eV)", "Start of the post-edge fit, relative to E0; empty: automatic"),
    ("norm2", "norm2 (eV)", "End of the post-edge fit, relative to E0; empty: automatic"),
)
METRIC_NAMES = (("mse", "MSE"), ("pearson_r", "Pearson r (μ)"), ("pearson_r_deriv", "Pearson r (dμ/dE)"),
                ("cosine", "cosine"))


def swatch(color: Sequence[int], size: int = 14) -> QIcon:
    """A square colour sample for list items."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


class MeasuredPanel(QWidget):
    """List, normalization editor, preview and comparison controls for measured spectra.

    Signals:
        importRequested(): the Import button was pressed (the window shows a file dialog).
        exportComparisonRequested(): the Export comparison button was pressed.
    """

    importRequested = Signal()
    exportComparisonRequested = Signal()

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.measured = state.measured
        self._updating = False

        # ---- list of spectra
        self.import_button = QPushButton("Import…", self)
        self.import_button.setToolTip("Import measured spectra (XDI, Athena .prj, column files); "
                                      "or drop files on the window")
        self.remove_button = QPushButton("Remove", self)
        self.list = QListWidget(self)
        self.list.setMaximumHeight(80)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)

        # ---- normalization editor
        self.norm_box = QGroupBox("Normalization (empty = automatic)", self)
        self.fields: dict[str, QLineEdit] = {}
        grid = QGridLayout(self.norm_box)
        grid.setContentsMargins(4, 4, 4, 4)
        for k, (name, label, tip) in enumerate(FLOAT_FIELDS):
            edit = QLineEdit(self.norm_box)
            edit.setToolTip(tip)
            edit.setPlaceholderText("auto")
            edit.editingFinished.connect(self.apply_params)
            self.fields[name] = edit
            grid.addWidget(QLabel(label, self.norm_box), k // 2, (k % 2) * 2)
            grid.addWidget(edit, k // 2, (k % 2) * 2 + 1)
        self.nnorm_combo = QComboBox(self.norm_box)
        self.nnorm_combo.addItem("auto", None)
        for degree in (0, 1, 2):
            self.nnorm_combo.addItem(str(degree), degree)
        self.nnorm_combo.setToolTip("Degree of the post-edge polynomial")
        self.nvict_spin = QSpinBox(self.norm_box)
        self.nvict_spin.setRange(0, 4)
        self.nvict_spin.setToolTip("Energy exponent of the pre-edge fit (μ·E^nvict is fitted by a line)")
        self.flatten_check = QCheckBox("flatten", self.norm_box)
        self.flatten_check.setChecked(True)
        self.show_combo = QComboBox(self.norm_box)
        self.show_combo.addItem("flat", True)
        self.show_combo.addItem("norm", False)
        self.show_combo.setToolTip("Show and compare the flattened or the normalized spectrum")
        grid.addWidget(QLabel("nnorm", self.norm_box), 2, 2)
        grid.addWidget(self.nnorm_combo, 2, 3)
        grid.addWidget(QLabel("nvict", self.norm_box), 3, 0)
        grid.addWidget(self.nvict_spin, 3, 1)
        grid.addWidget(self.flatten_check, 3, 2)
        grid.addWidget(self.show_combo, 3, 3)
        self.reset_button = QPushButton("All automatic", self.norm_box)
        grid.addWidget(self.reset_button, 4, 0, 1, 2)
        self.norm_info = QLabel(self.norm_box)
        self.norm_info.setWordWrap(True)
        self.norm_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.norm_info, 5, 0, 1, 4)

        # ---- preview: raw mu with the fitted pre-edge line and post-edge curve
        self.preview = pg.PlotWidget(self)
        self.preview.setBackground("w")
        self.preview.setMinimumHeight(170)
        self.preview.showGrid(x=True, y=True, alpha=0.25)
        self.preview.setLabel("bottom", "E (eV)")
        self.preview.setLabel("left", "raw μ")
        self.preview.addLegend(offset=(-5, 5), labelTextColor="k", brush=(255, 255, 255, 200))
        self.raw_item = self.preview.plot([], [], pen=pg.mkPen((0, 0, 0), width=1.5), name="raw μ")
        self.pre_item = self.preview.plot([], [], pen=pg.mkPen((31, 119, 180), width=1.2,
                                                               style=Qt.PenStyle.DashLine), name="pre-edge")
        self.post_item = self.preview.plot([], [], pen=pg.mkPen((214, 39, 40), width=1.2,
                                                                style=Qt.PenStyle.DashLine), name="post-edge")
        self.e0_line = pg.InfiniteLine(angle=90, movable=False,
                                       pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DotLine))
        self.e0_line.setVisible(False)
        self.preview.addItem(self.e0_line, ignoreBounds=True)

        # ---- alignment and comparison
        self.align_box = QGroupBox("Compare with prediction", self)
        self.shift_spin = QDoubleSpinBox(self.align_box)
        self.shift_spin.setRange(-200.0, 200.0)
        self.shift_spin.setDecimals(2)
        self.shift_spin.setSingleStep(0.1)
        self.shift_spin.setSuffix(" eV")
        self.shift_spin.setToolTip("Shift added to the prediction after placing it at its E0")
        self.auto_button = QPushButton("Auto-align", self.align_box)
        self.auto_button.setToolTip("Shift by cross-correlating dμ/dE of prediction and the selected measured "
                                    "spectrum within the window")
        self.broaden_spin = QDoubleSpinBox(self.align_box)
        self.broaden_spin.setRange(0.0, 30.0)
        self.broaden_spin.setDecimals(2)
        self.broaden_spin.setSingleStep(0.25)
        self.broaden_spin.setSuffix(" eV")
        self.broaden_spin.setSpecialValueText("none")
        self.broaden_spin.setToolTip("FWHM of the broadening applied to the prediction")
        self.kind_combo = QComboBox(self.align_box)
        self.kind_combo.addItem("Gaussian", "gaussian")
        self.kind_combo.addItem("Lorentzian", "lorentzian")
        self.window_check = QCheckBox("Window", self.align_box)
        self.window_check.setToolTip("Align and compare only within this absolute energy range")
        self.window_lo = QDoubleSpinBox(self.align_box)
        self.window_hi = QDoubleSpinBox(self.align_box)
        for spin in (self.window_lo, self.window_hi):
            spin.setRange(0.0, 200000.0)
            spin.setDecimals(1)
            spin.setSuffix(" eV")
            spin.setEnabled(False)
        self.metrics_label = QLabel("—", self.align_box)
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export comparison CSV…", self.align_box)
        form = QFormLayout(self.align_box)
        form.setContentsMargins(4, 4, 4, 4)
        shift_row = QHBoxLayout()
        shift_row.addWidget(self.shift_spin, 1)
        shift_row.addWidget(self.auto_button)
        form.addRow("Shift:", shift_row)
        broaden_row = QHBoxLayout()
        broaden_row.addWidget(self.broaden_spin, 1)
        broaden_row.addWidget(self.kind_combo)
        form.addRow("Broadening:", broaden_row)
        window_row = QHBoxLayout()
        window_row.addWidget(self.window_check)
        window_row.addWidget(self.window_lo, 1)
        window_row.addWidget(QLabel("–", self.align_box))
        window_row.addWidget(self.window_hi, 1)
        form.addRow(window_row)
        form.addRow(self.metrics_label)
        form.addRow(self.export_button)

        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.list)
        # Comparison first: its metrics are what the user watches while aligning.
        layout.addWidget(self.align_box)
        self.fit_box = FitBox(state, content)
        layout.addWidget(self.fit_box)
        layout.addWidget(self.norm_box)
        layout.addWidget(self.preview, 1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        # ---- wiring
        self.import_button.clicked.connect(self.importRequested)
        self.remove_button.clicked.connect(self._remove_current)
        self.export_button.clicked.connect(self.exportComparisonRequested)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current_item)
        self.nnorm_combo.currentIndexChanged.connect(lambda *_: self.apply_params())
        self.nvict_spin.valueChanged.connect(lambda *_: self.apply_params())
        self.flatten_check.toggled.connect(lambda *_: self.apply_params())
        self.reset_button.clicked.connect(self._reset_params)
        self.show_combo.currentIndexChanged.connect(self._on_show_combo)
        self.shift_spin.valueChanged.connect(self._on_align_controls)
        self.broaden_spin.valueChanged.connect(self._on_align_controls)
        self.kind_combo.currentIndexChanged.connect(self._on_align_controls)
        self.window_check.toggled.connect(self._on_window_toggled)
        self.window_lo.editingFinished.connect(self._on_align_controls)
        self.window_hi.editingFinished.connect(self._on_align_controls)
        self.auto_button.clicked.connect(lambda: state.measured.auto_align())
        state.measured.measuredAdded.connect(self._refresh_list)
        state.measured.measuredRemoved.connect(self._refresh_list)
        state.measured.measuredChanged.connect(self._on_measured_changed)
        state.measured.currentMeasuredChanged.connect(self._on_current_changed)
        state.measured.alignChanged.connect(self._show_align)
        state.measured.comparisonsReady.connect(self._show_metrics)
        self._refresh_list()
        self._show_align(state.measured.align)
        self._show_editor()

    # ------------------------------------------------------------------ list
    def _refresh_list(self, *_args) -> None:
        self._updating = True
        try:
            self.list.clear()
            for doc in self.measured.docs:
                item = QListWidgetItem(swatch(doc.color), doc.label)
                item.setData(Qt.ItemDataRole.UserRole, doc.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if doc.visible else Qt.CheckState.Unchecked)
                item.setToolTip(f"{doc.path}\n{doc.data.channel}")
                self.list.addItem(item)
                if doc.id == self.measured.current_id:
                    self.list.setCurrentItem(item)
        finally:
            self._updating = False
        has = bool(self.measured.docs)
        self.remove_button.setEnabled(has)
        self._show_editor()

    def item_for(self, measured_id: str) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == measured_id:
                return item
        return None

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.measured.set_visible(item.data(Qt.ItemDataRole.UserRole),
                                      item.checkState() == Qt.CheckState.Checked)

    def _on_current_item(self, item: QListWidgetItem | None, _previous=None) -> None:
        if not self._updating and item is not None:
            self.measured.set_current(item.data(Qt.ItemDataRole.UserRole))

    def _on_current_changed(self, measured_id: str) -> None:
        item = self.item_for(measured_id)
        if item is not None and self.list.currentItem() is not item:
            self._updating = True
            self.list.setCurrentItem(item)
            self._updating = False
        self._show_editor()
        self._show_metrics(self.measured.comparisons)

    def _remove_current(self) -> None:
        if self.measured.current_id:
            self.measured.remove(self.measured.current_id)

    def _on_measured_changed(self, measured_id: str) -> None:
        item = self.item_for(measured_id)
        doc = self.measured.doc(measured_id)
        if item is not None and doc is not None:
            self._updating = True
            item.setCheckState(Qt.CheckState.Checked if doc.visible else Qt.CheckState.Unchecked)
            item.setIcon(swatch(doc.color))
            self._updating = False
        if measured_id == self.measured.current_id:
            self._show_editor()

    # ---------------------------------------------------------------- editor
    def _show_editor(self) -> None:
        """Fill the editor and preview from the current spectrum."""
        doc = self.measured.doc()
        self._updating = True
        try:
            self.norm_box.setEnabled(doc is not None)
            if doc is None:
                for edit in self.fields.values():
                    edit.clear()
                    edit.setPlaceholderText("auto")
                self.norm_info.setText("No measured spectrum. Import one (File ▸ Import Measured Spectrum…) "
                                       "or drop XDI, Athena or column files on the window.")
                for item in (self.raw_item, self.pre_item, self.post_item):
                    item.setData([], [])
                self.e0_line.setVisible(False)
                return
            used = doc.norm.params if doc.norm is not None else None
            for name, edit in self.fields.items():
                value = getattr(doc.params, name)
                edit.setText("" if value is None else f"{value:g}")
                auto = getattr(used, name, None) if used is not None else None
                edit.setPlaceholderText(f"auto ({auto:.1f})" if auto is not None else "auto")
            self.nnorm_combo.setCurrentIndex(max(0, self.nnorm_combo.findData(doc.params.nnorm)))
            if doc.params.nnorm is None and used is not None:
                self.nnorm_combo.setItemText(0, f"auto ({used.nnorm})")
            else:
                self.nnorm_combo.setItemText(0, "auto")
            self.nvict_spin.setValue(int(doc.params.nvict))
            self.flatten_check.setChecked(bool(doc.params.flatten))
            self.show_combo.setCurrentIndex(0 if doc.use_flat else 1)
            energy = doc.data.energy_ev
            self.raw_item.setData(energy, doc.data.mu)
            lines = [f"{doc.data.channel} · {len(energy)} points, {energy[0]:.1f}–{energy[-1]:.1f} eV"]
            if doc.norm is not None:
                self.pre_item.setData(energy, doc.norm.pre_edge_line)
                self.post_item.setData(energy, doc.norm.post_edge_curve)
                self.e0_line.setPos(doc.norm.e0)
                self.e0_line.setVisible(True)
                lines.append(f"E0 = {doc.norm.e0:.2f} eV, edge step = {doc.norm.edge_step:.4g}")
                lines += list(doc.norm.warnings)
            else:
                self.pre_item.setData([], [])
                self.post_item.setData([], [])
                self.e0_line.setVisible(False)
                lines.append(f"<span style='color:#b00'>Not normalized: {doc.norm_error}</span>"
                             if doc.norm_error else "Normalizing…")
            lines += [f"<span style='color:#666'>{w}</span>" for w in doc.data.warnings]
            self.norm_info.setText("<br>".join(lines))
            self.preview.enableAutoRange()
        finally:
            self._updating = False

    def params_from_editor(self) -> NormParams:
        """The parameters typed in the editor.

        Raises:
            ValueError: a field is not a number (the message names it).
        """
        values: dict[str, Any] = {}
        for name, edit in self.fields.items():
            text = edit.text().strip().replace(",", ".")
            if not text:
                values[name] = None
                continue
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{name}: {edit.text()!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{name}: {edit.text()!r} is not a finite number")
            values[name] = value
        return NormParams(nnorm=self.nnorm_combo.currentData(), nvict=int(self.nvict_spin.value()),
                          flatten=self.flatten_check.isChecked(), **values)

    def apply_params(self) -> None:
        """Send the editor's parameters to the state (renormalizes when they changed)."""
        if self._updating:
            return
        doc = self.measured.doc()
        if doc is None:
            return
        try:
            params = self.params_from_editor()
        except ValueError as exc:
            self.state.messages.errorMessage.emit(f"{doc.label}: {exc}")
            return
        if params != doc.params:
            self.measured.set_norm_params(doc.id, params)

    def set_param_text(self, name: str, text: str) -> None:
        """Type a value into a field and apply it (as pressing Enter does)."""
        self.fields[name].setText(text)
        self.apply_params()

    def _reset_params(self) -> None:
        doc = self.measured.doc()
        if doc is not None:
            self.measured.set_norm_params(doc.id, NormParams())

    def _on_show_combo(self, index: int) -> None:
        doc = self.measured.doc()
        if not self._updating and doc is not None and index >= 0:
            self.measured.set_use_flat(doc.id, bool(self.show_combo.itemData(index)))

    # ------------------------------------------------------------- alignment
    def _show_align(self, align) -> None:
        self._updating = True
        try:
            self.shift_spin.setValue(align.shift_ev)
            self.broaden_spin.setValue(align.broaden_fwhm_ev)
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(align.broaden_kind)))
            self.window_check.setChecked(align.window is not None)
            for spin in (self.window_lo, self.window_hi):
                spin.setEnabled(align.window is not None)
            if align.window is not None:
                self.window_lo.setValue(align.window[0])
                self.window_hi.setValue(align.window[1])
        finally:
            self._updating = False

    def _on_window_toggled(self, checked: bool) -> None:
        for spin in (self.window_lo, self.window_hi):
            spin.setEnabled(checked)
        if self._updating:
            return  # showing the state's settings, not a user change
        if checked and self.window_hi.value() <= self.window_lo.value():
            # Start from the current measured spectrum's edge region.
            doc = self.measured.doc()
            e0 = doc.norm.e0 if doc is not None and doc.norm is not None else None
            if e0 is not None:
                self.window_lo.setValue(e0 - 20.0)
                self.window_hi.setValue(e0 + 60.0)
        self._on_align_controls()

    def _on_align_controls(self, *_args) -> None:
        if self._updating:
            return
        window = None
        if self.window_check.isChecked() and self.window_hi.value() > self.window_lo.value():
            window = (float(self.window_lo.value()), float(self.window_hi.value()))
        self.measured.set_align(shift_ev=float(self.shift_spin.value()),
                                broaden_fwhm_ev=float(self.broaden_spin.value()),
                                broaden_kind=str(self.kind_combo.currentData()), window=window)

    def _show_metrics(self, comparisons: dict) -> None:
        """Metrics of the selected measured spectrum (others in the tooltip)."""
        current = self.measured.current_id
        if not comparisons:
            target = self.measured.comparison_target()
            self.metrics_label.setText("Predict a spectrum to compare" if target is None else "—")
            self.metrics_label.setToolTip("")
            self.export_button.setEnabled(False)
            return
        lines, tips = [], []
        for measured_id, result in comparisons.items():
            doc = self.measured.doc(measured_id)
            name = doc.label if doc else measured_id
            if isinstance(result, str):
                text = f"{name}: {result}"
            else:
                values = ", ".join(f"{label} {result.metrics.get(key, float('nan')):.4g}"
                                   for key, label in METRIC_NAMES)
                text = f"{name}: {values} ({result.window[0]:.1f}–{result.window[1]:.1f} eV)"
            tips.append(text)
            if measured_id == current or (current not in comparisons and not lines):
                if isinstance(result, str):
                    lines.append(f"<span style='color:#b00'>{result}</span>")
                else:
                    rows = "".join(f"<tr><td>{label}</td><td align='right'>&nbsp;"
                                   f"{result.metrics.get(key, float('nan')):.4f}</td></tr>"
                                   for key, label in METRIC_NAMES)
                    lines.append(f"<b>{name}</b> vs prediction, {result.window[0]:.1f}–{result.window[1]:.1f} eV"
                                 f"<table>{rows}</table>")
        self.metrics_label.setText("".join(lines) or "—")
        self.metrics_label.setToolTip("\n".join(tips))
        ok = comparisons.get(current)
        self.export_button.setEnabled(ok is not None and not isinstance(ok, str))

    def metrics_text(self) -> str:
        """The metrics as plain text (tests)."""
        return self.metrics_label.text()
