"""Interpolation to the model grid and screening of simulated spectra; one record's
whole preparation (:func:`prepare_record`).

Normalization of the targets is :func:`model_core.spectra.normalize.normalize_target`
(one module owns it and the measured-spectrum normalization, so the two agree).

Screening (:func:`screen_spectrum`) rejects non-finite values, too few points,
negative intensity after normalization, a pre-edge region above the main peak
and runaway tails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model_core.config import EnergyGrid
from model_core.spectra.normalize import NormalizationError, TargetNormalization, normalize_target
from trainer.data.records import SpectrumRecord

__all__ = [
    "GridCoverageError",
    "PreprocessError",
    "ScreenCriteria",
    "interpolate_to_grid",
    "prepare_record",
    "screen_spectrum",
]


class PreprocessError(ValueError):
    """A record cannot be used; the message is the reason."""


class GridCoverageError(PreprocessError):
    """The model grid reaches beyond the data by more than the tolerance."""


@dataclass(frozen=True)
class ScreenCriteria:
    """Thresholds of :func:`screen_spectrum` (energies in eV relative to the edge).

    Attributes:
        min_points: fewer raw points than this -> rejected.
        negative_threshold: a normalized value below this -> rejected.
        pre_edge_max_ev: end of the pre-edge region for the "pre-edge above main peak" test.
        tail_window_ev: width of the tail window at the high-energy end.
        tail_factor: tail mean above this times the post-edge mean -> runaway tail.
        tail_rise: tail mean minus the mean of the window before it above this
            times the post-edge mean -> runaway (strongly growing) tail.
        post_edge_min_ev: start of the post-edge region used as reference.
    """

    min_points: int = 20
    negative_threshold: float = -0.02
    pre_edge_max_ev: float = -5.0
    tail_window_ev: float = 10.0
    tail_factor: float = 3.0
    tail_rise: float = 0.5
    post_edge_min_ev: float = 20.0


# ---------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------

def interpolate_to_grid(energy_rel: np.ndarray, mu: np.ndarray, grid: EnergyGrid,
                        tolerance_ev: float = 2.5) -> np.ndarray:
    """Linear interpolation onto the model grid.

    Grid points up to ``tolerance_ev`` beyond the data take the nearest data value
    (edge hold); further out the record is unusable.

    Args:
        energy_rel: (G_data,) eV relative to the edge, increasing.
        mu: (G_data,) values.
        grid: the target grid.
        tolerance_ev: how far the grid may reach beyond the data.

    Returns:
        (grid.n_points,) float64.

    Raises:
        GridCoverageError: the grid extends beyond the data by more than the tolerance.
    """
    energy = np.asarray(energy_rel, dtype=np.float64)
    target = grid.energy_ev
    if energy[0] - target[0] > tolerance_ev or target[-1] - energy[-1] > tolerance_ev:
        raise GridCoverageError(
            f"grid {target[0]:g}..{target[-1]:g} eV beyond the data {energy[0]:.2f}..{energy[-1]:.2f} eV")
    return np.interp(target, energy, np.asarray(mu, dtype=np.float64))


# ---------------------------------------------------------------------------
# Screening
# ---------------------------------------------------------------------------

def screen_spectrum(energy_rel: np.ndarray, mu_norm: np.ndarray,
                    criteria: ScreenCriteria = ScreenCriteria()) -> str | None:
    """Why a normalized spectrum looks unphysical, or None when it passes.

    Args:
        energy_rel: (G,) eV relative to the edge.
        mu_norm: (G,) normalized intensity (pre-edge ~0, post-edge ~1).
        criteria: thresholds.
    """
    energy = np.asarray(energy_rel, dtype=np.float64)
    mu = np.asarray(mu_norm, dtype=np.float64)
    if not np.all(np.isfinite(mu)):
        return "non-finite values"
    if len(mu) < criteria.min_points:
        return f"too few points ({len(mu)} < {criteria.min_points})"
    low = float(mu.min())
    if low < criteria.negative_threshold:
        return f"negative intensity (min {low:.3f} at {energy[int(mu.argmin())]:.1f} eV)"
    pre = energy < criteria.pre_edge_max_ev
    if pre.any() and (~pre).any() and mu[pre].max() > mu[~pre].max():
        return f"pre-edge above the main peak ({mu[pre].max():.3f} > {mu[~pre].max():.3f})"
    end = energy[-1]
    tail = energy >= end - criteria.tail_window_ev
    before = (energy >= end - 2 * criteria.tail_window_ev) & ~tail
    post = (energy >= criteria.post_edge_min_ev) & ~tail
    if post.sum() >= 2 and tail.any():
        post_mean = float(mu[post].mean())
        tail_mean = float(mu[tail].mean())
        if post_mean > 0 and tail_mean > criteria.tail_factor * post_mean:
            return f"runaway tail (tail mean {tail_mean:.3g} > {criteria.tail_factor:g} x post-edge mean {post_mean:.3g})"
        if post_mean > 0 and before.any() and tail_mean - float(mu[before].mean()) > criteria.tail_rise * post_mean:
            return f"runaway tail (rises by {tail_mean - float(mu[before].mean()):.3g} over the last {criteria.tail_window_ev:g} eV)"
    return None


def prepare_record(record: SpectrumRecord, grid: EnergyGrid, norm: TargetNormalization,
                   criteria: ScreenCriteria | None = ScreenCriteria(),
                   tolerance_ev: float = 2.5) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalize, interpolate and (optionally) screen one record.

    Returns:
        ((grid.n_points,) float64 normalized spectrum, normalization info).

    Raises:
        PreprocessError: with the reason the record cannot be used.
    """
    if len(record.mu_raw) < (criteria.min_points if criteria else 2):
        raise PreprocessError(f"too few points ({len(record.mu_raw)})")
    if not np.all(np.isfinite(record.mu_raw)):
        raise PreprocessError("non-finite values")
    e_edge = record.metadata.get("e_edge_ev")
    try:
        mu_norm, info = normalize_target(record.energy_rel_ev, record.mu_raw, norm, e_edge)
    except NormalizationError as exc:
        raise PreprocessError(str(exc)) from None
    on_grid = interpolate_to_grid(record.energy_rel_ev, mu_norm, grid, tolerance_ev)
    if criteria is not None:
        reason = screen_spectrum(grid.energy_ev, on_grid, criteria)
        if reason is not None:
            raise PreprocessError(reason)
    return on_grid, info
