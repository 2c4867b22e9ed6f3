"""Linear combinations of predicted spectra: Athena's LCF with predicted references.

The measured spectrum is fitted as ``scale * sum_i f_i mu_i`` with fractions
``f_i >= 0``, ``sum f_i = 1``; every component is placed with the shared calibration
at its own predicted E0 (as in :mod:`model_core.interpret.identify`) and they share
one shift (within the calibration's tolerance), one Gaussian and one Lorentzian
broadening (:func:`model_core.interpret.fit.fit_components`, whose amplitudes
``a_i >= 0`` give ``scale = sum a`` and ``f = a / sum a``).

Fraction errors: the delta method on the amplitudes' covariance,
``cov_f = D cov_a D^T`` with ``D_ij = (delta_ij * S - a_i) / S^2``, ``S = sum a``.

Combinations: every subset of 1..K of the candidates given (the caller passes the
top N <= 8 of a ranking), best first by the reduced chi-square
``sum(r^2) / (n - p)`` (p free parameters), so that an extra component has to
pay for itself, as Athena's reduced chi-square does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from model_core.interpret.calibration import Calibration, placement_base
from model_core.interpret.fit import FitResult, fit_components
from model_core.interpret.identify import DEFAULT_SHIFT_TOLERANCE_EV
from model_core.interpret.library import Candidate

__all__ = ["LcfResult", "MAX_LCF_CANDIDATES", "fractions_with_errors", "linear_combinations"]

#: Largest number of candidates whose subsets are enumerated.
MAX_LCF_CANDIDATES = 8


@dataclass(frozen=True, eq=False)
class LcfResult:
    """One fitted combination.

    Attributes:
        candidates: the components.
        fractions: (K,) fractions (>= 0, sum 1).
        stderr: (K,) their standard errors.
        fit: the underlying fit (shared shift, broadening, amplitudes).
        reduced_chi2: ``sum(r^2) / (n - p)``.
    """

    candidates: tuple[Candidate, ...]
    fractions: np.ndarray
    stderr: np.ndarray
    fit: FitResult
    reduced_chi2: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of ``xanes-identify --lcf``."""
        return {
            "components": [{"structure": c.path, "fraction": float(f), "stderr": float(s)}
                           for c, f, s in zip(self.candidates, self.fractions, self.stderr)],
            "metrics": dict(self.fit.metrics_after), "reduced_chi2": self.reduced_chi2,
            "shift_ev": self.fit.shift_ev, "broaden_fwhm_ev": self.fit.broaden_fwhm_ev, "scale": self.fit.scale,
        }


def fractions_with_errors(fit: FitResult) -> tuple[np.ndarray, np.ndarray]:
    """Fractions and their delta-method standard errors from a fit's amplitudes."""
    names = list(fit.parameter_names)
    index = [i for i, n in enumerate(names) if n.startswith("amplitude_") or n == "scale"]
    a = np.array([fit.parameters[names[i]] for i in index])
    total = float(a.sum())
    if total <= 0:
        return np.full(len(a), 1.0 / len(a)), np.full(len(a), np.nan)
    fractions = a / total
    d = (np.eye(len(a)) * total - a[:, None]) / total ** 2  # D_ij = df_i/da_j
    cov_a = np.asarray(fit.covariance)[np.ix_(index, index)]
    cov_f = d @ cov_a @ d.T
    return fractions, np.sqrt(np.clip(np.diag(cov_f), 0.0, None))


def linear_combinations(measured_energy_ev: np.ndarray, measured_mu: np.ndarray,
                        candidates: Sequence[Candidate], calibration: Calibration, max_components: int, *,
                        element: str, shift_tolerance_ev: float = DEFAULT_SHIFT_TOLERANCE_EV,
                        window: tuple[float, float] | None = None, background: bool = False,
                        start: FitResult | None = None, n_best: int = 10) -> list[LcfResult]:
    """Fit every combination of 1..``max_components`` of ``candidates``; best first.

    Args:
        measured_energy_ev, measured_mu: (N,) the measured spectrum (normalized, absolute eV).
        candidates: at most :data:`MAX_LCF_CANDIDATES` predicted candidates.
        calibration: the element's calibration (shift bounded around it).
        max_components: K >= 1.
        element: absorbing element.
        shift_tolerance_ev: half-width of the shift bounds around the calibration, eV.
        window: absolute eV to fit; None as in :func:`~model_core.interpret.identify.rank_candidates`.
        background: also fit a linear background.
        start: a fit whose shift and broadening start every combination (e.g. the best
            candidate's), else the calibration and default widths.
        n_best: how many combinations to return.

    Raises:
        ValueError: K < 1, too many candidates, or no overlap.
    """
    if max_components < 1:
        raise ValueError("--lcf needs K >= 1 components")
    if len(candidates) > MAX_LCF_CANDIDATES:
        raise ValueError(f"at most {MAX_LCF_CANDIDATES} candidates can be combined, got {len(candidates)}")
    bases = [placement_base(c.spectrum, element)[0] for c in candidates]
    shift = calibration.shift_ev
    bounds = (shift - shift_tolerance_ev, shift + shift_tolerance_ev)
    options: dict[str, Any] = {"shift_start_ev": shift, "gaussian_start_ev": (1.0, 3.0)}
    if start is not None:
        options = {"shift_start_ev": float(np.clip(start.shift_ev, *bounds)),
                   "gaussian_start_ev": start.parameters["gaussian_fwhm_ev"],
                   "lorentzian_start_ev": start.parameters["lorentzian_fwhm_ev"]}
    if window is None:
        placed = [(c.spectrum.energy_ev[0] + b, c.spectrum.energy_ev[-1] + b) for c, b in zip(candidates, bases)]
        window = (max(p[0] for p in placed) + bounds[1], min(p[1] for p in placed) + bounds[0])
    results = []
    for k in range(1, min(max_components, len(candidates)) + 1):
        for subset in itertools.combinations(range(len(candidates)), k):
            fit = fit_components(measured_energy_ev, measured_mu,
                                 [(candidates[i].spectrum.energy_ev, candidates[i].spectrum.mu) for i in subset],
                                 [bases[i] for i in subset], shift_bounds_ev=bounds, window=window,
                                 background=background, **options)
            fractions, stderr = fractions_with_errors(fit)
            n_free = len(fit.parameter_names) - len(fit.fixed)
            dof = max(1, len(fit.energy_ev) - n_free)
            chi2 = float(np.sum((np.asarray(fit.fitted) - np.asarray(fit.measured)) ** 2) / dof)
            results.append(LcfResult(candidates=tuple(candidates[i] for i in subset), fractions=fractions,
                                     stderr=stderr, fit=fit, reduced_chi2=chi2))
    results.sort(key=lambda r: r.reduced_chi2)
    return results[:n_best]
