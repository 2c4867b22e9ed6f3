"""The predicted edge energy in the app: the site table's E0 column and the E0 marker on the
absolute axis (numbers from the Prediction, plot items created once)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import Qt

from model_core.types import Band
from tests.xanes_gui.fakes import FakePredictor, cu4o_cluster, open_and_predict
from xanes_gui.plots import e0_text
from xanes_gui.sitetable import COLUMNS, E0_COLUMN


class CalibratedE0Predictor(FakePredictor):
    """The fake predictor with the members' E0 spread and a calibrated 90% E0 interval
    (half-width 0.3 eV + the site index / 10; spread half of it)."""

    def predict(self, structure, sites, progress=None):
        prediction = super().predict(structure, sites, progress)
        half = 0.3 + 0.1 * np.asarray(prediction.site_indices, dtype=float)
        return replace(prediction, e0_spread_ev=0.5 * half, e0_lo_ev=prediction.e0_ev - half,
                       e0_hi_ev=prediction.e0_ev + half, e0_band=Band(0.9, "fake conformal"))


def _trivial(window):
    from model_core.symmetry import trivial_symmetry

    window.state.backend = replace(window.state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))


def _cells(window, role=Qt.ItemDataRole.DisplayRole):
    model = window.site_panel.model
    return [model.data(model.index(row, E0_COLUMN), role) for row in range(model.rowCount())]


@pytest.mark.parametrize("predictor", [CalibratedE0Predictor()], ids=["calibrated"])
def test_e0_column_shows_the_calibrated_interval_and_spread(qtbot, window, tmp_path, predictor):
    _trivial(window)
    window.show()
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2])
    assert COLUMNS[E0_COLUMN] == "E0 (eV)"
    # The last (stretched) column has room for its contents: nothing is elided.
    table = window.site_panel.table
    assert table.horizontalHeader().sectionSize(E0_COLUMN) >= table.sizeHintForColumn(E0_COLUMN)
    e0 = prediction.e0_ev
    assert _cells(window) == ["", f"{e0[0]:.1f} ± 0.4", f"{e0[1]:.1f} ± 0.5", "", ""]
    tips = _cells(window, Qt.ItemDataRole.ToolTipRole)
    assert tips[0] is None
    assert "90% interval" in tips[1] and f"{e0[0] - 0.4:.2f}" in tips[1] and "spread" in tips[1] and "0.20" in tips[1]
    # Sorted numerically by E0, unpredicted rows last.
    window.site_panel.table.sortByColumn(E0_COLUMN, Qt.SortOrder.DescendingOrder)
    proxy = window.site_panel.proxy
    assert [proxy.index(r, 0).data() for r in range(2)] == [2, 1]


def test_e0_column_without_calibration_and_equivalent_sites(qtbot, window, tmp_path):
    # The fake symmetry makes the 4 Cu equivalent: they share the representative's E0.
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2, 3, 4])
    texts = _cells(window)
    assert texts == ["", *[f"{prediction.e0_ev[0]:.1f}"] * 4]
    tip = _cells(window, Qt.ItemDataRole.ToolTipRole)[1]
    assert "uncalibrated" in tip and "Single model" in tip


@pytest.mark.parametrize("predictor", [FakePredictor(with_e0=False)], ids=["no-e0"])
def test_no_e0_head_leaves_the_column_empty(qtbot, window, tmp_path, predictor):
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    assert _cells(window) == [""] * 5


@pytest.mark.parametrize("predictor", [CalibratedE0Predictor()], ids=["calibrated"])
def test_absolute_axis_marks_each_curves_e0(qtbot, window, tmp_path, predictor):
    _trivial(window)
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2])
    plots = window.plots
    # Edge-relative axis: no marker, no E0 in the legend.
    assert all(c.e0_ev is None for c in plots.curves)
    assert not any(point.isVisible() for point, _ in plots._e0_marks.values())
    window.absolute_action.trigger()
    curves = {c.label: c for c in plots.curves}
    np.testing.assert_allclose([curves["Cu1"].e0_ev, curves["Cu2"].e0_ev], prediction.e0_ev)
    assert curves["Cu1"].e0_halfwidth_ev == pytest.approx(0.4)
    assert curves["average"].e0_ev == pytest.approx(prediction.average_e0_ev)
    assert curves["average"].e0_halfwidth_ev == pytest.approx(0.45)
    legend = [label.text for _, label in plots.legend.items]
    assert any(text.startswith("Cu2") and e0_text(curves["Cu2"]) in text for text in legend)
    assert e0_text(curves["Cu2"]) == f"E0 {prediction.e0_ev[1]:.1f} ± 0.5 eV"
    point, bar = plots._e0_marks["Cu2"]
    assert point.isVisible() and bar.isVisible()
    x, y = point.getData()
    assert x[0] == pytest.approx(prediction.e0_ev[1])
    assert y[0] == pytest.approx(np.interp(x[0], curves["Cu2"].energy, curves["Cu2"].mu))
    assert bar.opts["left"] == pytest.approx(0.5)
    # Created once: back and forth between the axes reuses the items and hides them.
    marks = {label: tuple(map(id, items)) for label, items in plots._e0_marks.items()}
    window.edge_action.trigger()
    assert not any(p.isVisible() or b.isVisible() for p, b in plots._e0_marks.values())
    window.absolute_action.trigger()
    assert {label: tuple(map(id, items)) for label, items in plots._e0_marks.items()} == marks
    # A hidden curve hides its marker.
    window.state.view.set_view(hidden_curves=frozenset({"Cu2"}))
    assert not plots._e0_marks["Cu2"][0].isVisible() and plots._e0_marks["Cu1"][0].isVisible()


def test_uncalibrated_e0_is_marked_without_a_bar(qtbot, window, tmp_path):
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    window.absolute_action.trigger()
    (curve,) = window.plots.curves
    assert curve.e0_ev is not None and curve.e0_halfwidth_ev is None
    assert e0_text(curve) == f"E0 {curve.e0_ev:.1f} eV"
    point, bar = window.plots._e0_marks[curve.label]
    assert point.isVisible() and not bar.isVisible()


def test_aligned_curve_is_marked_where_it_is_drawn_and_labelled_with_the_prediction(qtbot):
    from tests.xanes_gui.fakes import GRID, synthetic_edge
    from model_core.types import Prediction
    from xanes_gui.plots import SpectraPlots, curves_for

    mu = synthetic_edge(GRID)[None]
    prediction = Prediction(energy_ev=GRID, site_indices=[0], weights=[1.0], mu=mu, average=mu[0],
                            e0_ev=[8980.0], e0_lo_ev=[8979.7], e0_hi_ev=[8980.3], e0_band=Band(0.9, "m"))
    (curve,) = curves_for(prediction, "absolute", shift_ev=-2.0)
    assert curve.e0_ev == 8980.0 and e0_text(curve) == "E0 8980.0 ± 0.3 eV"
    assert curve.energy[0] == pytest.approx(GRID[0] + 8978.0)
    # The fallback E0 of a measured spectrum is no prediction: nothing is marked.
    bare = replace(prediction, e0_ev=None, e0_lo_ev=None, e0_hi_ev=None, e0_band=None)
    assert curves_for(bare, "absolute", e0_fallback=8990.0)[0].e0_ev is None
    plots = SpectraPlots()
    qtbot.addWidget(plots)
    plots.set_curves([curve])
    x, _ = plots._e0_marks[curve.label][0].getData()
    assert x[0] == pytest.approx(8978.0)


class FixedOriginPredictor(FakePredictor):
    """A model trained on a grid of one fixed origin (FDMNES Fe data: the tabulated edge)."""

    def predict(self, structure, sites, progress=None):
        return replace(super().predict(structure, sites, progress), grid_origin_ev=7112.0)


@pytest.mark.parametrize("predictor", [FixedOriginPredictor()], ids=["fixed-origin"])
def test_edge_axis_of_a_fixed_origin_model_names_that_energy(qtbot, window, tmp_path, predictor):
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    assert window.plots.panels[0].getAxis("bottom").labelText == "E − 7112 (eV)"
    assert "7112" in window.edge_action.text()
