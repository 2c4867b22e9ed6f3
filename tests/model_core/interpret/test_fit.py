"""The least-squares fit of shift, Gaussian/Lorentzian broadening, scale and background."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_core.interpret.fit import fit_components, fit_spectrum, voigt_fwhm
from tests.model_core.interpret.conftest import synthetic_measured, toy_spectrum

ENERGY = np.linspace(-10.0, 100.0, 221)
MU = toy_spectrum(ENERGY)


def test_recovers_shift_broadening_and_scale_with_sane_errors() -> None:
    energy, y = synthetic_measured(ENERGY, MU, 8980.0, shift_ev=2.3, gaussian_ev=2.0, lorentzian_ev=1.0,
                                   scale=0.9, noise=0.005)
    result = fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, shift_start_ev=1.0, shift_bounds_ev=(-3, 5))
    truth = {"shift_ev": 2.3, "gaussian_fwhm_ev": 2.0, "lorentzian_fwhm_ev": 1.0, "scale": 0.9}
    for name, value in truth.items():
        err = result.stderr[name]
        assert math.isfinite(err) and err > 0, name
        # Within 5 standard errors (the errors are a lower bound; see the module docstring).
        assert abs(result.parameters[name] - value) < 5 * err + 0.02 * abs(value), name
    assert result.metrics_after["mse"] < result.metrics_before["mse"]
    assert result.metrics_after["mse"] < 3e-5  # about the noise variance
    assert result.broaden_fwhm_ev == pytest.approx(voigt_fwhm(result.parameters["gaussian_fwhm_ev"],
                                                              result.parameters["lorentzian_fwhm_ev"]))
    assert result.fitted.shape == result.energy_ev.shape == result.measured.shape
    assert set(result.to_dict()) >= {"parameters", "metrics_before", "metrics_after", "broaden_fwhm_ev"}


def test_shift_stays_within_its_bounds() -> None:
    energy, y = synthetic_measured(ENERGY, MU, 8980.0, shift_ev=4.0, gaussian_ev=1.5)
    result = fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, shift_start_ev=0.0, shift_bounds_ev=(-1, 1))
    assert -1.0 - 1e-9 <= result.shift_ev <= 1.0 + 1e-9


def test_background_and_fixed_parameters() -> None:
    energy, y = synthetic_measured(ENERGY, MU, 8980.0, gaussian_ev=1.5, scale=1.1)
    y = y + 0.05 + 1e-3 * (energy - 0.5 * (energy[0] + energy[-1]))
    result = fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, background=True,
                          fix=("lorentzian_fwhm_ev",), lorentzian_start_ev=0.0, window=(8975.0, 9070.0))
    assert result.parameters["lorentzian_fwhm_ev"] == 0.0 and "lorentzian_fwhm_ev" in result.fixed
    assert math.isnan(result.stderr["lorentzian_fwhm_ev"])
    # The window trims the ends, where the placed prediction holds its end values.
    assert result.parameters["scale"] == pytest.approx(1.1, rel=0.02)
    assert result.parameters["background_offset"] == pytest.approx(0.05, abs=0.02)
    assert result.parameters["background_slope"] == pytest.approx(1e-3, abs=3e-4)
    assert result.window[0] >= 8975.0 and result.window[1] <= 9070.0


def test_two_components_share_shape_parameters() -> None:
    other = toy_spectrum(ENERGY, peak_ev=15.0, wiggle=3.0)
    energy, a = synthetic_measured(ENERGY, MU, 8980.0, gaussian_ev=2.0)
    energy_b, b = synthetic_measured(ENERGY, other, 8982.0, gaussian_ev=2.0)
    b = np.interp(energy, energy_b, b)
    result = fit_components(energy, 0.3 * a + 0.7 * b, [(ENERGY, MU), (ENERGY, other)], [8980.0, 8982.0],
                            shift_bounds_ev=(-1, 1))
    assert result.parameters["amplitude_0"] == pytest.approx(0.3, abs=0.03)
    assert result.parameters["amplitude_1"] == pytest.approx(0.7, abs=0.03)
    assert result.scale == pytest.approx(1.0, abs=0.03)


def test_bad_inputs() -> None:
    energy, y = synthetic_measured(ENERGY, MU, 8980.0)
    with pytest.raises(ValueError, match="fewer than"):
        fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, window=(8000.0, 8001.0))
    with pytest.raises(ValueError, match="unknown parameter"):
        fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, fix=("nonsense",))
    with pytest.raises(ValueError, match="outside its bounds"):
        fit_spectrum(energy, y, ENERGY, MU, offset_ev=8980.0, shift_start_ev=5.0, shift_bounds_ev=(-1, 1))
