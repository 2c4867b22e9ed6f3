"""Edge-step normalization (larch pre_edge) on synthetic spectra."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.spectra.normalize import NormalizationError, NormParams, find_e0, normalize
from tests.model_core.spectra.synthetic_spectra import edge_energy, edge_mu


def test_synthetic_edge_step_and_e0() -> None:
    energy = edge_energy()
    mu = edge_mu(energy, e0=8979.0, step=2.0, white_line=0.0)
    result = normalize(energy, mu)
    assert result.e0 == pytest.approx(8979.0, abs=1.0)
    assert result.edge_step == pytest.approx(2.0, rel=0.05)
    assert np.median(result.flat[energy > 9050]) == pytest.approx(1.0, abs=0.03)
    assert np.median(result.norm[energy < 8950]) == pytest.approx(0.0, abs=0.03)
    for array in (result.norm, result.flat, result.pre_edge_line, result.post_edge_curve):
        assert array.shape == energy.shape and not array.flags.writeable
    used = result.params
    assert used.e0 == pytest.approx(result.e0)
    assert None not in (used.pre1, used.pre2, used.norm1, used.norm2, used.nnorm)
    assert used.pre1 >= energy[0] - result.e0 - 1e-9
    assert used.norm2 <= energy[-1] - result.e0 + 1e-9
    assert result.warnings == ()


def test_explicit_parameters_are_used() -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    result = normalize(energy, mu, NormParams(e0=8980.0, pre1=-90, pre2=-30, norm1=40, norm2=180, nnorm=1,
                                              flatten=False))
    assert result.e0 == 8980.0
    assert (result.params.pre1, result.params.pre2) == (-90.0, -30.0)
    assert (result.params.norm1, result.params.norm2, result.params.nnorm) == (40.0, 180.0, 1)
    np.testing.assert_array_equal(result.flat, result.norm)


def test_short_simulated_spectrum_with_athena_windows() -> None:
    # A simulated spectrum from -15 to +60 eV; Athena-like windows reach far outside it.
    energy = 8979.0 + np.linspace(-15, 60, 151)
    mu = edge_mu(energy, pre_slope=0.0, offset=0.0)
    result = normalize(energy, mu, NormParams(e0=8979.0, pre1=-150, pre2=-30, norm1=75, norm2=400))
    assert result.edge_step > 0
    assert result.params.pre1 >= -15.0 - 1e-9
    assert result.params.pre1 < result.params.pre2 < 0
    assert result.params.norm2 <= 60.0 + 1e-9
    assert result.params.norm1 < result.params.norm2
    assert len(result.warnings) >= 3
    assert np.median(result.flat[energy > 9020]) == pytest.approx(1.0, abs=0.1)


def test_calculated_spectrum_without_e0() -> None:
    # Flat zero pre-edge as in calculations: E0 must still be found inside the data.
    energy = 8979.0 + np.linspace(-15, 60, 151)
    mu = edge_mu(energy, pre_slope=0.0, offset=0.0)
    e0 = find_e0(energy, mu)
    assert energy[1] <= e0 <= energy[-2]
    assert e0 == pytest.approx(8979.0, abs=3.0)
    assert normalize(energy, mu).edge_step > 0


def test_bad_inputs() -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    with pytest.raises(NormalizationError, match="outside the data"):
        normalize(energy, mu, NormParams(e0=7000.0))
    with pytest.raises(NormalizationError, match="range too short"):
        normalize(energy, mu, NormParams(e0=9175.0))
    with pytest.raises(NormalizationError, match="NaN"):
        normalize(energy, np.where(energy > 9000, np.nan, mu))
    with pytest.raises(NormalizationError, match="increasing"):
        normalize(energy[::-1], mu[::-1])
    with pytest.raises(NormalizationError, match="only 3 points"):
        normalize(energy[:3], mu[:3])
    with pytest.raises(NormalizationError, match="decreases across the edge"):
        normalize(energy, -mu, NormParams(e0=8979.0))
