"""Model predictions for a set of absorber sites: the type every layer receives.

Numpy only, read-only arrays, like :mod:`model_core.types` (from which it is still
importable as ``model_core.types.Prediction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from model_core.types import Band, SiteAttention, Spectrum, _frozen_array


@dataclass(frozen=True, eq=False)
class Prediction:
    """Model prediction for a set of absorber sites of one structure.

    Attributes:
        energy_ev: (G,) model grid, eV relative to the edge.
        site_indices: (M,) absorber indices into the structure.
        weights: (M,) weight of each site in the average.
        mu: (M, G) predicted normalized absorption per site.
        average: (G,) weighted mean over the sites.
        e0_ev: (M,) predicted absolute edge energies in eV, or None without an E0 head.
        attention: one :class:`SiteAttention` per site (empty when the model has none).
        model_name: name of the model that made it.
        trained: False when the model has no trained weights.
        element: absorbing element symbol.
        edge: absorption edge ("K").
        mu_spread: (M, G) standard deviation over the members of an ensemble model
            (their disagreement, a rough uncertainty), or None for a single model.
        mu_lo, mu_hi: (M, G) calibrated central interval per site (see ``band``), or None
            when the model carries no spread calibration (then only the raw, uncalibrated
            ``mu_spread`` exists).
        band: level and method of ``mu_lo``/``mu_hi`` (None without them).
        domain_score: (M,) distance of each site's learned environment to the training
            data, scaled so 95% of validation sites score <= 1 (> 1: outside the model's
            domain; see :mod:`model_core.trust.domain`), or None without a domain index.
        e0_spread_ev: (M,) standard deviation of ``e0_ev`` over the members of an ensemble
            (eV), or None for a single model or without an E0 head.
        e0_lo_ev, e0_hi_ev: (M,) calibrated central interval of each site's absolute E0 in
            eV (see ``e0_band``), or None when the model carries no E0 calibration.
        e0_band: level and method of ``e0_lo_ev``/``e0_hi_ev`` (None without them).
        grid_origin_ev: the absolute energy of the grid's zero when the model's grid is
            relative to one fixed energy (FDMNES data: the tabulated edge, 7112 eV for Fe,
            while ``e0_ev`` is the Fermi level); None when each site's grid is relative to
            its own E0 (FEFF). Every placement on the absolute axis goes through
            :attr:`site_zero_ev`.
    """

    energy_ev: np.ndarray
    site_indices: np.ndarray
    weights: np.ndarray
    mu: np.ndarray
    average: np.ndarray
    e0_ev: np.ndarray | None = None
    attention: tuple[SiteAttention, ...] = ()
    model_name: str = ""
    trained: bool = False
    element: str = ""
    edge: str = "K"
    mu_spread: np.ndarray | None = None
    mu_lo: np.ndarray | None = None
    mu_hi: np.ndarray | None = None
    band: Band | None = None
    domain_score: np.ndarray | None = None
    e0_spread_ev: np.ndarray | None = None
    e0_lo_ev: np.ndarray | None = None
    e0_hi_ev: np.ndarray | None = None
    e0_band: Band | None = None
    grid_origin_ev: float | None = None

    def __post_init__(self) -> None:
        for name, dtype in (("energy_ev", np.float64), ("site_indices", np.int64),
                            ("weights", np.float64), ("mu", np.float64), ("average", np.float64)):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype))
        if (self.mu_lo is None) != (self.band is None) or (self.mu_lo is None) != (self.mu_hi is None):
            raise ValueError("mu_lo, mu_hi and band come together")
        if not (self.e0_lo_ev is None) == (self.e0_hi_ev is None) == (self.e0_band is None):
            raise ValueError("e0_lo_ev, e0_hi_ev and e0_band come together")
        for name in ("e0_ev", "mu_spread", "mu_lo", "mu_hi", "domain_score", "e0_spread_ev", "e0_lo_ev", "e0_hi_ev"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen_array(getattr(self, name), np.float64))
        object.__setattr__(self, "attention", tuple(self.attention))

    @classmethod
    def combine(cls, parts: Sequence["Prediction"], weights: np.ndarray) -> "Prediction":
        """Join single-site predictions into one multi-site Prediction.

        Args:
            parts: single-site predictions of one model on one structure (as :meth:`split` makes).
            weights: (M,) weight of each part in the average.

        Returns:
            The prediction of all the parts' sites: ``average`` is the weighted mean of
            their spectra, as :meth:`Predictor.predict` computes it. ``e0_ev``,
            ``attention``, ``mu_spread``, the band, ``domain_score``, ``e0_spread_ev`` and
            the E0 interval are kept only when every part has them.
        """
        first = parts[0]
        mu = np.stack([p.mu[0] for p in parts])
        weights = np.asarray(weights, dtype=np.float64)
        e0 = None
        if all(p.e0_ev is not None and len(p.e0_ev) for p in parts):
            e0 = np.array([float(p.e0_ev[0]) for p in parts])
        attention = tuple(p.attention[0] for p in parts) if all(p.attention for p in parts) else ()
        def stacked(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.stack([v[0] for v in values])

        spread, lo, hi, score, e0_spread, e0_lo, e0_hi = (stacked(n) for n in (
            "mu_spread", "mu_lo", "mu_hi", "domain_score", "e0_spread_ev", "e0_lo_ev", "e0_hi_ev"))
        band = first.band if lo is not None and hi is not None and all(p.band == first.band for p in parts) else None
        lo, hi = (lo, hi) if band is not None else (None, None)
        e0_band = (first.e0_band if e0_lo is not None and all(p.e0_band == first.e0_band for p in parts)
                   else None)
        e0_lo, e0_hi = (e0_lo, e0_hi) if e0_band is not None else (None, None)
        return cls(
            energy_ev=first.energy_ev, site_indices=np.array([int(p.site_indices[0]) for p in parts]),
            weights=weights, mu=mu, average=np.average(mu, axis=0, weights=weights), e0_ev=e0,
            attention=attention, model_name=first.model_name, trained=first.trained,
            element=first.element, edge=first.edge, mu_spread=spread,
            mu_lo=lo, mu_hi=hi, band=band, domain_score=score,
            e0_spread_ev=e0_spread, e0_lo_ev=e0_lo, e0_hi_ev=e0_hi, e0_band=e0_band,
            grid_origin_ev=first.grid_origin_ev,
        )

    def split(self) -> list["Prediction"]:
        """One single-site Prediction (weight one) per site, in site order; inverse of :meth:`combine`."""
        out = []
        for k in range(len(self.site_indices)):
            out.append(Prediction(
                energy_ev=self.energy_ev, site_indices=self.site_indices[k:k + 1],
                weights=np.ones(1), mu=self.mu[k:k + 1], average=self.mu[k],
                e0_ev=None if self.e0_ev is None else self.e0_ev[k:k + 1],
                attention=(self.attention[k],) if len(self.attention) > k else (),
                model_name=self.model_name, trained=self.trained,
                element=self.element, edge=self.edge,
                mu_spread=None if self.mu_spread is None else self.mu_spread[k:k + 1],
                mu_lo=None if self.mu_lo is None else self.mu_lo[k:k + 1],
                mu_hi=None if self.mu_hi is None else self.mu_hi[k:k + 1], band=self.band,
                domain_score=None if self.domain_score is None else self.domain_score[k:k + 1],
                e0_spread_ev=None if self.e0_spread_ev is None else self.e0_spread_ev[k:k + 1],
                e0_lo_ev=None if self.e0_lo_ev is None else self.e0_lo_ev[k:k + 1],
                e0_hi_ev=None if self.e0_hi_ev is None else self.e0_hi_ev[k:k + 1], e0_band=self.e0_band,
                grid_origin_ev=self.grid_origin_ev,
            ))
        return out

    @property
    def average_spread(self) -> np.ndarray | None:
        """(G,) weighted mean over sites of ``mu_spread`` (None for a single model): an upper
        bound of the members' spread of :attr:`average`."""
        if self.mu_spread is None:
            return None
        return np.average(self.mu_spread, axis=0, weights=self.weights)

    @property
    def average_band(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(G,) lower and upper bounds for :attr:`average`: the weighted means of the sites'
        bounds (None without a band). Conservative: it assumes the sites' errors add up
        rather than partly cancel."""
        if self.mu_lo is None or self.mu_hi is None:
            return None
        return (np.average(self.mu_lo, axis=0, weights=self.weights),
                np.average(self.mu_hi, axis=0, weights=self.weights))

    @property
    def e0_halfwidth_ev(self) -> np.ndarray | None:
        """(M,) half-width in eV of each site's calibrated E0 interval (None without one)."""
        if self.e0_lo_ev is None or self.e0_hi_ev is None:
            return None
        return 0.5 * (self.e0_hi_ev - self.e0_lo_ev)

    @property
    def average_e0_ev(self) -> float | None:
        """Weighted mean over sites of ``e0_ev`` (None without an E0 head)."""
        if self.e0_ev is None or not len(self.e0_ev):
            return None
        return float(np.average(self.e0_ev, weights=self.weights))

    @property
    def average_e0_spread_ev(self) -> float | None:
        """Weighted mean over sites of ``e0_spread_ev``: an upper bound of the members'
        spread of :attr:`average_e0_ev` (None for a single model)."""
        if self.e0_spread_ev is None or not len(self.e0_spread_ev):
            return None
        return float(np.average(self.e0_spread_ev, weights=self.weights))

    @property
    def average_e0_interval_ev(self) -> tuple[float, float] | None:
        """Bounds for :attr:`average_e0_ev`: the weighted means of the sites' E0 bounds (None
        without an E0 calibration); conservative, as :attr:`average_band`."""
        if self.e0_lo_ev is None or self.e0_hi_ev is None or not len(self.e0_lo_ev):
            return None
        return (float(np.average(self.e0_lo_ev, weights=self.weights)),
                float(np.average(self.e0_hi_ev, weights=self.weights)))

    @property
    def site_zero_ev(self) -> np.ndarray | None:
        """(M,) absolute energy of each site's grid zero: where its spectrum goes on the
        absolute axis (``grid_origin_ev`` for every site when the grid has a fixed origin,
        else each site's ``e0_ev``; None when neither is known)."""
        if self.grid_origin_ev is not None:
            return np.full(len(self.site_indices), float(self.grid_origin_ev))
        if self.e0_ev is None or not len(self.e0_ev):
            return None
        return self.e0_ev

    @property
    def average_zero_ev(self) -> float | None:
        """Absolute energy of the zero of :attr:`average` (the weighted mean of
        :attr:`site_zero_ev`), or None."""
        zero = self.site_zero_ev
        return None if zero is None else float(np.average(zero, weights=self.weights))

    def site_spectrum(self, k: int) -> Spectrum:
        """Spectrum of the k-th predicted site (edge-relative energies)."""
        e0 = None if self.e0_ev is None else float(self.e0_ev[k])
        return Spectrum(self.energy_ev, self.mu[k], label=f"site {int(self.site_indices[k])}",
                        energy_reference="edge", e0_ev=e0,
                        metadata={"model": self.model_name, "trained": self.trained},
                        grid_origin_ev=self.grid_origin_ev)

    def average_spectrum(self) -> Spectrum:
        """Multiplicity-weighted average spectrum (edge-relative energies)."""
        return Spectrum(self.energy_ev, self.average, label="average", energy_reference="edge",
                        e0_ev=self.average_e0_ev, metadata={"model": self.model_name, "trained": self.trained},
                        grid_origin_ev=self.grid_origin_ev)
