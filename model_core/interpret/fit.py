"""One least-squares fit of predicted spectra to a measured one: shift, broadening, scale.

Model of the measured curve ``y(E)`` on a uniform grid over the fit window::

    y(E) ~ L_w * G_w * (sum_i a_i mu_i)(E - offset_i - shift) + b0 + b1 (E - E_mid)

``mu_i`` are predicted spectra on edge-relative energies, placed at ``offset_i`` (the
predicted E0, plus the element's calibration shift where there is one); ``G_w`` and
``L_w`` are convolutions with a Gaussian and a Lorentzian of FWHM ``w_G`` and
``w_L`` (a Voigt profile; both with :func:`model_core.spectra.align.broaden`, which
resamples to a uniform grid); ``a_i >= 0`` are amplitudes (one component: ``scale``);
``b0, b1`` an optional linear background. ``scipy.optimize.least_squares`` (trust
region reflective, bounds honoured) fits every free parameter at once.

Standard errors: ``sqrt(diag((J^T J)^-1)) * s`` with ``J`` the Jacobian of the
residuals at the optimum and ``s^2 = sum(r^2) / (n - p)`` (n grid points, p free
parameters). Grid points are interpolated from the measurement, so neighbouring
residuals are correlated: the errors are a lower bound when the grid is finer than
the measured sampling (it is not, by default: the grid step is the measured spacing
clipped to 0.1-1 eV, as in :func:`model_core.spectra.align.similarity`).

Usage::

    result = fit_spectrum(norm.energy_ev, norm.flat, prediction.energy_ev, prediction.average,
                          offset_ev=e0_pred + calibration.shift_ev,
                          shift_bounds_ev=(-1.0, 1.0))
    result.parameters["shift_ev"], result.stderr["shift_ev"], result.metrics_after["mse"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from model_core.spectra.align import broaden, comparison_grid, comparison_metrics, default_step_ev

__all__ = ["FitResult", "fit_comparison", "fit_components", "fit_spectrum", "voigt_fwhm"]

#: Largest broadening FWHM a fit may reach, eV (beyond it every XANES feature is gone).
MAX_FWHM_EV = 15.0
# Below this FWHM (eV) a convolution changes nothing visible on a >= 0.1 eV grid, and
# broaden()'s resampling step (FWHM/10) would make the grid needlessly fine.
_MIN_FWHM_EV = 0.05
_MIN_POINTS = 8
_SHAPE = ("shift_ev", "gaussian_fwhm_ev", "lorentzian_fwhm_ev")
_BACKGROUND = ("background_offset", "background_slope")


def voigt_fwhm(gaussian_fwhm_ev: float, lorentzian_fwhm_ev: float) -> float:
    """FWHM of a Voigt profile (Olivero & Longbothum 1977, accurate to 0.02%)."""
    g, lo = float(gaussian_fwhm_ev), float(lorentzian_fwhm_ev)
    return 0.5346 * lo + math.sqrt(0.2166 * lo * lo + g * g)


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted comparison of predicted and measured spectra on one absolute grid.

    Attributes:
        parameter_names: names of the parameter vector: ``shift_ev`` (added after
            placing at ``offsets_ev``), ``gaussian_fwhm_ev``, ``lorentzian_fwhm_ev``, then
            ``scale`` (one component) or ``amplitude_0..K-1``, then ``background_offset``
            and ``background_slope`` (per eV from the window centre) when fitted.
        parameters: value of each parameter.
        stderr: standard error of each parameter (NaN for a fixed one).
        covariance: (P, P) covariance of the parameters (NaN rows/columns for fixed ones).
        fixed: names of the parameters held at their starting value.
        metrics_before: ``mse``, ``pearson_r``, ``pearson_r_deriv``, ``cosine``,
            ``n_points`` at the starting parameters.
        metrics_after: the same at the optimum.
        energy_ev: (n,) uniform absolute energies of the fit window, eV.
        measured: (n,) measured curve on ``energy_ev``.
        initial: (n,) model curve at the starting parameters.
        fitted: (n,) model curve at the optimum.
        offsets_ev: placement of each component (its zero of energy), eV.
        shift_bounds_ev: (lo, hi) bounds of ``shift_ev`` (infinite when free).
        window: (lo, hi) absolute eV fitted.
        success: whether the optimizer reports convergence.
        message: the optimizer's message.
    """

    parameter_names: tuple[str, ...]
    parameters: Mapping[str, float]
    stderr: Mapping[str, float]
    covariance: np.ndarray
    fixed: tuple[str, ...]
    metrics_before: Mapping[str, float]
    metrics_after: Mapping[str, float]
    energy_ev: np.ndarray
    measured: np.ndarray
    initial: np.ndarray
    fitted: np.ndarray
    offsets_ev: tuple[float, ...]
    shift_bounds_ev: tuple[float, float]
    window: tuple[float, float]
    success: bool = True
    message: str = ""

    def __post_init__(self) -> None:
        for name in ("covariance", "energy_ev", "measured", "initial", "fitted"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        for name in ("parameters", "stderr", "metrics_before", "metrics_after"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def shift_ev(self) -> float:
        return float(self.parameters["shift_ev"])

    @property
    def broaden_fwhm_ev(self) -> float:
        """FWHM of the fitted Voigt broadening, eV."""
        return voigt_fwhm(self.parameters["gaussian_fwhm_ev"], self.parameters["lorentzian_fwhm_ev"])

    @property
    def scale(self) -> float:
        """The amplitude scale (the sum of the amplitudes for several components)."""
        if "scale" in self.parameters:
            return float(self.parameters["scale"])
        return float(sum(v for k, v in self.parameters.items() if k.startswith("amplitude_")))

    def curve_for(self, energy_rel_ev: np.ndarray, mu: np.ndarray, offset_ev: float) -> np.ndarray:
        """(n,) another spectrum through this fit's model and parameters, on ``energy_ev``.

        For one-component fits (e.g. an ensemble member's prediction in place of the average).
        """
        model = _Model([(energy_rel_ev, mu)], [offset_ev], np.asarray(self.energy_ev),
                       background="background_offset" in self.parameters)
        return model.curve(np.array([self.parameters[n] for n in self.parameter_names]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary (no curves); NaN stays NaN (callers map it to null)."""
        return {
            "parameters": {k: {"value": float(v), "stderr": float(self.stderr[k])}
                           for k, v in self.parameters.items()},
            "fixed": list(self.fixed),
            "broaden_fwhm_ev": self.broaden_fwhm_ev,
            "metrics_before": dict(self.metrics_before),
            "metrics_after": dict(self.metrics_after),
            "window_ev": list(self.window),
            "shift_bounds_ev": list(self.shift_bounds_ev),
            "offsets_ev": list(self.offsets_ev),
            "success": bool(self.success),
            "message": self.message,
        }


class _Model:
    """The model curve of the module docstring for K components on a fixed fit grid."""

    def __init__(self, components: Sequence[tuple[np.ndarray, np.ndarray]], offsets: Sequence[float],
                 energy: np.ndarray, background: bool) -> None:
        placed = [np.asarray(e, dtype=np.float64) + float(o) for (e, _), o in zip(components, offsets)]
        lo = min(p[0] for p in placed)
        hi = max(p[-1] for p in placed)
        # One uniform grid for the mixture: broadening and shifting commute with the sum,
        # so each evaluation broadens once whatever the number of components.
        step = max(min(float(np.min(np.diff(p))) for p in placed) / 2.0, 0.02)
        self.grid = lo + step * np.arange(int(math.floor((hi - lo) / step)) + 1)
        self.stack = np.stack([np.interp(self.grid, p, np.asarray(m, dtype=np.float64))
                               for p, (_, m) in zip(placed, components)])  # (K, g)
        self.energy = energy
        self.centre = 0.5 * (energy[0] + energy[-1])
        self.k = len(components)
        self.background = background

    def basis(self, shift: float, gaussian: float, lorentzian: float) -> np.ndarray:
        """(K, n) broadened, shifted components on the fit grid."""
        rows = []
        for row in self.stack:
            if gaussian > _MIN_FWHM_EV:
                row = broaden(self.grid, row, gaussian, "gaussian")
            if lorentzian > _MIN_FWHM_EV:
                row = broaden(self.grid, row, lorentzian, "lorentzian")
            rows.append(np.interp(self.energy, self.grid + shift, row))
        return np.stack(rows)

    def curve(self, x: np.ndarray) -> np.ndarray:
        shift, gaussian, lorentzian = x[:3]
        amplitudes = x[3:3 + self.k]
        mix = amplitudes @ self.stack
        if gaussian > _MIN_FWHM_EV:
            mix = broaden(self.grid, mix, gaussian, "gaussian")
        if lorentzian > _MIN_FWHM_EV:
            mix = broaden(self.grid, mix, lorentzian, "lorentzian")
        out = np.interp(self.energy, self.grid + shift, mix)
        if self.background:
            out = out + x[3 + self.k] + x[4 + self.k] * (self.energy - self.centre)
        return out


class _Jacobian:
    """Central differences with absolute steps, one-sided at a bound."""

    def __init__(self, residuals, steps: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        self.residuals, self.steps, self.lower, self.upper = residuals, steps, lower, upper

    def __call__(self, p: np.ndarray) -> np.ndarray:
        columns = []
        for i, h in enumerate(self.steps):
            h = h * max(1.0, abs(p[i])) if i >= 3 else h
            hi, lo = p.copy(), p.copy()
            hi[i] = min(p[i] + h, self.upper[i])
            lo[i] = max(p[i] - h, self.lower[i])
            columns.append((self.residuals(hi) - self.residuals(lo)) / (hi[i] - lo[i]))
        return np.stack(columns, axis=1)


def _linear_start(model: _Model, x: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``x`` with amplitudes (>= 0) and background solved by least squares at its shape parameters."""
    from scipy.optimize import nnls

    basis = model.basis(*x[:3]).T  # (n, K)
    if model.background:
        # NNLS needs non-negative columns; an offset of either sign is two columns.
        ramp = model.energy - model.centre
        basis = np.column_stack([basis, np.ones_like(ramp), -np.ones_like(ramp), ramp, -ramp])
    coefficients, _ = nnls(basis, measured)
    out = x.copy()
    out[3:3 + model.k] = coefficients[:model.k]
    if model.background:
        c = coefficients[model.k:]
        out[3 + model.k] = c[0] - c[1]
        out[4 + model.k] = c[2] - c[3]
    if not np.any(out[3:3 + model.k] > 0):
        out[3:3 + model.k] = 1.0 / model.k
    return out


def fit_components(measured_energy_ev: np.ndarray, measured_mu: np.ndarray,
                   components: Sequence[tuple[np.ndarray, np.ndarray]], offsets_ev: Sequence[float], *,
                   shift_start_ev: float = 0.0, shift_bounds_ev: tuple[float, float] | None = None,
                   gaussian_start_ev: float | Sequence[float] = (1.0, 3.0), lorentzian_start_ev: float = 0.5,
                   fix: Sequence[str] = (), background: bool = False,
                   window: tuple[float, float] | None = None, step_ev: float | None = None,
                   max_fwhm_ev: float = MAX_FWHM_EV) -> FitResult:
    """Fit a sum of K predicted spectra (amplitudes >= 0) to a measured spectrum.

    Args:
        measured_energy_ev: (N,) absolute energies, eV, increasing.
        measured_mu: (N,) normalized (or flattened) measured absorption.
        components: K pairs ``(energy_rel_ev (G,), mu (G,))`` of predicted spectra on
            energies relative to their own zero.
        offsets_ev: K absolute energies where each component's zero goes, eV.
        shift_start_ev: starting shift, eV (added to every offset).
        shift_bounds_ev: (lo, hi) bounds of the shift, eV; None leaves it free.
        gaussian_start_ev: starting Gaussian FWHM(s); several values start several fits
            and the lowest cost wins (the cost is not convex in the width).
        lorentzian_start_ev: starting Lorentzian FWHM, eV.
        fix: names of parameters held at their start (e.g. ``("lorentzian_fwhm_ev",)``).
        background: also fit a linear background.
        window: (lo, hi) absolute eV to fit; None for the overlap of the measured data
            and the placed components (at the starting shift).
        step_ev: fit grid step; None uses the measured spacing clipped to 0.1-1 eV.
        max_fwhm_ev: upper bound of both widths.

    Returns:
        The :class:`FitResult`.

    Raises:
        ValueError: inconsistent inputs, a window with too few points, an unknown
            parameter name in ``fix``, or a starting shift outside its bounds.
    """
    from scipy.optimize import least_squares

    me = np.asarray(measured_energy_ev, dtype=np.float64)
    mm = np.asarray(measured_mu, dtype=np.float64)
    if me.ndim != 1 or me.shape != mm.shape or len(me) < 2 or not np.all(np.diff(me) > 0):
        raise ValueError("measured energies and mu must be 1-D of equal length, energies increasing")
    if not components or len(components) != len(offsets_ev):
        raise ValueError("one offset per component is needed, and at least one component")
    k = len(components)
    names = [*_SHAPE, *(("scale",) if k == 1 else tuple(f"amplitude_{i}" for i in range(k)))]
    if background:
        names += list(_BACKGROUND)
    unknown = set(fix) - set(names)
    if unknown:
        raise ValueError(f"cannot fix unknown parameter(s) {', '.join(sorted(unknown))}")

    placed_lo = max(float(np.asarray(e)[0]) + o for (e, _), o in zip(components, offsets_ev)) + shift_start_ev
    placed_hi = min(float(np.asarray(e)[-1]) + o for (e, _), o in zip(components, offsets_ev)) + shift_start_ev
    lo, hi = max(me[0], placed_lo), min(me[-1], placed_hi)
    if window is not None:
        lo, hi = max(lo, float(window[0])), min(hi, float(window[1]))
    energy = comparison_grid(lo, hi, step_ev or default_step_ev(me, lo, hi)) if hi > lo else np.zeros(0)
    if len(energy) < _MIN_POINTS:
        raise ValueError(f"the fit window {lo:.1f}-{hi:.1f} eV holds fewer than {_MIN_POINTS} points "
                         f"of both the measured ({me[0]:.1f}-{me[-1]:.1f} eV) and the predicted spectra")
    measured = np.interp(energy, me, mm)
    model = _Model(components, offsets_ev, energy, background)

    bounds_shift = (-np.inf, np.inf) if shift_bounds_ev is None else tuple(float(b) for b in shift_bounds_ev)
    if not bounds_shift[0] <= shift_start_ev <= bounds_shift[1]:
        raise ValueError(f"starting shift {shift_start_ev:g} eV is outside its bounds {bounds_shift}")
    lower = np.array([bounds_shift[0], 0.0, 0.0, *([0.0] * k), *([-np.inf] * (2 * background))])
    upper = np.array([bounds_shift[1], max_fwhm_ev, max_fwhm_ev, *([np.inf] * k),
                      *([np.inf] * (2 * background))])
    free = np.array([n not in fix for n in names])

    # Absolute difference steps: broaden() resamples on a grid whose step follows the
    # FWHM, so relative steps of ~1e-8 eV would difference resampling noise, not the curve.
    steps = np.array([0.01, 0.01, 0.01, *([1e-3] * k), *([1e-4] * (2 * background))])
    starts = np.atleast_1d(np.asarray(gaussian_start_ev, dtype=np.float64))
    if "gaussian_fwhm_ev" in fix:
        starts = starts[:1]
    best = None
    for gaussian in starts:
        x0 = np.zeros(len(names))
        x0[:3] = shift_start_ev, np.clip(gaussian, 0, max_fwhm_ev), np.clip(lorentzian_start_ev, 0, max_fwhm_ev)
        x0[3:3 + k] = 1.0 / k
        if "scale" not in fix:
            x0 = _linear_start(model, x0, measured)

        def residuals(p: np.ndarray, x0: np.ndarray = x0) -> np.ndarray:
            x = x0.copy()
            x[free] = p
            return model.curve(x) - measured

        if not free.any():
            raise ValueError("every parameter is fixed: nothing to fit")
        p0 = np.clip(x0[free], lower[free], upper[free])
        jacobian = _Jacobian(residuals, steps[free], lower[free], upper[free])
        solution = least_squares(residuals, p0, jac=jacobian, bounds=(lower[free], upper[free]),
                                 x_scale="jac", max_nfev=200)
        if best is None or solution.cost < best[0].cost:
            best = (solution, x0)
    solution, x0 = best
    x = x0.copy()
    x[free] = solution.x

    n_free = int(free.sum())
    covariance = np.full((len(names), len(names)), np.nan)
    dof = len(energy) - n_free
    if dof > 0:
        jac = solution.jac
        sigma2 = 2.0 * solution.cost / dof
        # pinv: a parameter the data do not constrain (e.g. a width stuck at 0) gives a
        # singular J^T J; its error then comes out huge instead of raising.
        covariance[np.ix_(free, free)] = np.linalg.pinv(jac.T @ jac) * sigma2
    stderr = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    if dof > 0:
        # A parameter that changes nothing (a width below what the grid resolves) is
        # undetermined, not exact.
        stderr[np.flatnonzero(free)[~np.any(solution.jac != 0, axis=0)]] = np.nan
    initial_curve = model.curve(x0)
    fitted = model.curve(x)
    return FitResult(
        parameter_names=tuple(names), parameters=dict(zip(names, map(float, x))),
        stderr=dict(zip(names, map(float, stderr))), covariance=covariance,
        fixed=tuple(n for n in names if n in fix),
        metrics_before=comparison_metrics(measured, initial_curve, energy),
        metrics_after=comparison_metrics(measured, fitted, energy),
        energy_ev=energy, measured=measured, initial=initial_curve, fitted=fitted,
        offsets_ev=tuple(float(o) for o in offsets_ev), shift_bounds_ev=bounds_shift,
        window=(float(energy[0]), float(energy[-1])), success=bool(solution.success),
        message=str(solution.message))


def fit_spectrum(measured_energy_ev: np.ndarray, measured_mu: np.ndarray, energy_rel_ev: np.ndarray,
                 mu: np.ndarray, *, offset_ev: float, **options: Any) -> FitResult:
    """Fit one predicted spectrum: :func:`fit_components` with one component.

    Args:
        measured_energy_ev, measured_mu: (N,) the measured spectrum (absolute eV).
        energy_rel_ev, mu: (G,) the prediction on energies relative to its E0.
        offset_ev: where the prediction's zero goes before ``shift_ev``, eV.
        **options: see :func:`fit_components`.
    """
    return fit_components(measured_energy_ev, measured_mu, [(energy_rel_ev, mu)], [offset_ev], **options)



def fit_comparison(norm: Any, spectrum: Any, comparison: Any) -> FitResult:
    """The fit of ``xanes-compare --fit``: a free shift started at the comparison's alignment.

    Args:
        norm: the measured :class:`~model_core.spectra.normalize.NormResult`.
        spectrum: the predicted :class:`~model_core.types.Spectrum` (edge-relative).
        comparison: the :class:`~model_core.spectra.align.ComparisonResult` of the two
            (its placement, shift, window, broadening and curve choice are the start).
    """
    measured = norm.flat if comparison.use_flat else norm.norm
    start = comparison.broaden_fwhm_ev if comparison.broaden_fwhm_ev > 0 else (1.0, 3.0)
    return fit_spectrum(norm.energy_ev, measured, spectrum.energy_ev, spectrum.mu,
                        offset_ev=comparison.placement_ev - comparison.shift_ev,
                        shift_start_ev=comparison.shift_ev, gaussian_start_ev=start, window=comparison.window)
