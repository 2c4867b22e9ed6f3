"""Spread calibration reaches its coverage on synthetic data and survives the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.trust.calibration import MIN_SITES, SpreadCalibration, conformal_quantile, coverage, fit_calibration


def _synthetic(n: int, g: int = 40, seed: int = 0, under: float = 2.8):
    """Heteroscedastic Gaussian errors whose true sd is ``under`` times the reported spread."""
    rng = np.random.default_rng(seed)
    spread = np.exp(rng.normal(-4, 0.6, size=(n, 1))) * np.linspace(0.5, 2.0, g)  # (n, g)
    mu = rng.normal(1, 0.2, size=(n, g))
    true = mu + under * spread * rng.standard_normal((n, g))
    return true, mu, spread


@pytest.mark.parametrize("level", [0.9, 0.68])
def test_calibrated_band_covers_its_level_on_new_sites(level):
    fit = _synthetic(2000, seed=1)
    new = _synthetic(4000, seed=2)
    calibration = fit_calibration(*fit, level=level)
    lo, hi = calibration.band(new[1], new[2])
    assert coverage(new[0], lo, hi) == pytest.approx(level, abs=0.015)
    per_point = ((new[0] >= lo) & (new[0] <= hi)).mean(axis=0)
    assert per_point.min() > level - 0.04
    # the raw spread read as a Gaussian sd covers far less: the band was too narrow
    raw = coverage(new[0], new[1] - 1.645 * new[2], new[1] + 1.645 * new[2])
    assert raw < 0.6
    np.testing.assert_allclose(np.median(calibration.scale(level)), 2.8 * {0.9: 1.645, 0.68: 0.994}[level], rtol=0.1)


def test_few_sites_fall_back_to_one_global_scale():
    calibration = fit_calibration(*_synthetic(MIN_SITES - 10), level=0.9)
    assert np.ptp(calibration.scale()) == 0
    assert "all points" in calibration.method
    new = _synthetic(3000, seed=5)
    assert coverage(new[0], *calibration.band(new[1], new[2])) == pytest.approx(0.9, abs=0.05)


def test_conformal_quantile_rank():
    scores = np.arange(1, 11, dtype=float)  # n = 10: rank ceil(11 * 0.9) = 10
    assert conformal_quantile(scores, 0.9) == 10
    assert conformal_quantile(scores, 0.5) == 6
    assert np.isinf(conformal_quantile(scores[:5], 0.9))


def test_round_trip_through_a_weights_only_file(tmp_path):
    calibration = fit_calibration(*_synthetic(100), level=0.9, info={"data": "synthetic"})
    torch.save({"spread_calibration": calibration.to_dict()}, tmp_path / "c.pt")
    back = SpreadCalibration.from_dict(torch.load(tmp_path / "c.pt", weights_only=True)["spread_calibration"])
    np.testing.assert_allclose(back.scale(), calibration.scale(), rtol=1e-6)
    np.testing.assert_allclose(back.scale(0.5), calibration.scale(0.5), rtol=1e-6)
    assert back.level == 0.9 and back.info["data"] == "synthetic"
    with pytest.raises(ValueError, match="no calibration at level"):
        back.scale(0.99)


def test_a_single_model_has_nothing_to_calibrate():
    true, mu, _ = _synthetic(100)
    with pytest.raises(ValueError, match="single model"):
        fit_calibration(true, mu, np.zeros_like(mu))
