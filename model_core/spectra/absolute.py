"""A prediction's sites on one absolute energy grid, each at its own predicted edge energy.

Each site's spectrum is predicted on the model's edge-relative grid; placed at its own
E0 the sites cover different absolute ranges. (A model trained on FDMNES data has a grid
with one fixed origin, the tabulated edge: its sites all share one absolute grid,
``Prediction.site_zero_ev``.) The shared grid spans only the
**intersection** of those ranges (so no site's value is extrapolated and the average
has every site at every point), with the model grid's step. With one site, or sites
sharing one E0, it is that site's own grid moved to E0: no interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_core.types import Prediction


@dataclass(frozen=True)
class AbsoluteSpectra:
    """A prediction on one absolute energy grid.

    Attributes:
        energy_ev: (N,) absolute energies in eV.
        mu: (M, N) each predicted site's spectrum, linearly interpolated from its own
            grid (model grid + its zero, :attr:`Prediction.site_zero_ev`).
        average: (N,) mean of ``mu`` weighted by the prediction's site weights.
        spread: (N,) the same weighted mean of the interpolated ``mu_spread``, or None
            for a single model.
        band: ((N,), (N,)) lower and upper bound of ``average``: the weighted means of the
            interpolated sites' bounds (as :attr:`Prediction.average_band`), or None
            without a calibrated band.
    """

    energy_ev: np.ndarray
    mu: np.ndarray
    average: np.ndarray
    spread: np.ndarray | None = None
    band: tuple[np.ndarray, np.ndarray] | None = None


def absolute_grid(prediction: Prediction, step_ev: float | None = None) -> np.ndarray:
    """(N,) the shared absolute grid: from the highest site start to the lowest site end.

    Args:
        prediction: a prediction with ``e0_ev`` (or a grid of fixed origin).
        step_ev: spacing in eV (default: the model grid's).

    Raises:
        ValueError: the prediction has no E0, or the sites' ranges do not overlap.
    """
    zero = prediction.site_zero_ev
    if zero is None or len(zero) == 0:
        raise ValueError(f"model {prediction.model_name or '(unnamed)'} predicts no edge energy (no E0 head)")
    relative = prediction.energy_ev
    step = float(step_ev) if step_ev is not None else float((relative[-1] - relative[0]) / (len(relative) - 1))
    start = float(np.max(zero)) + float(relative[0])
    stop = float(np.min(zero)) + float(relative[-1])
    if stop < start:
        raise ValueError("the sites' absolute energy ranges do not overlap")
    # The tolerance keeps the last point when the span is a whole number of steps.
    n = int(np.floor((stop - start) / step + 1e-9)) + 1
    return start + step * np.arange(n)


def on_absolute_grid(prediction: Prediction, step_ev: float | None = None) -> AbsoluteSpectra:
    """Every site at its own E0, interpolated to :func:`absolute_grid`, and their weighted mean.

    Raises:
        ValueError: as :func:`absolute_grid`.
    """
    grid = absolute_grid(prediction, step_ev)

    def resample(values: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(grid, prediction.energy_ev + zero, row)
                         for zero, row in zip(prediction.site_zero_ev, values)])

    mu = resample(prediction.mu)
    spread = None
    if prediction.mu_spread is not None:
        spread = np.average(resample(prediction.mu_spread), axis=0, weights=prediction.weights)
    band = None
    if prediction.mu_lo is not None and prediction.mu_hi is not None:
        band = tuple(np.average(resample(bound), axis=0, weights=prediction.weights)
                     for bound in (prediction.mu_lo, prediction.mu_hi))
    return AbsoluteSpectra(energy_ev=grid, mu=mu, average=np.average(mu, axis=0, weights=prediction.weights),
                           spread=spread, band=band)
