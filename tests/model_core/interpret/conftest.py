"""Fixtures of the interpretation tests: the shipped Cu model (loaded once) and synthetic spectra."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.spectra.align import broaden


@pytest.fixture(scope="session")
def cu_model():
    from model_core.inference import load_model

    return load_model("cu-k-feff", device="cpu")


def synthetic_measured(energy_rel: np.ndarray, mu: np.ndarray, base_ev: float, *, shift_ev: float = 0.0,
                       gaussian_ev: float = 0.0, lorentzian_ev: float = 0.0, scale: float = 1.0,
                       noise: float = 0.0, step_ev: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 'measured' spectrum: ``mu`` broadened, placed at ``base + shift``, scaled, with noise."""
    curve = np.asarray(mu, dtype=np.float64)
    if gaussian_ev > 0:
        curve = broaden(energy_rel, curve, gaussian_ev, "gaussian")
    if lorentzian_ev > 0:
        curve = broaden(energy_rel, curve, lorentzian_ev, "lorentzian")
    energy = np.arange(energy_rel[0] + base_ev + shift_ev - 3.0, energy_rel[-1] + base_ev + shift_ev + 3.0, step_ev)
    y = scale * np.interp(energy - base_ev - shift_ev, energy_rel, curve)
    if noise > 0:
        y = y + np.random.default_rng(seed).normal(0.0, noise, len(energy))
    return energy, y


def toy_spectrum(energy_rel: np.ndarray, peak_ev: float = 8.0, wiggle: float = 5.0) -> np.ndarray:
    """A K-edge-like curve with a white line and wiggles (edge-relative energies)."""
    e = np.asarray(energy_rel, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-e / 1.5)) + 0.4 * np.exp(-((e - peak_ev) / 3.0) ** 2)
            + 0.1 * np.sin(e / wiggle) * np.exp(-e / 60.0) * (e > 0))
