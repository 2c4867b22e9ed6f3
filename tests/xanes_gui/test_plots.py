"""Spectra panels: ensemble spread bands."""

from __future__ import annotations

import numpy as np

from model_core.types import Prediction
from xanes_gui.plots import AVERAGE_LABEL, SpectraPlots, curves_for


def _prediction(spread: bool) -> Prediction:
    energy = np.linspace(-10, 40, 51)
    mu = np.stack([np.tanh(energy / 5) + 1, np.tanh((energy - 1) / 5) + 1])
    weights = np.array([1.0, 3.0])
    return Prediction(energy_ev=energy, site_indices=np.array([2, 5]), weights=weights, mu=mu,
                      average=np.average(mu, axis=0, weights=weights), model_name="m", trained=True,
                      element="Cu", mu_spread=np.stack([np.full(51, 0.01), np.full(51, 0.03)]) if spread else None)


def test_ensemble_spread_is_drawn_as_a_band_and_cleared(qtbot):
    plots = SpectraPlots()
    qtbot.addWidget(plots)
    curves = curves_for(_prediction(spread=True))
    assert [c.label for c in curves] == ["site 2", "site 5", AVERAGE_LABEL]
    np.testing.assert_allclose(curves[2].spread, 0.025)  # weights 1:3
    plots.set_curves(curves)
    upper, lower, fill = plots._bands[AVERAGE_LABEL]
    np.testing.assert_allclose(upper.getData()[1] - lower.getData()[1], 0.05)
    assert fill.isVisible()
    plots.set_curves(curves, hidden=frozenset({AVERAGE_LABEL}))
    assert not fill.isVisible()
    # A single model's prediction under the same labels leaves no band behind.
    plots.set_curves(curves_for(_prediction(spread=False)))
    assert not fill.isVisible() and len(upper.getData()[0] if upper.getData()[0] is not None else []) == 0


def test_absolute_average_is_the_shared_grid_average_of_xanes_predict():
    from dataclasses import replace

    from model_core.spectra.absolute import on_absolute_grid

    pred = replace(_prediction(spread=True), e0_ev=np.array([8980.0, 8982.0]))
    curves = curves_for(pred, reference="absolute", shift_ev=0.5)
    placed = on_absolute_grid(pred)
    np.testing.assert_allclose(curves[0].energy, pred.energy_ev + 8980.5)  # each site at its own E0
    np.testing.assert_allclose(curves[2].energy, placed.energy_ev + 0.5)
    np.testing.assert_allclose(curves[2].mu, placed.average)
    np.testing.assert_allclose(curves[2].spread, placed.spread)


def test_a_grid_of_fixed_origin_is_drawn_there_with_the_e0_marked_at_the_predicted_e0():
    from dataclasses import replace

    # An FDMNES-trained model: energies against 7112 eV, E0 the Fermi level below it.
    pred = replace(_prediction(spread=False), e0_ev=np.array([7110.2, 7111.0]), grid_origin_ev=7112.0)
    curves = curves_for(pred, reference="absolute", shift_ev=0.5)
    for curve in curves:
        np.testing.assert_allclose(curve.energy, pred.energy_ev + 7112.5)
    assert curves[0].e0_ev == 7110.2 and curves[1].e0_ev == 7111.0
    assert curves[2].e0_ev == (7110.2 + 3 * 7111.0) / 4
    np.testing.assert_allclose(curves[2].mu, pred.average)


def test_the_edge_axis_names_a_fixed_grid_origin_and_the_csv_header_says_it(qtbot):
    from dataclasses import replace

    from xanes_gui.export import csv_metadata

    plots = SpectraPlots()
    qtbot.addWidget(plots)
    plots.set_reference("edge", 7112.0)
    assert plots.panels[0].getAxis("bottom").labelText == "E − 7112 (eV)"
    plots.set_reference("edge")
    assert plots.panels[0].getAxis("bottom").labelText == "E − E0 (eV)"
    plots.set_reference("absolute", 7112.0)
    assert plots.panels[0].getAxis("bottom").labelText == "E (eV)"
    pred = replace(_prediction(spread=False), e0_ev=np.array([7110.2, 7111.0]), grid_origin_ev=7112.0)
    meta = csv_metadata(pred, reference="edge", source="x.xyz", structure_name="x")
    assert meta["energy_reference"].startswith("E - 7112.0 eV")
    assert csv_metadata(_prediction(spread=False), reference="edge", source="x", structure_name="x")[
        "energy_reference"] == "E - E0 (eV)"


def test_calibrated_band_is_drawn_and_its_level_named(qtbot):
    from model_core.types import Band
    from xanes_gui.plots import UNCALIBRATED_BAND_LABEL

    base = _prediction(spread=True)
    assert curves_for(base)[0].band_label == UNCALIBRATED_BAND_LABEL
    calibrated = Prediction(energy_ev=base.energy_ev, site_indices=base.site_indices, weights=base.weights,
                            mu=base.mu, average=base.average, mu_spread=base.mu_spread,
                            mu_lo=base.mu - 0.1, mu_hi=base.mu + 0.2, band=Band(0.9, "test"))
    curves = curves_for(calibrated)
    assert curves[2].band_label == "90% band"
    plots = SpectraPlots()
    qtbot.addWidget(plots)
    plots.set_curves(curves)
    upper, lower, fill = plots._bands[AVERAGE_LABEL]
    np.testing.assert_allclose(upper.getData()[1] - lower.getData()[1], 0.3)
    assert fill.isVisible()
