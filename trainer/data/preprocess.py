"""Normalization, interpolation to the model grid and screening of simulated spectra.

Normalization modes (:class:`Normalization`):

``"none"``
    the raw intensities.
``"feff"``
    FEFF's ``mu`` is already divided by the cross-section at edge + 50 eV, so it
    is kept as it is (same as ``"none"``, named for clarity).
``"post_mean"``
    divide by the mean of ``mu`` over ``post_mean_window`` (eV relative to the
    edge, clipped to the data): a post-edge mean of 1. Cheap and robust for FEFF,
    whose pre-edge is already ~0.
``"edge_step"``
    pre-edge ~0, post-edge ~1, Athena style but robust to the short FDMNES ranges
    (-15..+60 eV): a straight line is fitted to the pre-edge (``E < pre_edge_max_ev``,
    a constant when fewer than ``pre_edge_min_points`` points lie there, the first
    point when none), a polynomial of degree ``post_degree`` (a constant when too
    few points) to the post-edge (``E >= post_edge_min_ev``); ``step = post(0) -
    pre(0)`` and ``norm = (mu - pre(E)) / step``. With ``use_larch`` xraylarch's
    ``pre_edge`` (e0 = the edge, absolute energies) is tried first and the own
    fit is the fallback; the method used is returned.

Screening (:func:`screen_spectrum`) rejects non-finite values, too few points,
negative intensity after normalization, a pre-edge region above the main peak
and runaway tails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_core.config import EnergyGrid
from trainer.data.records import SpectrumRecord

__all__ = [
    "GridCoverageError",
    "Normalization",
    "PreprocessError",
    "ScreenCriteria",
    "interpolate_to_grid",
    "normalize",
    "prepare_record",
    "screen_spectrum",
]

MODES = ("none", "feff", "post_mean", "edge_step")


class PreprocessError(ValueError):
    """A record cannot be used; the message is the reason."""


class GridCoverageError(PreprocessError):
    """The model grid reaches beyond the data by more than the tolerance."""


@dataclass(frozen=True)
class Normalization:
    """How raw intensities are normalized (see the module docstring).

    Attributes:
        mode: "none", "feff", "post_mean" or "edge_step".
        pre_edge_max_ev: pre-edge region is E < this (eV relative to the edge).
        pre_edge_min_points: fewer pre-edge points than this -> constant pre-edge.
        post_edge_min_ev: post-edge region starts here (eV relative).
        post_edge_max_ev: post-edge region ends here (None: end of data).
        post_degree: polynomial degree of the post-edge fit (0 = constant).
        post_mean_window: (lo, hi) eV relative, window of the "post_mean" mode.
        use_larch: try xraylarch's ``pre_edge`` first in "edge_step" mode.
    """

    mode: str = "edge_step"
    pre_edge_max_ev: float = -5.0
    pre_edge_min_points: int = 4
    post_edge_min_ev: float = 20.0
    post_edge_max_ev: float | None = None
    post_degree: int = 1
    post_mean_window: tuple[float, float] = (20.0, 100.0)
    use_larch: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"normalization mode must be one of {MODES}, got {self.mode!r}")
        if self.post_degree < 0 or self.post_degree > 3:
            raise ValueError("post_degree must be 0..3")


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
# Normalization
# ---------------------------------------------------------------------------

def _polyfit(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial coefficients (highest first); degree lowered to what the points allow."""
    degree = max(0, min(degree, len(x) - 2)) if len(x) > 1 else 0
    if degree == 0:
        return np.array([float(np.mean(y))])
    return np.polyfit(x, y, degree)


def _own_edge_step(energy: np.ndarray, mu: np.ndarray, norm: Normalization) -> tuple[np.ndarray, dict[str, Any]]:
    if len(energy) < 2:
        raise PreprocessError("too few points to normalize")
    pre_mask = energy < norm.pre_edge_max_ev
    n_pre = int(pre_mask.sum())
    if n_pre >= norm.pre_edge_min_points:
        pre = np.polyfit(energy[pre_mask], mu[pre_mask], 1)
    elif n_pre >= 1:
        pre = np.array([float(np.mean(mu[pre_mask]))])
    else:
        # No pre-edge at all: the first point is the best estimate of the background.
        pre = np.array([float(mu[0])])
    hi = np.inf if norm.post_edge_max_ev is None else norm.post_edge_max_ev
    post_mask = (energy >= norm.post_edge_min_ev) & (energy <= hi)
    if post_mask.sum() == 0:
        # Range ends before the post-edge window: use the last quarter of the data.
        post_mask = energy >= energy[0] + 0.75 * (energy[-1] - energy[0])
    degree = norm.post_degree if post_mask.sum() >= norm.post_degree + 4 else 0
    post = _polyfit(energy[post_mask], mu[post_mask], degree)
    step = float(np.polyval(post, 0.0) - np.polyval(pre, 0.0))
    pre_kind = "line" if len(pre) == 2 else "constant"
    if len(pre) == 2 and abs(pre[0]) * (energy[-1] - energy[0]) > abs(step):
        # The "pre-edge" is already part of the rise (FEFF's window below -5 eV can
        # be): extrapolating that slope over the spectrum would dominate it.
        pre = np.array([float(np.mean(mu[pre_mask]))])
        pre_kind = "constant (pre-edge slope too steep)"
        step = float(np.polyval(post, 0.0) - pre[0])
    if not math.isfinite(step) or step <= 0:
        raise PreprocessError(f"edge step not positive ({step:.3g})")
    normalized = (mu - np.polyval(pre, energy)) / step
    return normalized, {"method": "own_fit", "step": step, "pre": pre.tolist(), "post": post.tolist(),
                        "pre_kind": pre_kind, "n_pre": n_pre, "n_post": int(post_mask.sum())}


def _larch_edge_step(energy: np.ndarray, mu: np.ndarray, norm: Normalization,
                     e_edge_abs: float) -> tuple[np.ndarray, dict[str, Any]]:
    from larch import Group
    from larch.xafs import pre_edge

    group = Group(energy=energy + e_edge_abs, mu=mu)
    post_max = energy[-1] if norm.post_edge_max_ev is None else min(norm.post_edge_max_ev, energy[-1])
    pre_edge(group, e0=e_edge_abs, pre1=float(energy[0]), pre2=float(norm.pre_edge_max_ev),
             norm1=float(norm.post_edge_min_ev), norm2=float(post_max),
             nnorm=int(norm.post_degree), make_flat=False)
    step = float(group.edge_step)
    if not math.isfinite(step) or step <= 0 or not np.all(np.isfinite(group.norm)):
        raise PreprocessError(f"larch edge step not usable ({step:.3g})")
    return np.asarray(group.norm, dtype=np.float64), {"method": "larch", "step": step}


def normalize(energy_rel: np.ndarray, mu: np.ndarray, norm: Normalization,
              e_edge_abs: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalize one spectrum.

    Args:
        energy_rel: (G,) eV relative to the edge, increasing.
        mu: (G,) raw intensity.
        norm: the normalization settings.
        e_edge_abs: absolute edge energy in eV (needed only by larch).

    Returns:
        (mu_norm (G,), info) where info["method"] says what was done ("none",
        "post_mean", "own_fit", "larch") plus the fit parameters.

    Raises:
        PreprocessError: the normalization is undefined (non-positive step or
            post-edge mean, window outside the data).
    """
    energy = np.asarray(energy_rel, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if norm.mode in ("none", "feff"):
        return mu.copy(), {"method": "none"}
    if norm.mode == "post_mean":
        lo, hi = norm.post_mean_window
        mask = (energy >= lo) & (energy <= hi)
        if mask.sum() < 2:
            raise PreprocessError(f"post-edge window {lo:g}..{hi:g} eV outside the data")
        scale = float(np.mean(mu[mask]))
        if not math.isfinite(scale) or scale <= 0:
            raise PreprocessError(f"post-edge mean not positive ({scale:.3g})")
        return mu / scale, {"method": "post_mean", "step": scale}
    if norm.use_larch and e_edge_abs is not None:
        try:
            return _larch_edge_step(energy, mu, norm, e_edge_abs)
        except Exception:  # noqa: BLE001 - any larch failure falls back to the own fit
            pass
    return _own_edge_step(energy, mu, norm)


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


def prepare_record(record: SpectrumRecord, grid: EnergyGrid, norm: Normalization,
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
    mu_norm, info = normalize(record.energy_rel_ev, record.mu_raw, norm, e_edge)
    on_grid = interpolate_to_grid(record.energy_rel_ev, mu_norm, grid, tolerance_ev)
    if criteria is not None:
        reason = screen_spectrum(grid.energy_ev, on_grid, criteria)
        if reason is not None:
            raise PreprocessError(reason)
    return on_grid, info
