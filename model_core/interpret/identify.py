"""Ranking candidate structures against one measured spectrum.

Every candidate's prediction (:mod:`model_core.interpret.library`) is placed with the
element's shared calibration, ``E_abs = E_rel + base + shift`` with ``base`` its own
predicted E0 (see :mod:`model_core.interpret.calibration`), and fitted
(:func:`model_core.interpret.fit.fit_spectrum`): Gaussian and Lorentzian broadening and
the scale are free, the shift only within ``calibration.shift_ev +- shift_tolerance_ev``
(default 1 eV, about twice the E0 error of the shipped models), so the chemical shift
between candidates stays where the model puts it instead of being aligned away.

Score (documented contract, chosen on principles, not tuned on measured data): with
n candidates, ``u_mse`` and ``u_deriv`` are the normalized ranks (0 = best, 1 = worst;
``(rank - 1) / (n - 1)``) of the fitted mean squared error (lower is better) and of
the fitted Pearson r of dmu/dE (higher is better), and

    score = 1 - (u_mse + u_deriv) / 2        (1: best on both; 0: worst on both)

The MSE rewards the right intensities, the derivative correlation the right
positions and shapes of the features whatever the normalization; ranks make the two
commensurable without any weight to tune. The score is relative to the candidates
ranked together; ties are broken by the fitted MSE.

Confidence of each row: the fraction of resampled comparisons in which that
candidate comes out first (for the top row: how often it stays first). Resamples are
a moving-block bootstrap over the energy points of the fit window (blocks of ~5 eV,
since neighbouring points are correlated), repeated for the ensemble average and
for each ensemble member's prediction (members rebuilt from the checkpoint, with the
fitted parameters held fixed; each counted with its weight in the ensemble's mean).
The fits are not redone per resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from model_core.interpret.calibration import Calibration, placement_base
from model_core.interpret.fit import FitResult, fit_spectrum
from model_core.interpret.library import Candidate

__all__ = ["RankedCandidate", "rank_candidates", "ranking_metadata", "scores", "SCORE_DEFINITION",
           "CONFIDENCE_DEFINITION", "DEFAULT_SHIFT_TOLERANCE_EV"]

DEFAULT_SHIFT_TOLERANCE_EV = 1.0
SCORE_DEFINITION = ("1 - (u_mse + u_deriv)/2, u = normalized rank (0 best) of the fitted MSE and of the "
                    "fitted Pearson r of dmu/dE among the candidates ranked together")
CONFIDENCE_DEFINITION = ("fraction of moving-block bootstrap resamples of the fit window (5 eV blocks), "
                         "for the ensemble average and each member (weighted as in the ensemble's mean), "
                         "in which the candidate ranks first")
_BLOCK_EV = 5.0


@dataclass(frozen=True, eq=False)
class RankedCandidate:
    """One row of a ranking.

    Attributes:
        rank: 1 = best.
        candidate: the predicted candidate.
        score: see the module docstring (0-1, higher is better).
        confidence: fraction of resamples in which it ranks first.
        fit: the fit with the shared calibration.
        base_ev: where its zero was placed before the shift (its predicted E0, or
            the tabulated edge without an E0 head), eV.
    """

    rank: int
    candidate: Candidate
    score: float
    confidence: float
    fit: FitResult
    base_ev: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON row of ``xanes-identify``."""
        fit = self.fit
        return {
            "rank": self.rank, "structure": self.candidate.path, "score": self.score,
            "confidence": self.confidence, "shift_ev": fit.shift_ev, "broaden_fwhm_ev": fit.broaden_fwhm_ev,
            "scale": fit.scale, "metrics": dict(fit.metrics_after),
            "gaussian_fwhm_ev": fit.parameters["gaussian_fwhm_ev"],
            "lorentzian_fwhm_ev": fit.parameters["lorentzian_fwhm_ev"],
            "stderr": dict(fit.stderr), "metrics_before": dict(fit.metrics_before),
            "e0_predicted": self.candidate.spectrum.e0_ev, "base_ev": self.base_ev,
            "sites": [int(i) for i in self.candidate.site_indices],
            "cached": self.candidate.cached,
            "domain_score": (None if self.candidate.domain_score is None
                             else [float(v) for v in self.candidate.domain_score]),
        }


def _normalized_ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """(C,) or (B, C): 0 for the best, 1 for the worst (average ranks for ties; NaN is worst)."""
    from scipy.stats import rankdata

    values = np.where(np.isfinite(values), values, np.inf if not higher_is_better else -np.inf)
    ranks = rankdata(-values if higher_is_better else values, axis=-1)
    n = values.shape[-1]
    return (ranks - 1.0) / (n - 1.0) if n > 1 else np.zeros_like(ranks)


def scores(mse: np.ndarray, pearson_deriv: np.ndarray) -> np.ndarray:
    """Scores of the module docstring from (..., C) metrics."""
    return 1.0 - 0.5 * (_normalized_ranks(mse, False) + _normalized_ranks(pearson_deriv, True))


def _winners(measured: np.ndarray, curves: np.ndarray, energy: np.ndarray, n_resamples: int,
             rng: np.random.Generator) -> np.ndarray:
    """(n_resamples,) index of the first candidate for block-bootstrap resamples.

    Args:
        measured: (n,) measured curve; curves: (C, n) fitted curves; energy: (n,) grid.
    """
    n = len(energy)
    step = float(energy[1] - energy[0])
    block = int(np.clip(round(_BLOCK_EV / step), 1, n))
    n_blocks = int(math.ceil(n / block))
    starts = rng.integers(0, n - block + 1, size=(n_resamples, n_blocks))
    index = (starts[:, :, None] + np.arange(block)).reshape(n_resamples, -1)[:, :n]  # (B, n)
    d_meas = np.gradient(measured, energy)[index]  # (B, n)
    d_pred = np.gradient(curves, energy, axis=1)[:, index]  # (C, B, n)
    mse = np.mean((curves[:, index] - measured[index]) ** 2, axis=2).T  # (B, C)
    a = d_meas - d_meas.mean(axis=1, keepdims=True)
    b = d_pred - d_pred.mean(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (np.einsum("bn,cbn->bc", a, b)
             / (np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=2).T))
    return _best(scores(mse, r), mse)


def _variant_weights(candidates: Sequence[Any], n_members: int) -> np.ndarray:
    """(1 + n_members,) weight of the ensemble average's resamples and each member's.

    Members count as the ensemble weights them in its mean (the candidates come from one
    model, so the first candidate's weights are everyone's); their weights sum to
    ``n_members``, as equal members' do.
    """
    own = candidates[0].member_weights if candidates else None
    members = (np.ones(n_members) if own is None or len(own) != n_members
               else np.asarray(own, dtype=np.float64) * n_members / float(np.sum(own)))
    return np.concatenate([[1.0], members])


def _best(score: np.ndarray, mse: np.ndarray) -> np.ndarray:
    """(B,) column index of the best score per row; ties go to the lower MSE, as in the ranking."""
    top = score >= score.max(axis=1, keepdims=True) - 1e-12
    return np.argmin(np.where(top, mse, np.inf), axis=1)


def rank_candidates(measured_energy_ev: np.ndarray, measured_mu: np.ndarray, candidates: Sequence[Candidate],
                    calibration: Calibration, *, element: str,
                    shift_tolerance_ev: float = DEFAULT_SHIFT_TOLERANCE_EV,
                    window: tuple[float, float] | None = None, background: bool = False,
                    n_resamples: int = 200, seed: int = 0) -> list[RankedCandidate]:
    """Fit every candidate with the shared calibration and rank them (module docstring).

    Args:
        measured_energy_ev, measured_mu: (N,) normalized (flattened) measured spectrum, absolute eV.
        candidates: predicted candidates (at least one).
        calibration: the element's calibration.
        element: absorbing element (for the tabulated base without an E0 head).
        shift_tolerance_ev: half-width of the shift bounds around the calibration, eV.
        window: absolute eV to fit over. None: the measured range over the whole
            predicted grid (placed at the calibration), common to all candidates.
        background: also fit a linear background.
        n_resamples: bootstrap resamples per prediction (average and each member).
        seed: seed of the resampling.

    Returns:
        Rows best first.

    Raises:
        ValueError: no candidates, or a candidate's fit window holds too few points.
    """
    if not candidates:
        raise ValueError("no candidates to rank")
    bases = [placement_base(c.spectrum, element)[0] for c in candidates]
    if window is None:
        # One window for every candidate: their metrics are then on the same points.
        placed = [(c.spectrum.energy_ev[0] + b, c.spectrum.energy_ev[-1] + b) for c, b in zip(candidates, bases)]
        window = (max(p[0] for p in placed) + calibration.shift_ev + shift_tolerance_ev,
                  min(p[1] for p in placed) + calibration.shift_ev - shift_tolerance_ev)
    shift = calibration.shift_ev
    fits = [fit_spectrum(measured_energy_ev, measured_mu, c.spectrum.energy_ev, c.spectrum.mu, offset_ev=b,
                         shift_start_ev=shift,
                         shift_bounds_ev=(shift - shift_tolerance_ev, shift + shift_tolerance_ev),
                         window=window, background=background)
            for c, b in zip(candidates, bases)]
    mse = np.array([f.metrics_after["mse"] for f in fits])
    deriv = np.array([f.metrics_after["pearson_r_deriv"] for f in fits])
    score = scores(mse, deriv)

    # Candidates placed at different E0 overlap the measurement over slightly different
    # windows; the bootstrap compares them on the measured points that every fit covers.
    lo = max(float(f.energy_ev[0]) for f in fits)
    hi = min(float(f.energy_ev[-1]) for f in fits)
    energy = np.asarray(fits[0].energy_ev)
    energy = energy[(energy >= lo) & (energy <= hi)]
    measured = np.interp(energy, fits[0].energy_ev, fits[0].measured)

    def common(f, curve):
        return np.interp(energy, f.energy_ev, curve)

    counts = np.zeros(len(candidates))
    if len(energy) >= 2 and len(candidates) > 1 and n_resamples > 0:
        rng = np.random.default_rng(seed)
        variants = [np.stack([common(f, f.fitted) for f in fits])]
        n_members = min(len(c.members) for c in candidates)
        for m in range(n_members):
            variants.append(np.stack([common(f, f.curve_for(c.spectrum.energy_ev, c.members[m], b))
                                      for f, c, b in zip(fits, candidates, bases)]))
        for curves, weight in zip(variants, _variant_weights(candidates, n_members)):
            counts += weight * np.bincount(_winners(measured, curves, energy, n_resamples, rng),
                                           minlength=len(candidates))
        confidence = counts / counts.sum()
    else:
        confidence = np.ones(len(candidates)) if len(candidates) == 1 else np.full(len(candidates), math.nan)
    order = sorted(range(len(candidates)), key=lambda i: (-score[i], mse[i]))
    return [RankedCandidate(rank=k + 1, candidate=candidates[i], score=float(score[i]),
                            confidence=float(confidence[i]), fit=fits[i], base_ev=float(bases[i]))
            for k, i in enumerate(order)]


def ranking_metadata(calibration: Calibration) -> Mapping[str, str]:
    """``# key: value`` lines describing how a ranking was made."""
    return {"score": SCORE_DEFINITION, "confidence": CONFIDENCE_DEFINITION,
            **dict(calibration.header_items())}
