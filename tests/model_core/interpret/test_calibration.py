"""Energy calibration per element: from a synthetic foil, and from the tabulated edge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_core.interpret.calibration import (Calibration, calibrate_from_reference, calibrate_tabulated,
                                              metal_structure, placement_base, tabulated_edge_ev)
from model_core.sites import select_sites
from model_core.types import Spectrum
from tests.model_core.interpret.conftest import synthetic_measured


def test_xraydb_edges_are_available() -> None:
    assert tabulated_edge_ev("Cu") == pytest.approx(8979.0, abs=1.0)
    assert tabulated_edge_ev("Fe") == pytest.approx(7112.0, abs=1.0)
    with pytest.raises(ValueError):
        tabulated_edge_ev("Xx")


def test_placement_base_without_an_e0_head_is_the_tabulated_edge() -> None:
    energy = np.linspace(-10, 50, 61)
    with_e0 = Spectrum(energy, energy * 0, energy_reference="edge", e0_ev=8990.0)
    assert placement_base(with_e0, "Cu") == (8990.0, "model")
    assert placement_base(Spectrum(energy, energy * 0, energy_reference="edge"), "Cu") == (8979.0, "tabulated")


def test_calibration_from_a_synthetic_foil(cu_model) -> None:
    metal = metal_structure("Cu")
    spectrum = cu_model.predict(metal, select_sites(metal, element="Cu")).average_spectrum()
    energy, mu = synthetic_measured(spectrum.energy_ev, spectrum.mu, spectrum.e0_ev, shift_ev=-5.0,
                                    gaussian_ev=1.5, lorentzian_ev=1.0, scale=0.97, noise=0.003)
    calibration = calibrate_from_reference(cu_model, energy, mu, "Cu", reference="foil.xdi")
    assert calibration.source == "reference" and calibration.reference == "foil.xdi"
    assert calibration.shift_ev == pytest.approx(-5.0, abs=0.15)
    assert 0 < calibration.stderr_ev < 0.2
    assert calibration.details["scale"] == pytest.approx(0.97, abs=0.03)
    header = dict(calibration.header_items())
    assert header["calibration_source"] == "reference" and float(header["calibration_shift_ev"]) == pytest.approx(
        calibration.shift_ev, abs=1e-3)


def test_tabulated_calibration_puts_the_metal_edge_on_the_table(cu_model) -> None:
    calibration = calibrate_tabulated(cu_model, "Cu", measured_e0_ev=8980.5)
    details = calibration.details
    assert calibration.source == "tabulated" and math.isnan(calibration.stderr_ev)
    assert details["predicted_inflection_ev"] + calibration.shift_ev == pytest.approx(8979.0)
    assert details["measured_e0_minus_tabulated_ev"] == pytest.approx(1.5)


def test_calibration_is_checked() -> None:
    with pytest.raises(ValueError, match="source"):
        Calibration("Cu", 0.0, "guessed")
    with pytest.raises(ValueError, match="finite"):
        Calibration("Cu", math.nan)
    assert Calibration("Cu").to_dict()["source"] == "none"
