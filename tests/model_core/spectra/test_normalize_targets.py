"""The training-target normalization (normalize_target) on synthetic spectra."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.config import ConfigError
from model_core.spectra.normalize import NormalizationError, TargetNormalization, normalize_target


def _ideal_step(energy, step, pre_level=0.0, pre_slope=0.0):
    """Sharp-ish edge at 0 with flat post-edge: the exact answer is known."""
    return pre_level + pre_slope * energy + step / (1.0 + np.exp(-energy / 0.5))


@pytest.mark.parametrize("energy", [np.linspace(-15, 60, 226), np.linspace(-40, 150, 400)])
@pytest.mark.parametrize("step, pre_level, pre_slope", [(1.0, 0.0, 0.0), (0.37, 0.05, 0.001), (250.0, 3.0, -0.02)])
def test_edge_step_recovers_pre_zero_post_one(energy, step, pre_level, pre_slope):
    mu = _ideal_step(energy, step, pre_level, pre_slope)
    norm, info = normalize_target(energy, mu, TargetNormalization(mode="edge_step"))
    assert info["method"] == "own_fit"
    assert info["step"] == pytest.approx(step, rel=0.02)
    assert np.abs(norm[energy < -8]).max() < 0.02
    assert np.abs(norm[energy > 20] - 1.0).max() < 0.03


def test_edge_step_short_pre_edge_uses_constant():
    energy = np.linspace(-6, 60, 150)  # only 3 points below -5 eV
    mu = 0.1 + _ideal_step(energy, 2.0)
    norm, info = normalize_target(energy, mu, TargetNormalization(mode="edge_step"))
    assert len(info["pre"]) == 1
    assert np.abs(norm[energy > 20] - 1.0).max() < 0.05


def test_edge_step_with_larch_or_fallback():
    energy = np.linspace(-15, 60, 226)
    mu = _ideal_step(energy, 0.5, 0.02)
    norm, info = normalize_target(energy, mu, TargetNormalization(mode="edge_step", use_larch=True), e_edge_abs=7112.0)
    assert info["method"] in ("larch", "own_fit")
    assert np.abs(norm[energy > 25] - 1.0).max() < 0.05


def test_other_modes():
    energy = np.linspace(-10, 100, 221)
    mu = 2.0 * _ideal_step(energy, 1.0)
    same, info = normalize_target(energy, mu, TargetNormalization(mode="feff"))
    assert info["method"] == "none" and np.array_equal(same, mu)
    scaled, info = normalize_target(energy, mu, TargetNormalization(mode="post_mean", post_mean_window=(20.0, 100.0)))
    assert scaled[(energy >= 20)].mean() == pytest.approx(1.0)
    with pytest.raises(NormalizationError, match="outside the data"):
        normalize_target(energy, mu, TargetNormalization(mode="post_mean", post_mean_window=(200.0, 300.0)))
    with pytest.raises(NormalizationError, match="edge step not positive"):
        normalize_target(energy, -mu, TargetNormalization(mode="edge_step"))
    with pytest.raises(ConfigError, match="mode: 'bogus' is not one of"):
        TargetNormalization(mode="bogus")
