"""Round trip: predict a candidate cluster's spectrum with the forward model and fit it to the input.

The fit is deliberately small: a rigid energy shift within +-``max_shift_ev`` (on a
``step_ev`` grid; the shifted prediction is interpolated with edge hold) and the
least-squares intensity scale for that shift (clipped to ``scale_range``); the
pair with the lowest mean squared error over the model grid wins. A full
calibration + broadening fit (``model_core.interpret.fit``) may replace it.

A bare cluster lacks the atoms beyond its radius. The forward model crops at
its ``GraphConfig.r_crop`` (6 Å for cu-k-feff), so a cluster at least that large
predicts exactly like the crystal; smaller clusters (the diffusion model's 4.5 Å)
predict without the outer shells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from model_core.types import Structure

__all__ = ["ROUNDTRIP_MAX_SHIFT_EV", "RoundTrip", "fit_roundtrip", "predict_clusters"]

#: The largest rigid shift of the round-trip fit, eV.
ROUNDTRIP_MAX_SHIFT_EV = 3.0


@dataclass(frozen=True)
class RoundTrip:
    """Best fit: ``mse``, ``shift_ev`` (added to the prediction's energies), ``scale`` and the
    (G,) fitted prediction ``fitted`` on the model grid."""

    mse: float
    shift_ev: float
    scale: float
    fitted: np.ndarray


def fit_roundtrip(energy_ev: np.ndarray, target: np.ndarray, predicted: np.ndarray, *,
                  max_shift_ev: float = ROUNDTRIP_MAX_SHIFT_EV, step_ev: float = 0.1,
                  scale_range: tuple[float, float] = (0.8, 1.25)) -> RoundTrip:
    """Fit (G,) ``predicted`` to (G,) ``target`` on (G,) ``energy_ev`` (see the module docstring)."""
    energy = np.asarray(energy_ev, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    n_side = int(round(max_shift_ev / step_ev)) if max_shift_ev > 0 else 0
    shifts = np.arange(-n_side, n_side + 1) * step_ev
    moved = np.stack([np.interp(energy - s, energy, p) for s in shifts])          # (S, G)
    scale = np.clip((moved @ y) / np.maximum((moved * moved).sum(1), 1e-12), *scale_range)
    mse = ((y[None, :] - scale[:, None] * moved) ** 2).mean(1)
    best = int(np.argmin(mse))
    return RoundTrip(float(mse[best]), float(shifts[best]), float(scale[best]), scale[best] * moved[best])


def predict_clusters(predictor, structures: Sequence[Structure]) -> np.ndarray:
    """(M, G) forward predictions at atom 0 of each cluster, in one batched call.

    Args:
        predictor: a :class:`model_core.inference.XanesPredictor` (its checkpoint's
            graph settings cut the graphs).
        structures: clusters with the absorber at index 0.
    """
    from model_core.graph import build_graph

    config = predictor.checkpoint.graph_config
    graphs = [build_graph(s, 0, config) for s in structures]
    mu, _e0, _attention = predictor.predict_graphs(graphs)
    return np.asarray(mu, dtype=np.float64)
