"""Linear combinations: a two-phase mixture's fractions are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.interpret.calibration import Calibration
from model_core.interpret.lcf import MAX_LCF_CANDIDATES, linear_combinations
from model_core.interpret.library import Candidate
from model_core.types import Spectrum
from tests.model_core.interpret.conftest import synthetic_measured, toy_spectrum

ENERGY = np.linspace(-10.0, 100.0, 221)


def _candidate(name: str, mu: np.ndarray, e0: float) -> Candidate:
    return Candidate(path=name, name=name, spectrum=Spectrum(ENERGY, mu, energy_reference="edge", e0_ev=e0),
                     members=np.zeros((0, len(ENERGY))), site_indices=np.array([0]), weights=np.array([1.0]))


def test_two_phase_mixture_fractions_recovered() -> None:
    phases = [_candidate("a.cif", toy_spectrum(ENERGY), 8980.0),
              _candidate("b.cif", toy_spectrum(ENERGY, peak_ev=16.0, wiggle=3.0), 8983.0),
              _candidate("c.cif", toy_spectrum(ENERGY, peak_ev=4.0, wiggle=8.0), 8979.0)]
    calibration = Calibration("Cu", shift_ev=-1.0, source="reference")
    ea, a = synthetic_measured(ENERGY, phases[0].spectrum.mu, 8980.0 - 1.0, gaussian_ev=2.0, lorentzian_ev=0.8)
    eb, b = synthetic_measured(ENERGY, phases[1].spectrum.mu, 8983.0 - 1.0, gaussian_ev=2.0, lorentzian_ev=0.8)
    mixture = 0.95 * (0.35 * a + 0.65 * np.interp(ea, eb, b))
    mixture += np.random.default_rng(1).normal(0.0, 0.003, len(ea))
    results = linear_combinations(ea, mixture, phases, calibration, 2, element="Cu")
    best = results[0]
    assert {c.path for c in best.candidates} == {"a.cif", "b.cif"}
    fractions = dict(zip((c.path for c in best.candidates), best.fractions))
    errors = dict(zip((c.path for c in best.candidates), best.stderr))
    assert fractions["a.cif"] == pytest.approx(0.35, abs=0.03)
    assert fractions["b.cif"] == pytest.approx(0.65, abs=0.03)
    assert sum(best.fractions) == pytest.approx(1.0)
    assert all(0 < e < 0.05 for e in errors.values())
    assert best.fit.scale == pytest.approx(0.95, abs=0.03)
    entry = best.to_dict()
    assert set(entry) >= {"components", "metrics"}
    assert set(entry["components"][0]) == {"structure", "fraction", "stderr"}
    # Every subset of 1..2 of 3 candidates was fitted; sorted by reduced chi-square.
    chi2 = [r.reduced_chi2 for r in results]
    assert len(results) == 6 and chi2 == sorted(chi2)


def test_too_many_candidates_refused() -> None:
    many = [_candidate(f"{k}.cif", toy_spectrum(ENERGY, peak_ev=5 + k), 8980.0) for k in range(MAX_LCF_CANDIDATES + 1)]
    with pytest.raises(ValueError, match="at most"):
        linear_combinations(ENERGY + 8980.0, toy_spectrum(ENERGY), many, Calibration("Cu"), 2, element="Cu")
