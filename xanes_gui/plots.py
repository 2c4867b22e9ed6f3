"""Spectra panels: μ(E), dμ/dE and d²μ/dE² sharing one energy axis, with a crosshair.

:func:`curves_for` turns a :class:`~model_core.types.Prediction` into the
curves that are shown (and exported, see :mod:`xanes_gui.export`), so the
plots and the CSV always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from model_core.spectra.absolute import on_absolute_grid
from model_core.types import Prediction

AVERAGE_LABEL = "average"


@dataclass(frozen=True, eq=False)
class Curve:
    """One displayed spectrum and its derivatives.

    Attributes:
        label: legend text, unique within a plot.
        energy: (G,) energies in eV (edge-relative or absolute, see ``reference``).
        mu: (G,) absorption.
        d1: (G,) dμ/dE.
        d2: (G,) d²μ/dE².
        reference: "edge" or "absolute".
        site: the absorber atom index, or None for the average.
        weight: the site's weight in the average (the total for the average).
        kind: "prediction" (ML), "measured", "feff" or "fit" (an interpretation overlay).
        color: RGB colour; None picks one from the site palette by position.
        dashed: draw with a dashed line (FEFF10 curves).
        spread: (G,) disagreement of an ensemble model's members (standard deviation),
            drawn as a band of ±spread around μ when there is no calibrated ``band``;
            None for single models and other kinds.
        band: (lower, upper) (G,) calibrated interval, drawn instead of ±spread.
        band_label: what the band means, shown in the legend ("90% band",
            "members' spread (uncalibrated)"); "" without a band.
        warning: appended to the legend text ("" for none), e.g. :data:`OUT_OF_DOMAIN_WARNING`.
        e0_ev: the prediction's absolute edge energy, given in the legend and marked on the
            curve; None on the edge-relative axis and for other kinds.
        e0_halfwidth_ev: half-width of its calibrated interval (None when uncalibrated).
        e0_shift_ev: the alignment shift the curve is drawn with: the mark sits at
            ``e0_ev + e0_shift_ev`` on the axis.
    """

    label: str
    energy: np.ndarray
    mu: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    reference: str
    site: int | None
    weight: float
    kind: str = "prediction"
    color: tuple[int, int, int] | None = None
    dashed: bool = False
    spread: np.ndarray | None = None
    band: tuple[np.ndarray, np.ndarray] | None = None
    band_label: str = ""
    warning: str = ""
    e0_ev: float | None = None
    e0_halfwidth_ev: float | None = None
    e0_shift_ev: float = 0.0


#: Legend suffix of a predicted curve whose site (or any averaged site) has a domain score > 1.
OUT_OF_DOMAIN_WARNING = "⚠ outside training domain"
#: Legend text of a band that is only the members' standard deviation.
UNCALIBRATED_BAND_LABEL = "members' spread (uncalibrated)"


def derivatives(energy: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivative of μ(E) for display (central differences on a possibly uneven grid)."""
    energy = np.asarray(energy, dtype=float)
    mu = np.asarray(mu, dtype=float)
    if len(energy) < 3:
        zeros = np.zeros_like(mu)
        return zeros, zeros.copy()
    d1 = np.gradient(mu, energy)
    return d1, np.gradient(d1, energy)


def has_absolute_energies(prediction: Prediction | None) -> bool:
    """Whether absolute energies can be shown (the model predicted E0, or its grid has a
    fixed origin)."""
    return prediction is not None and prediction.site_zero_ev is not None and len(prediction.site_zero_ev) > 0


def curves_for(prediction: Prediction, reference: str = "edge",
               site_labels: Mapping[int, str] | None = None, shift_ev: float = 0.0,
               e0_fallback: float | None = None) -> list[Curve]:
    """The curves shown for a prediction: one per site, then the weighted average.

    Args:
        prediction: the prediction.
        reference: "edge" for E - E0, "absolute" for E (falls back to "edge"
            when the prediction has no E0 and no ``e0_fallback``).
        site_labels: legend text per site index (default "site <i>").
        shift_ev: added to absolute energies (the alignment shift with a measured spectrum).
        e0_fallback: edge energy used for every site when the model predicts none
            (the measured E0, as :func:`model_core.spectra.align.compare` places it).

    Returns:
        Curves in legend order; the average only when there are several sites.
    """
    own_e0 = has_absolute_energies(prediction)
    absolute = reference == "absolute" and (own_e0 or e0_fallback is not None)
    ref = "absolute" if absolute else "edge"
    labels = site_labels or {}

    def place(e0: float | None) -> float:
        if not absolute:
            return 0.0
        return float((e0 if own_e0 and e0 is not None else e0_fallback) or 0.0) + float(shift_ev)

    spread = prediction.mu_spread
    lo, hi = prediction.mu_lo, prediction.mu_hi
    band_label = prediction.band.label if prediction.band is not None else (
        UNCALIBRATED_BAND_LABEL if spread is not None else "")
    scores = prediction.domain_score
    outside = np.zeros(len(prediction.site_indices), dtype=bool) if scores is None else np.asarray(scores) > 1.0
    # The marker shows the model's own E0, never a fallback.
    marked = absolute and own_e0 and prediction.e0_ev is not None
    halfwidth = prediction.e0_halfwidth_ev
    curves = []
    for k, site in enumerate(prediction.site_indices):
        spectrum = prediction.site_spectrum(k)
        energy = spectrum.energy_ev + place(spectrum.zero_ev)
        d1, d2 = derivatives(energy, spectrum.mu)
        curves.append(Curve(labels.get(int(site), f"site {int(site)}"), energy, spectrum.mu, d1, d2, ref,
                            int(site), float(prediction.weights[k]),
                            spread=None if spread is None else spread[k],
                            band=None if lo is None else (lo[k], hi[k]), band_label=band_label,
                            warning=OUT_OF_DOMAIN_WARNING if outside[k] else "",
                            e0_ev=spectrum.e0_ev if marked else None, e0_shift_ev=float(shift_ev),
                            e0_halfwidth_ev=float(halfwidth[k]) if marked and halfwidth is not None else None))
    if len(prediction.site_indices) > 1:
        average = prediction.average_spectrum()
        energy, mu, avg_spread = average.energy_ev + place(average.zero_ev), average.mu, prediction.average_spread
        band = prediction.average_band
        if absolute and own_e0:
            # Sites at different E0 are averaged on one absolute grid, as xanes-predict does.
            placed = on_absolute_grid(prediction)
            energy, mu, avg_spread, band = (placed.energy_ev + float(shift_ev), placed.average, placed.spread,
                                            placed.band)
        d1, d2 = derivatives(energy, mu)
        interval = prediction.average_e0_interval_ev
        curves.append(Curve(AVERAGE_LABEL, energy, mu, d1, d2, ref, None,
                            float(np.sum(prediction.weights)), spread=avg_spread,
                            band=band, band_label=band_label,
                            warning=OUT_OF_DOMAIN_WARNING if outside.any() else "",
                            e0_ev=average.e0_ev if marked else None, e0_shift_ev=float(shift_ev),
                            e0_halfwidth_ev=0.5 * (interval[1] - interval[0]) if marked and interval else None))
    return curves


def measured_curve(label: str, energy: np.ndarray, mu: np.ndarray, color: tuple[int, int, int],
                   kind: str = "measured") -> Curve:
    """A measured (normalized) spectrum as a curve on absolute energies (``kind`` "fit": a fitted
    or previewed curve of :mod:`xanes_gui.state.interpret`, drawn dashed)."""
    d1, d2 = derivatives(energy, mu)
    return Curve(label, np.asarray(energy, dtype=float), np.asarray(mu, dtype=float), d1, d2, "absolute", None,
                 1.0, kind=kind, color=color, dashed=kind == "fit")


def feff_curves(result, reference: str, color_for, shift_ev: float = 0.0) -> list[Curve]:
    """Curves of a FEFF10 result: "FEFF <preset> site i" per site, then the weighted average.

    Args:
        result: a :class:`xanes_gui.comparison.FeffResult`.
        reference: "edge" (energy_rel_ev from the xmu.dat) or "absolute" (omega).
        color_for: index -> RGB colour.
        shift_ev: added to absolute energies (alignment shift when FEFF is the comparison target).
    """
    from xanes_gui.comparison import relative_energies

    curves = []
    items = [(f"FEFF {result.preset} site {s.site}", s.spectrum, s.site, float(len(s.stands_for) or 1))
             for s in result.spectra]
    if result.average is not None:
        items.append((f"FEFF {result.preset} average", result.average, None,
                      float(sum(len(s.stands_for) or 1 for s in result.spectra))))
    for index, (label, spectrum, site, weight) in enumerate(items):
        if reference == "absolute":
            energy = np.asarray(spectrum.energy_ev, dtype=float) + float(shift_ev)
        else:
            energy = relative_energies(spectrum)
        d1, d2 = derivatives(energy, spectrum.mu)
        curves.append(Curve(label, energy, np.asarray(spectrum.mu, dtype=float), d1, d2, reference, site, weight,
                            kind="feff", color=color_for(index), dashed=True))
    return curves


def e0_text(curve: Curve) -> str:
    """Legend text of a curve's edge energy ("E0 8979.1 ± 0.4 eV"; "" without one)."""
    if curve.e0_ev is None:
        return ""
    half = "" if curve.e0_halfwidth_ev is None else f" ± {curve.e0_halfwidth_ev:.1f}"
    return f"E0 {curve.e0_ev:.1f}{half} eV"


def curve_color(index: int, label: str) -> tuple[int, int, int]:
    """Stable colours: black for the average, a qualitative palette for sites."""
    if label == AVERAGE_LABEL:
        return (0, 0, 0)
    palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
               (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
    return palette[index % len(palette)]


class SpectraPlots(pg.GraphicsLayoutWidget):
    """Three linked panels (μ, dμ/dE, d²μ/dE²) with a legend and a crosshair readout.

    Plot items are created the first time a curve label appears and later
    only updated with ``setData``; labels that disappear are hidden, not deleted.

    Signals:
        crosshairMoved(float): energy under the mouse.
    """

    crosshairMoved = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.ci.layout.setSpacing(2)
        titles = (("μ(E)", "μ"), ("dμ/dE", "dμ/dE"), ("d²μ/dE²", "d²μ/dE²"))
        self.panels: list[pg.PlotItem] = []
        for row, (_, ylabel) in enumerate(titles):
            plot = self.addPlot(row=row, col=0)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("left", ylabel)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setPen("k")
                plot.getAxis(axis).setTextPen("k")
                # "(x0.001)" on a derivative axis confuses more than it helps.
                plot.getAxis(axis).enableAutoSIPrefix(False)
            if row:
                plot.setXLink(self.panels[0])
            self.panels.append(plot)
        self.ci.layout.setRowStretchFactor(0, 2)
        self.legend = self.panels[0].addLegend(offset=(-10, -10), labelTextColor="k", brush=(255, 255, 255, 200))
        self._items: dict[str, list[pg.PlotDataItem]] = {}
        # label -> (upper edge, lower edge, fill) of the ensemble band in the μ panel
        self._bands: dict[str, tuple[pg.PlotCurveItem, pg.PlotCurveItem, pg.FillBetweenItem]] = {}
        # label -> (point at E0 on the curve, horizontal bar of its calibrated interval) in the μ panel
        self._e0_marks: dict[str, tuple[pg.PlotDataItem, pg.ErrorBarItem]] = {}
        self._curves: list[Curve] = []
        self._hidden: frozenset[str] = frozenset()
        self._lines = []
        for plot in self.panels:
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self._lines.append(line)
        self.readout = pg.TextItem(anchor=(0, 0), color="k", fill=(255, 255, 255, 210))
        self.readout.setZValue(100)
        self.readout.setVisible(False)
        self.panels[0].addItem(self.readout, ignoreBounds=True)
        self.set_reference("edge")
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # ----------------------------------------------------------------- data
    @property
    def curves(self) -> list[Curve]:
        """The curves currently shown (including hidden ones)."""
        return list(self._curves)

    def set_reference(self, reference: str, origin_ev: float | None = None) -> None:
        """Label the energy axis: absolute, or relative to each site's E0 or (``origin_ev``,
        a model trained on a fixed-origin grid such as FDMNES's Fe data) to one energy."""
        if reference == "absolute":
            text = "E (eV)"
        else:
            text = "E − E0 (eV)" if origin_ev is None else f"E − {origin_ev:.0f} (eV)"
        for plot in self.panels:
            plot.setLabel("bottom", text)

    def set_curves(self, curves: list[Curve], hidden: frozenset[str] = frozenset()) -> None:
        """Show ``curves`` (in legend order); labels in ``hidden`` are kept but not drawn."""
        self._curves = list(curves)
        self._hidden = frozenset(hidden)
        wanted = {c.label for c in curves}
        for label, items in self._items.items():
            if label not in wanted:
                for item in items:
                    item.setData([], [])
                    item.setVisible(False)
        for label, band in self._bands.items():
            if label not in wanted:
                self._show_band(band, None, (0, 0, 0), False)
        for label, mark in self._e0_marks.items():
            if label not in wanted:
                self._show_e0(mark, None, (0, 0, 0), False)
        self.legend.clear()
        for index, curve in enumerate(curves):
            items = self._items.get(curve.label)
            if items is None:
                items = []
                for plot in self.panels:
                    item = pg.PlotDataItem(name=curve.label)
                    plot.addItem(item)
                    items.append(item)
                self.legend.removeItem(items[0])
                self._items[curve.label] = items
            width = 2.5 if curve.label == AVERAGE_LABEL or curve.kind == "measured" else 1.5
            color = curve.color or curve_color(index, curve.label)
            style = Qt.PenStyle.DashLine if curve.dashed else Qt.PenStyle.SolidLine
            pen = pg.mkPen(color, width=width, style=style)
            for item, values in zip(items, (curve.mu, curve.d1, curve.d2)):
                item.setData(curve.energy, values)
                item.setPen(pen)
                item.setVisible(curve.label not in self._hidden)
            if curve.spread is not None or curve.band is not None or curve.label in self._bands:
                band = self._bands.get(curve.label)
                if band is None:
                    upper, lower = pg.PlotCurveItem(), pg.PlotCurveItem()
                    fill = pg.FillBetweenItem(upper, lower)
                    fill.setZValue(-10)  # behind every curve
                    self.panels[0].addItem(fill)
                    band = self._bands[curve.label] = (upper, lower, fill)
                self._show_band(band, curve, color, curve.label not in self._hidden)
            if curve.e0_ev is not None or curve.label in self._e0_marks:
                mark = self._e0_marks.get(curve.label)
                if mark is None:
                    mark = self._e0_marks[curve.label] = (pg.PlotDataItem(), pg.ErrorBarItem())
                    for item in mark:
                        self.panels[0].addItem(item, ignoreBounds=True)
                self._show_e0(mark, curve, color, curve.label not in self._hidden)
            if curve.label not in self._hidden:
                text = f"{curve.label} ({curve.band_label})" if curve.band_label else curve.label
                text = f"{text} · {e0_text(curve)}" if curve.e0_ev is not None else text
                self.legend.addItem(items[0], f"{text} {curve.warning}" if curve.warning else text)
        for plot in self.panels:
            plot.getViewBox().setAutoVisible(y=False)
            plot.enableAutoRange()

    @staticmethod
    def _show_band(band, curve: Curve | None, color, visible: bool) -> None:
        """Fill the calibrated band, else ±spread, around the curve's μ (hidden without either)."""
        upper, lower, fill = band
        if curve is not None and curve.band is not None:
            lower.setData(curve.energy, curve.band[0])
            upper.setData(curve.energy, curve.band[1])
            fill.setBrush(pg.mkBrush(*color, 60))
            fill.setVisible(visible)
            return
        if curve is None or curve.spread is None:
            upper.setData([], [])
            lower.setData([], [])
            fill.setVisible(False)
            return
        upper.setData(curve.energy, curve.mu + curve.spread)
        lower.setData(curve.energy, curve.mu - curve.spread)
        fill.setBrush(pg.mkBrush(*color, 60))
        fill.setVisible(visible)

    @staticmethod
    def _show_e0(mark, curve: Curve | None, color, visible: bool) -> None:
        """A diamond on the curve at its E0 and a bar over the calibrated interval (hidden without E0)."""
        point, bar = mark
        if curve is None or curve.e0_ev is None or not len(curve.energy):
            point.setData([], [])
            point.setVisible(False)
            bar.setVisible(False)
            return
        x = np.array([curve.e0_ev + curve.e0_shift_ev])
        y = np.interp(x, curve.energy, curve.mu)
        point.setData(x, y, pen=None, symbol="d", symbolSize=11, symbolPen=pg.mkPen("k"),
                      symbolBrush=pg.mkBrush(*color))
        point.setVisible(visible)
        half = curve.e0_halfwidth_ev
        bar.setData(x=x, y=y, left=half or 0.0, right=half or 0.0, beam=None, pen=pg.mkPen(color, width=2))
        bar.setVisible(visible and half is not None)

    def focus_x(self, lo: float, hi: float) -> None:
        """Show the energies lo..hi, y ranges fitted to the data visible there.

        A measured scan often spans a keV or more while a prediction covers a
        few tens of eV around the edge: without this the prediction is a spike.
        """
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            return
        for plot in self.panels:
            plot.getViewBox().setAutoVisible(y=True)
            plot.enableAutoRange(axis="y")
        self.panels[0].setXRange(lo, hi, padding=0.02)

    def visible_energy_range(self) -> tuple[float, float]:
        """The energies (lo, hi) the panels show now, in the plot's own axis (see :meth:`set_reference`)."""
        (lo, hi), _ = self.panels[0].getViewBox().viewRange()
        return float(lo), float(hi)

    def set_hidden(self, hidden: frozenset[str]) -> None:
        """Change which curves are drawn."""
        self.set_curves(self._curves, hidden)

    def clear_curves(self) -> None:
        self.set_curves([])

    # ------------------------------------------------------------- crosshair
    def show_crosshair(self, energy: float) -> str:
        """Put the crosshair at ``energy``; returns the readout text (also used by tests)."""
        lines = [f"E = {energy:.2f} eV"]
        for curve in self._curves:
            if curve.label in self._hidden or not len(curve.energy):
                continue
            if curve.energy[0] <= energy <= curve.energy[-1]:
                value = float(np.interp(energy, curve.energy, curve.mu))
                lines.append(f"{curve.label}: {value:.4g}")
        text = "\n".join(lines)
        for line in self._lines:
            line.setPos(energy)
            line.setVisible(True)
        self.readout.setText(text)
        view = self.panels[0].vb.viewRange()
        self.readout.setPos(energy, view[1][1])
        self.readout.setVisible(True)
        self.crosshairMoved.emit(float(energy))
        return text

    def _on_mouse_moved(self, pos: QPointF) -> None:
        for plot in self.panels:
            if plot.sceneBoundingRect().contains(pos):
                energy = plot.vb.mapSceneToView(pos).x()
                self.show_crosshair(float(energy))
                return


class CurveList(QListWidget):
    """Checkable list of the shown curves; unchecking hides a curve.

    Signals:
        visibilityChanged(str, bool): curve label and whether it is shown.
    """

    visibilityChanged = Signal(str, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._updating = False
        self.itemChanged.connect(self._on_item_changed)

    def set_curves(self, labels: list[str], hidden: frozenset[str],
                   colors: list[tuple[int, int, int] | None] | None = None) -> None:
        """Show ``labels`` (colours as in the plot: ``colors[i]`` or the palette by position)."""
        self._updating = True
        try:
            self.clear()
            for index, label in enumerate(labels):
                item = QListWidgetItem(label)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if label in hidden else Qt.CheckState.Checked)
                color = colors[index] if colors and index < len(colors) and colors[index] else None
                item.setForeground(pg.mkColor(color or curve_color(index, label)))
                self.addItem(item)
        finally:
            self._updating = False

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if not self._updating:
            self.visibilityChanged.emit(item.text(), item.checkState() == Qt.CheckState.Checked)
