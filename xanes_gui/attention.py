"""Attention panel: the neighbours a predicted site's readout attends to most.

Shows, for one predicted absorber, a bar chart and a table of its top
neighbours (element, distance, weight) taken from
:class:`~model_core.types.SiteAttention`, the weights relative to their uniform
share (1 = what uniform attention gives, dashed line) with the first shell's total,
so that near-uniform attention reads as such rather than as importance; choosing
"Colour atoms by attention" recolours the 3-D view (see :mod:`xanes_gui.viewer3d`).
"Attribution" runs the occlusion attribution of the site in a worker
(``Backend.site_attribution``) over the whole grid, or over the spectra plot's visible
energy range when "Attribution window" is checked; the result is kept in
``state.attributions`` (the 3-D view colours atoms by it) and each neighbour's value
is added to the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from model_core.trust.attribution import FirstShell, first_shell, relative_attention
from model_core.types import Prediction, SiteAttention, Structure
from xanes_gui.elements import color_hex
from xanes_gui.plots import SpectraPlots
from xanes_gui.sitetable import fit_columns
from xanes_gui.state import AppState
from xanes_gui.state.interpret import _with_predictor
from xanes_gui.tasks import LatestWins, Task

TOP_N = 12
#: Least free space between two bar labels (pixels).
LABEL_GAP_PX = 6


@dataclass(frozen=True)
class Neighbour:
    """One attended graph node."""

    atom_index: int
    element: str
    image: tuple[int, int, int]
    distance: float
    weight: float
    relative: float


def top_neighbours(attention: SiteAttention, structure: Structure, n: int = TOP_N) -> list[Neighbour]:
    """The ``n`` highest-weight nodes (the absorber itself has weight 0 and is skipped);
    ``relative`` is the weight over its uniform share (see :func:`relative_attention`)."""
    order = np.argsort(-attention.weight, kind="stable")
    relative = relative_attention(attention)
    symbols = structure.symbols
    out = []
    for k in order:
        if attention.weight[k] <= 0 or len(out) >= n:
            break
        i = int(attention.atom_index[k])
        out.append(Neighbour(i, symbols[i] if i < len(symbols) else "?", tuple(int(v) for v in attention.image[k]),
                             float(attention.distance[k]), float(attention.weight[k]), float(relative[k])))
    return out


def first_shell_text(shell: FirstShell) -> str:
    """One line: the first shell's attention total against its uniform share."""
    if shell.n_atoms == 0:
        return "first shell: no neighbours"
    return (f"first shell ({shell.n_atoms} atoms within {shell.radius_ang:.2f} Å): total "
            f"{shell.attention_share:.3f} of its uniform share {shell.uniform_share:.3f} "
            f"({shell.relative:.2f}× uniform)")


def label_stride(label_widths_px: Sequence[float], spacing_px: float, gap_px: float = LABEL_GAP_PX) -> int:
    """Label every k-th bar, with the smallest k for which neighbouring labels do not touch.

    Args:
        label_widths_px: width of each label in pixels.
        spacing_px: distance between neighbouring bars in pixels.
    """
    widest = max(label_widths_px, default=0.0)
    if widest <= 0:
        return 1
    if spacing_px <= 0:
        return max(1, len(label_widths_px))
    return max(1, math.ceil((widest + gap_px) / spacing_px))


class AttentionPanel(QWidget):
    """Bar chart + table of the top neighbours of one predicted site."""

    def __init__(self, state: AppState, parent=None, plots: SpectraPlots | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.plots = plots
        self.site_combo = QComboBox(self)
        self.color_check = QCheckBox("Colour atoms by attention", self)
        self.info = QLabel("Predict to see which neighbours the model attends to.", self)
        self.info.setWordWrap(True)
        self.chart = pg.PlotWidget(self)
        self.chart.setBackground("w")
        self.chart.setLabel("left", "weight / uniform share")
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.setMinimumHeight(170)
        self.chart.hideButtons()
        for axis in ("left", "bottom"):
            self.chart.getAxis(axis).setPen("k")
            self.chart.getAxis(axis).setTextPen("k")
            self.chart.getAxis(axis).enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="b", pen="k")
        self.chart.addItem(self.bars)
        self.uniform_line = pg.InfiniteLine(pos=1.0, angle=0, pen=pg.mkPen("k", style=Qt.PenStyle.DashLine),
                                            label="uniform", labelOpts={"position": 0.95, "color": "k"})
        self.chart.addItem(self.uniform_line)
        self.shell_label = QLabel("", self)
        self.shell_label.setWordWrap(True)
        self.shell_label.setToolTip("Attention on the first coordination shell against what uniform attention "
                                    "gives it: near 1 means the model does not single these atoms out")
        self._labels: list[str] = []
        self.chart.getViewBox().sigResized.connect(self._update_ticks)
        self.table = QTableWidget(0, 7, self)
        self.table.setHorizontalHeaderLabels(["Atom", "Element", "Image", "Distance (Å)", "Weight", "× uniform",
                                              "Attribution"])
        self.table.horizontalHeaderItem(5).setToolTip("Weight over its uniform share (1 = uniform attention)")
        self.table.horizontalHeaderItem(6).setToolTip(
            "Occlusion: RMS change of the ensemble-mean μ over the window (the whole grid, or the plot's "
            "visible range) when the atom is removed from the graph (normalized μ); press Attribution")
        self.attribution_button = QPushButton("Attribution", self)
        self.attribution_button.setToolTip("How much removing each neighbour changes the prediction (seconds)")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        # Short text: the panel must fit a narrow dock.
        self.window_check = QCheckBox("Window: plot's range", self)
        self.window_check.setToolTip("Attribution window: the spectra plot's visible energy range "
                                     "(unchecked: the model's whole energy grid)")
        self.window_check.setEnabled(plots is not None)
        self.window_label = QLabel("", self)
        self.window_label.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        fit_columns(self.table.horizontalHeader())

        top = QHBoxLayout()
        top.addWidget(QLabel("Site:", self))
        top.addWidget(self.site_combo, 1)
        top.addWidget(self.color_check)
        # A row of its own: beside the site combo the buttons would widen the dock.
        actions = QHBoxLayout()
        actions.addWidget(self.attribution_button)
        actions.addWidget(self.cancel_button)
        actions.addStretch(1)
        window_row = QHBoxLayout()
        window_row.addWidget(self.window_check)
        window_row.addWidget(self.window_label, 1)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.chart)
        splitter.addWidget(self.table)
        splitter.setSizes([220, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(actions)
        layout.addLayout(window_row)
        layout.addWidget(self.info)
        layout.addWidget(self.shell_label)
        layout.addWidget(splitter, 1)

        self._prediction: Prediction | None = None
        self._updating = False
        self.neighbours: list[Neighbour] = []
        self._predictors: dict[tuple[str, str], object] = {}
        self._latest = LatestWins(state.tasks)
        self.attribution_button.clicked.connect(self.run_attribution)
        self.cancel_button.clicked.connect(self._cancel_attribution)
        self.site_combo.currentIndexChanged.connect(self._on_site_combo)
        self.color_check.toggled.connect(self._on_color_check)
        state.predictions.predictionReady.connect(self._on_prediction)
        state.structures.currentStructureChanged.connect(self._on_current)
        state.view.viewSettingsChanged.connect(self._on_view)
        state.attributions.attributionReady.connect(lambda *_: self._refresh())

    def _on_color_check(self, on: bool) -> None:
        # Unchecked by _on_view when another colour mode (attribution) was chosen: keep that one.
        if not self._updating:
            self.state.view.set_view(color_mode="attention" if on else "element")

    def _on_current(self, doc_id: str) -> None:
        self._show(self.state.predictions.shown_prediction(doc_id) if doc_id else None)

    def _on_prediction(self, doc_id: str, prediction: Prediction) -> None:
        if doc_id == self.state.structures.current_id:
            self._show(prediction)

    def _on_view(self, view) -> None:
        self._updating = True
        try:
            self.color_check.setChecked(view.color_mode == "attention")
        finally:
            self._updating = False
        self._refresh()

    def _show(self, prediction: Prediction | None) -> None:
        self._prediction = prediction
        self._updating = True
        try:
            self.site_combo.clear()
            if prediction is not None and prediction.attention:
                doc = self.state.structures.current
                for site in prediction.site_indices:
                    symbol = doc.structure.symbols[int(site)] if doc else ""
                    self.site_combo.addItem(f"{symbol} {int(site)}", int(site))
                wanted = self.state.view.settings.attention_site
                index = self.site_combo.findData(wanted) if wanted is not None else 0
                self.site_combo.setCurrentIndex(max(index, 0))
        finally:
            self._updating = False
        self._refresh()

    def run_attribution(self) -> Task | None:
        """Attribute the shown site in a worker; the table gains the values when it is done."""
        prediction, doc, index = self._prediction, self.state.structures.current, self.site_combo.currentIndex()
        if prediction is None or doc is None or index < 0:
            return None
        site, device = int(self.site_combo.itemData(index)), self.state.predictions.device
        key = (prediction.model_name, device)
        window_ev = self.plot_window_ev(index) if self.window_check.isChecked() else None
        task = Task(_with_predictor, self.state.backend, self._predictors.get(key), prediction.model_name, device,
                    self.state.backend.site_attribution, doc.structure, site, window_ev)

        def succeeded(result, doc_id=doc.id, model_name=prediction.model_name) -> None:
            self._predictors[key] = result["predictor"]
            self.state.attributions.put(doc_id, model_name, result["result"])
            self.state.messages.status(f"Attribution of site {site} done")

        self._latest.start(task, "attribution", succeeded=succeeded,
                           failed=lambda message: self.state.messages.error(f"Attribution failed: {message}"),
                           cancelled=lambda: self.state.messages.status("Attribution cancelled"),
                           ended=lambda: self._set_running(False))
        self._set_running(True)
        self.state.messages.status(f"Attribution of site {site} (one prediction per neighbour)…")
        return task

    def plot_window_ev(self, index: int) -> tuple[float, float] | None:
        """The spectra plot's visible energy range in eV relative to the edge of site ``index``.

        The plot shows E − E0, or absolute energies (the site's E0, or a measured E0,
        plus any alignment shift); the site's curve tells which offset was added.
        """
        if self.plots is None or self._prediction is None:
            return None
        lo, hi = self.plots.visible_energy_range()
        site = int(self._prediction.site_indices[index])
        grid = self._prediction.site_spectrum(index).energy_ev
        curve = next((c for c in self.plots.curves if c.kind == "prediction" and c.site == site and len(c.energy)),
                     None)
        offset = float(curve.energy[0] - grid[0]) if curve is not None else 0.0
        return lo - offset, hi - offset

    def _cancel_attribution(self) -> None:
        task = self._latest.running("attribution")
        if task is not None:
            task.cancel()

    def _set_running(self, running: bool) -> None:
        self.attribution_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_site_combo(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.state.view.set_view(attention_site=int(self.site_combo.itemData(index)))
            self._refresh()

    def _update_ticks(self, *_args) -> None:
        # A label under every bar overlaps in a narrow dock: label every k-th
        # bar (all bars keep a tick mark) so that the labels shown fit.
        axis = self.chart.getAxis("bottom")
        metrics = QFontMetrics(axis.style["tickFont"] or axis.font())
        widths = [metrics.boundingRect(QRect(0, 0, 100, 100), int(Qt.AlignmentFlag.AlignCenter), text).width()
                  for text in self._labels]
        spacing = self.chart.getViewBox().width() / max(len(self._labels), 1)
        stride = label_stride(widths, spacing)
        labelled = [(k, text) for k, text in enumerate(self._labels) if k % stride == 0]
        unlabelled = [(k, "") for k in range(len(self._labels)) if k % stride]
        axis.setTicks([labelled, unlabelled])

    def _refresh(self) -> None:
        prediction, doc = self._prediction, self.state.structures.current
        index = self.site_combo.currentIndex()
        if prediction is None or doc is None or not prediction.attention or index < 0:
            self.neighbours = []
            self.info.setText("Predict to see which neighbours the model attends to." if prediction is None
                              else "This model reports no attention.")
            self.shell_label.setText("")
        else:
            self.neighbours = top_neighbours(prediction.attention[index], doc.structure)
            self.info.setText(f"Top {len(self.neighbours)} neighbours of {self.site_combo.currentText()}")
            self.shell_label.setText(first_shell_text(first_shell(prediction.attention[index])))
        x = np.arange(len(self.neighbours))
        heights = [n.relative for n in self.neighbours]
        brushes = [pg.mkBrush(color_hex(doc.structure.atomic_numbers[n.atom_index])) if doc else pg.mkBrush("b")
                   for n in self.neighbours]
        self.bars.setOpts(x=x, height=heights, width=0.7, brushes=brushes or None, brush="b", pen="k")
        self._labels = [f"{n.element}\n{n.distance:.2f}" for n in self.neighbours]
        self._update_ticks()
        self.chart.setLabel("bottom", "neighbour (element, distance Å)")
        if len(x):
            self.chart.setXRange(-0.6, len(x) - 0.4, padding=0)
            # The uniform line stays in view even when every bar is below it.
            self.chart.setYRange(0, max(max(heights), 1.0) * 1.1, padding=0)
        result = self.state.attributions.get(doc.id, prediction.model_name, int(self.site_combo.itemData(index))) \
            if self.neighbours else None
        attributed = {} if result is None else {
            (int(i), tuple(int(v) for v in image)): float(a)
            for i, image, a in zip(result.atom_index, result.image, result.attribution)}
        self.window_label.setText("" if result is None else
                                  "window {:g}…{:g} eV (E − E0)".format(*result.window_ev))
        self.table.setRowCount(len(self.neighbours))
        for row, n in enumerate(self.neighbours):
            value = attributed.get((n.atom_index, n.image))
            values = (str(n.atom_index), n.element, "({}, {}, {})".format(*n.image),
                      f"{n.distance:.3f}", f"{n.weight:.4f}", f"{n.relative:.2f}",
                      "" if value is None else f"{value:.4g}")
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col != 1:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.table.setItem(row, col, item)
