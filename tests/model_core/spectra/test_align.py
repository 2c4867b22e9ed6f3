"""Broadening, automatic alignment, similarity metrics and measured-vs-predicted comparison."""

from __future__ import annotations

import io

import numpy as np
import pytest

from model_core.spectra.align import auto_align, broaden, compare, comparison_to_csv, similarity
from model_core.spectra.measured import MeasuredData
from model_core.spectra.normalize import normalize
from model_core.types import Spectrum
from tests.model_core.spectra.synthetic_spectra import edge_energy, edge_mu


def _fwhm(x: np.ndarray, y: np.ndarray) -> float:
    above = x[y >= y.max() / 2]
    return float(above[-1] - above[0])


@pytest.mark.parametrize("shift", [3.7, -8.2, 0.0])
def test_auto_align_recovers_a_known_shift(shift: float) -> None:
    me = edge_energy()
    mm = edge_mu(me, e0=8979.0) + np.random.default_rng(0).normal(0, 0.005, me.size)
    pe = np.linspace(8940, 9060, 241)
    pm = edge_mu(pe, e0=8979.0 - shift, pre_slope=0.0, step=1.3)  # different scale on purpose
    assert auto_align(me, mm, pe, pm, window=(8950, 9050)) == pytest.approx(shift, abs=0.2)
    assert auto_align(me, mm, pe, pm) == pytest.approx(shift, abs=0.2)


def test_auto_align_needs_an_overlap() -> None:
    me = edge_energy()
    with pytest.raises(ValueError, match="overlap"):
        auto_align(me, edge_mu(me), me, edge_mu(me), window=(20000, 20100))


@pytest.mark.parametrize("kind, tolerance", [("gaussian", 1e-6), ("lorentzian", 0.01)])
def test_broadening_preserves_area(kind: str, tolerance: float) -> None:
    x = np.linspace(0, 200, 2001)
    y = np.exp(-0.5 * ((x - 100) / 1.0) ** 2)
    b = broaden(x, y, 3.0, kind)
    assert np.trapezoid(b, x) == pytest.approx(np.trapezoid(y, x), rel=tolerance)
    assert b.max() < y.max()
    if kind == "gaussian":
        # Gaussian widths add in quadrature: FWHM sqrt(2.355^2 + 3^2).
        assert _fwhm(x, b) == pytest.approx(np.hypot(2.0 * np.sqrt(2 * np.log(2)), 3.0), abs=0.1)


def test_broadening_keeps_ends_and_zero_width() -> None:
    energy = edge_energy()
    mu = edge_mu(energy, white_line=0.0, pre_slope=0.0)
    b = broaden(energy, mu, 5.0)
    # Edge padding: the ends are not pulled towards zero.
    assert b[0] == pytest.approx(mu[0], abs=1e-6) and b[-1] == pytest.approx(mu[-1], abs=1e-6)
    np.testing.assert_array_equal(broaden(energy, mu, 0.0), mu)
    with pytest.raises(ValueError, match="kind"):
        broaden(energy, mu, 1.0, "voigt")


def test_similarity_of_identical_and_different_curves() -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    same = similarity(energy, mu, energy, mu)
    assert same["mse"] == pytest.approx(0.0, abs=1e-15)
    assert same["pearson_r"] == pytest.approx(1.0)
    assert same["pearson_r_deriv"] == pytest.approx(1.0)
    assert same["cosine"] == pytest.approx(1.0)
    assert same["n_points"] > 100
    other = similarity(energy, mu, energy, edge_mu(energy, e0=8985.0), window=(8950, 9050))
    assert other["mse"] > 0 and other["pearson_r"] < 1.0 and other["pearson_r_deriv"] < 0.9
    with pytest.raises(ValueError, match="overlap"):
        similarity(energy, mu, energy + 1000, mu)


def _measured(e0: float = 8979.0) -> tuple[MeasuredData, object]:
    energy = edge_energy()
    mu = edge_mu(energy, e0=e0, step=2.0)
    data = MeasuredData(source="synthetic", label="synthetic", energy_ev=energy, mu=mu, channel="mu")
    return data, normalize(energy, mu)


def _prediction(e0_model: float | None) -> Spectrum:
    rel = np.linspace(-30, 100, 261)
    mu = edge_mu(8979.0 + rel, e0=8979.0, pre_slope=0.0, offset=0.0)
    return Spectrum(rel, mu, label="average", energy_reference="edge", e0_ev=e0_model)


def test_compare_auto_corrects_a_wrong_model_e0() -> None:
    data, norm = _measured()
    result = compare(data, norm, _prediction(8979.0 + 2.5), mode="auto")
    assert result.e0_reference == "model"
    # The model put its edge 2.5 eV too high; the alignment pulls it back.
    assert result.shift_ev == pytest.approx(-2.5, abs=0.3)
    assert result.placement_ev == pytest.approx(8979.0, abs=0.3)
    assert result.metrics["pearson_r"] > 0.99
    assert result.metrics["pearson_r_deriv"] > 0.95
    n = len(result.energy_ev)
    for array in (result.measured, result.predicted, result.d_measured, result.d_predicted):
        assert array.shape == (n,)
    assert np.all(np.diff(result.energy_ev) > 0)
    assert result.energy_ev[0] >= 8979.0 - 30 - 3 and result.energy_ev[-1] <= 8979.0 + 100 + 3


def test_compare_modes_and_measured_e0_placement() -> None:
    data, norm = _measured()
    e0_mode = compare(data, norm, _prediction(8990.0), mode="e0", shift_ev=5.0)
    assert e0_mode.shift_ev == 0.0 and e0_mode.placement_ev == pytest.approx(8990.0)
    manual = compare(data, norm, _prediction(8990.0), mode="manual", shift_ev=-4.0)
    assert manual.shift_ev == -4.0 and manual.placement_ev == pytest.approx(8986.0)
    no_e0 = compare(data, norm, _prediction(None), mode="e0")
    assert no_e0.e0_reference == "measured" and no_e0.placement_ev == pytest.approx(norm.e0)
    windowed = compare(data, norm, _prediction(8979.0), mode="auto", window=(8960.0, 9020.0),
                       broaden_fwhm_ev=1.0)
    assert windowed.window[0] >= 8960.0 - 1e-9 and windowed.window[1] <= 9020.0 + 1e-9
    assert windowed.broaden_fwhm_ev == 1.0
    with pytest.raises(ValueError, match="do not overlap"):
        compare(data, norm, _prediction(20000.0), mode="e0")
    with pytest.raises(ValueError, match="mode"):
        compare(data, norm, _prediction(8979.0), mode="best")


def test_comparison_csv() -> None:
    data, norm = _measured()
    result = compare(data, norm, _prediction(8979.0), mode="e0")
    stream = io.StringIO()
    comparison_to_csv(result, stream, {"model": "fake", "measured": "synthetic"})
    lines = stream.getvalue().splitlines()
    meta = [line for line in lines if line.startswith("#")]
    assert meta[0] == "# model: fake"
    assert any(line.startswith("# pearson_r:") for line in meta)
    header = lines[len(meta)]
    assert header == "energy_ev,measured,predicted,d_measured,d_predicted"
    table = np.loadtxt(io.StringIO("\n".join(lines[len(meta) + 1:])), delimiter=",")
    assert table.shape == (len(result.energy_ev), 5)
    np.testing.assert_allclose(table[:, 0], result.energy_ev, atol=1e-4)
