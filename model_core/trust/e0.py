"""Calibrated intervals of the predicted edge energy E0 (split-conformal, one number per level).

Method. On validation sites with true absolute edge energies y (N,), predicted (ensemble
mean) E0 m (N,) and, for an ensemble, the members' standard deviation s (N,), the
nonconformity score of a site is

* ``r = |y - m| / max(s, floor)`` for an ensemble ("scaled": the half-width grows with the
  members' disagreement), ``floor`` being :data:`~model_core.trust.calibration.FLOOR_FRACTION`
  of the median spread so members that happen to agree still get a finite interval;
* ``r = |y - m|`` in eV for a single model (one half-width for every site).

The scale ``q`` at a level is the conformal quantile of ``r`` at rank
``ceil((N + 1) * level)``; the interval is ``m ± q * max(s, floor)`` (scaled) or ``m ± q``.
Under exchangeability of validation and new sites at least ``level`` of new sites' true E0
fall inside, whatever the error distribution. Sites without a known E0 are left out.

Stored in a checkpoint as ``"e0_calibration"`` (plain types only, readable with
``torch.load(weights_only=True)``): see :meth:`E0Calibration.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from model_core.trust.calibration import FLOOR_FRACTION, LEVELS, conformal_quantile

SCALED_METHOD = "split-conformal quantile of |E0 error|/members' E0 spread"
PLAIN_METHOD = "split-conformal quantile of |E0 error|"


@dataclass(frozen=True)
class E0Calibration:
    """Scales turning a predicted E0 (and its members' spread) into a central interval.

    Attributes:
        level: the default central-interval probability.
        levels: every calibrated level (includes ``level``), increasing.
        scales: one scale per level: a multiplier of ``max(spread, spread_floor_ev)`` when
            ``scaled``, else the half-width itself in eV.
        scaled: whether the half-width scales with the members' E0 spread (ensembles).
        spread_floor_ev: the smallest spread used, eV (0 when not ``scaled``).
        method: how the scales were fitted.
        n_sites: validation sites with a known E0 used.
        info: free-form provenance (data, ids, held-out coverage).
    """

    level: float
    levels: tuple[float, ...]
    scales: tuple[float, ...]
    scaled: bool
    spread_floor_ev: float = 0.0
    method: str = ""
    n_sites: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)

    def scale(self, level: float | None = None) -> float:
        """The scale at ``level`` (default: :attr:`level`).

        Raises:
            ValueError: ``level`` was not calibrated.
        """
        level = self.level if level is None else float(level)
        for value, scale in zip(self.levels, self.scales):
            if math.isclose(value, level, abs_tol=1e-9):
                return scale
        raise ValueError(f"no E0 calibration at level {level} (have {', '.join(map(str, self.levels))})")

    def halfwidth_ev(self, spread_ev: np.ndarray | None, n_sites: int,
                     level: float | None = None) -> np.ndarray | None:
        """(n_sites,) half-width in eV of each site's interval, or None when a scaled
        calibration meets a prediction without the members' spread (a single member)."""
        if not self.scaled:
            return np.full(n_sites, self.scale(level))
        if spread_ev is None:
            return None
        return self.scale(level) * np.maximum(np.asarray(spread_ev, dtype=np.float64), self.spread_floor_ev)

    def interval(self, e0_ev: np.ndarray, spread_ev: np.ndarray | None = None, level: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        """Lower and upper bounds ``e0 ∓ half-width``, each (M,) eV, or None as :meth:`halfwidth_ev`."""
        e0 = np.asarray(e0_ev, dtype=np.float64)
        half = self.halfwidth_ev(spread_ev, len(e0), level)
        return None if half is None else (e0 - half, e0 + half)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint entry: ``{"level", "levels", "scales", "scaled", "spread_floor_ev",
        "method", "n_sites", "info"}`` (plain floats, lists and strings)."""
        return {"level": float(self.level), "levels": [float(v) for v in self.levels],
                "scales": [float(v) for v in self.scales], "scaled": bool(self.scaled),
                "spread_floor_ev": float(self.spread_floor_ev), "method": self.method,
                "n_sites": int(self.n_sites), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "E0Calibration":
        """Read :meth:`to_dict`'s entry."""
        return cls(level=float(data["level"]), levels=tuple(float(v) for v in data["levels"]),
                   scales=tuple(float(v) for v in data["scales"]), scaled=bool(data["scaled"]),
                   spread_floor_ev=float(data.get("spread_floor_ev", 0.0)), method=str(data.get("method", "")),
                   n_sites=int(data.get("n_sites", 0)), info=dict(data.get("info") or {}))


def min_sites(level: float) -> int:
    """The fewest sites whose conformal quantile at ``level`` is finite."""
    return math.ceil(level / (1.0 - level) - 1e-9)


def fit_e0_calibration(true_ev: np.ndarray, e0_ev: np.ndarray, spread_ev: np.ndarray | None = None,
                       level: float = 0.9, levels: tuple[float, ...] = LEVELS,
                       info: Mapping[str, Any] | None = None) -> E0Calibration:
    """Fit the conformal E0 scales on validation sites (see module docstring).

    Args:
        true_ev: (N,) true absolute E0 in eV (NaN where unknown: left out).
        e0_ev: (N,) predicted absolute E0 in eV.
        spread_ev: (N,) members' standard deviation of E0 in eV, or None for a single model.
        level: the default level.
        levels: further levels to store (dropped when there are too few sites for them).
        info: provenance stored with it.

    Raises:
        ValueError: shapes differ, or too few sites with a known E0 for ``level``.
    """
    true, e0 = np.asarray(true_ev, dtype=np.float64), np.asarray(e0_ev, dtype=np.float64)
    spread = None if spread_ev is None else np.asarray(spread_ev, dtype=np.float64)
    if true.ndim != 1 or true.shape != e0.shape or (spread is not None and spread.shape != e0.shape):
        raise ValueError(f"true, predicted E0 and spread must share one (N,) shape, got {true.shape}, "
                         f"{e0.shape}, {None if spread is None else spread.shape}")
    known = np.isfinite(true) & np.isfinite(e0)
    if int(known.sum()) < min_sites(level):
        raise ValueError(f"an E0 interval at level {level:g} needs at least {min_sites(level)} validation "
                         f"sites with a known E0, got {int(known.sum())}")
    error = np.abs(true[known] - e0[known])
    scaled = spread is not None and float(np.median(spread[known])) > 0
    floor = FLOOR_FRACTION * float(np.median(spread[known])) if scaled else 0.0
    scores = error / np.maximum(spread[known], floor) if scaled else error
    fitted = {q: float(conformal_quantile(scores, q)) for q in sorted({float(level), *map(float, levels)})}
    kept = {q: v for q, v in fitted.items() if np.isfinite(v)}
    if float(level) not in kept:
        raise ValueError(f"an E0 interval at level {level:g} needs more than {len(error)} validation sites")
    return E0Calibration(level=float(level), levels=tuple(kept), scales=tuple(kept.values()), scaled=scaled,
                         spread_floor_ev=floor, method=SCALED_METHOD if scaled else PLAIN_METHOD,
                         n_sites=len(error), info=dict(info or {}))


def e0_coverage(true_ev: np.ndarray, lo_ev: np.ndarray, hi_ev: np.ndarray) -> float:
    """Fraction of sites with a known E0 inside ``lo..hi`` (NaN when none is known)."""
    true = np.asarray(true_ev, dtype=np.float64)
    known = np.isfinite(true)
    if not known.any():
        return math.nan
    return float(np.mean((true[known] >= np.asarray(lo_ev)[known]) & (true[known] <= np.asarray(hi_ev)[known])))
