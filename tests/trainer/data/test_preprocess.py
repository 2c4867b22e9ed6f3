"""Grid interpolation, screening and record preparation on synthetic spectra."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.config import EnergyGrid
from model_core.spectra.normalize import TargetNormalization
from trainer.data.preprocess import (GridCoverageError, PreprocessError, ScreenCriteria, interpolate_to_grid,
                                     prepare_record, screen_spectrum)
from trainer.data.records import SpectrumRecord
from model_core.types import Structure



def _ideal_step(energy, step, pre_level=0.0, pre_slope=0.0):
    """Sharp-ish edge at 0 with flat post-edge: the exact answer is known."""
    return pre_level + pre_slope * energy + step / (1.0 + np.exp(-energy / 0.5))


def test_interpolation_and_coverage():
    grid = EnergyGrid(-10.0, 100.0, 221)
    energy = np.linspace(-12, 130, 300)
    values = interpolate_to_grid(energy, 2 * energy + 1, grid)
    np.testing.assert_allclose(values, 2 * grid.energy_ev + 1, atol=1e-9)
    # Slightly short data: edge-held within the tolerance.
    short = np.linspace(-9.0, 130, 300)
    held = interpolate_to_grid(short, short, grid, tolerance_ev=2.0)
    assert held[0] == pytest.approx(-9.0)
    with pytest.raises(GridCoverageError, match="beyond the data"):
        interpolate_to_grid(short, short, grid, tolerance_ev=0.5)
    with pytest.raises(GridCoverageError):
        interpolate_to_grid(np.linspace(-12, 80, 100), np.zeros(100), grid)


def test_screen_reasons():
    energy = np.linspace(-15, 60, 226)
    good = _ideal_step(energy, 1.0)
    assert screen_spectrum(energy, good) is None
    bad = good.copy()
    bad[100] = np.nan
    assert "non-finite" in screen_spectrum(energy, bad)
    assert "too few points" in screen_spectrum(energy[:5], good[:5])
    assert "negative intensity" in screen_spectrum(energy, good - 0.1)
    pre_peak = good.copy()
    pre_peak[5] = 5.0
    assert "pre-edge above the main peak" in screen_spectrum(energy, pre_peak)
    runaway = good + np.where(energy > 50, (energy - 50) * 0.5, 0.0)
    assert "runaway tail" in screen_spectrum(energy, runaway)
    rising = good + np.where(energy > 40, (energy - 40) * 0.08, 0.0)
    assert "runaway tail" in screen_spectrum(energy, rising)
    assert screen_spectrum(energy, rising, ScreenCriteria(tail_rise=5.0, tail_factor=10.0)) is None


def _record(rid, mu, energy):
    structure = Structure(atomic_numbers=[26, 8], positions=[[0, 0, 0], [0, 0, 2.0]])
    return SpectrumRecord(rid, rid, structure, 0, energy, mu, None, "synthetic",
                          metadata={"e_edge_ev": 7112.0})


def test_screen_records():
    energy = np.linspace(-15, 60, 226)
    grid = EnergyGrid(-15.0, 60.0, 226)
    records = [
        _record("ok", _ideal_step(energy, 0.6, 0.01), energy),
        _record("neg", _ideal_step(energy, 0.6) - np.where(energy > 30, 1.0, 0.0), energy),
        _record("short", _ideal_step(energy, 0.6)[:100], energy[:100]),
        _record("flat", np.full_like(energy, 0.3), energy),
    ]
    reasons = {}
    for record in records:
        try:
            prepare_record(record, grid, TargetNormalization(mode="edge_step"))
        except PreprocessError as exc:
            reasons[record.record_id] = str(exc)
    assert set(reasons) == {"neg", "short", "flat"}
    assert "grid" in reasons["short"]
    assert "edge step" in reasons["flat"] or "negative" in reasons["flat"]
    mu, info = prepare_record(records[0], grid, TargetNormalization(mode="edge_step"))
    assert mu.shape == (226,) and info["method"] == "own_fit"
