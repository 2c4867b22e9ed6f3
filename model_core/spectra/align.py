"""Placing a predicted spectrum on a measured one: broadening, energy alignment, similarity.

Usage::

    from model_core.spectra.align import compare, comparison_to_csv

    norm = normalize(measured.energy_ev, measured.mu)
    result = compare(measured, norm, prediction.average_spectrum(), mode="auto", broaden_fwhm_ev=1.5)
    result.shift_ev, result.metrics["pearson_r"]
    comparison_to_csv(result, "comparison.csv", {"model": "cu-k-feff"})

Energy placement of a prediction (edge-relative energies ``E - E0``):
``E_abs = E_rel + E0_pred + shift``, where ``E0_pred`` is the model's predicted
edge energy, or the measured E0 when the model has none. Mode "auto" then
refines ``shift`` by maximizing the cross-correlation of the first derivatives
dmu/dE of both spectra (robust to differences in normalization and white-line
height, and sensitive to where the edge rises).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Mapping

import numpy as np

from model_core.types import Spectrum

__all__ = [
    "ALIGN_STEP_EV",
    "ComparisonResult",
    "auto_align",
    "broaden",
    "compare",
    "comparison_grid",
    "comparison_metrics",
    "comparison_to_csv",
    "default_step_ev",
    "similarity",
]

#: Grid step of the derivative cross-correlation in eV (the parabola refines below it).
ALIGN_STEP_EV = 0.1
#: Limit of the uniform broadening grid, so a huge FWHM/energy-range ratio cannot exhaust memory.
_MAX_GRID = 400_000
_MIN_OVERLAP_EV = 2.0
_MIN_OVERLAP_POINTS = 5


def _as_arrays(energy: Any, mu: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    energy = np.asarray(energy, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if energy.ndim != 1 or energy.shape != mu.shape or len(energy) < 2:
        raise ValueError(f"{what}: energy and mu must be 1-D of equal length >= 2")
    if not np.all(np.diff(energy) > 0):
        raise ValueError(f"{what}: energies must be strictly increasing")
    return energy, mu


# ---------------------------------------------------------------------------
# Broadening
# ---------------------------------------------------------------------------

def broaden(energy_ev: np.ndarray, mu: np.ndarray, fwhm_ev: float, kind: str = "gaussian") -> np.ndarray:
    """Convolve a spectrum with a normalized Gaussian or Lorentzian of given FWHM.

    The spectrum is interpolated to a uniform grid (step = the smaller of the
    median data spacing and FWHM/10), padded at both ends with its end values
    (so the ends are not pulled towards zero), convolved, and interpolated back.
    The kernel sums to one, so the area under a feature is preserved.

    Args:
        energy_ev: (G,) strictly increasing energies in eV.
        mu: (G,) absorption.
        fwhm_ev: full width at half maximum in eV; <= 0 returns a copy of ``mu``.
        kind: "gaussian" or "lorentzian" (truncated at +-20 FWHM).

    Returns:
        (G,) broadened mu on ``energy_ev``.
    """
    energy, mu = _as_arrays(energy_ev, mu, "broaden")
    if kind not in ("gaussian", "lorentzian"):
        raise ValueError(f"broadening kind must be 'gaussian' or 'lorentzian', got {kind!r}")
    if not np.isfinite(fwhm_ev) or fwhm_ev <= 0:
        return mu.copy()
    span = float(energy[-1] - energy[0])
    step = min(float(np.median(np.diff(energy))), fwhm_ev / 10.0)
    step = max(step, span / _MAX_GRID)
    grid = energy[0] + step * np.arange(int(math.floor(span / step)) + 1)
    values = np.interp(grid, energy, mu)
    if kind == "gaussian":
        sigma = fwhm_ev / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        half = 5.0 * sigma
    else:
        gamma = fwhm_ev / 2.0
        half = 20.0 * fwhm_ev
    n_half = max(1, int(math.ceil(half / step)))
    offsets = step * np.arange(-n_half, n_half + 1)
    if kind == "gaussian":
        kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    else:
        kernel = 1.0 / (1.0 + (offsets / gamma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, n_half, mode="edge")
    if len(kernel) > 64:
        from scipy.signal import fftconvolve

        smoothed = fftconvolve(padded, kernel, mode="valid")
    else:
        smoothed = np.convolve(padded, kernel, mode="valid")
    return np.interp(energy, grid, smoothed)


# ---------------------------------------------------------------------------
# Alignment and similarity
# ---------------------------------------------------------------------------

def _overlap(*ranges: tuple[float, float]) -> tuple[float, float]:
    lo = max(r[0] for r in ranges)
    hi = min(r[1] for r in ranges)
    return lo, hi


def auto_align(meas_energy: np.ndarray, meas_mu: np.ndarray, pred_energy_abs: np.ndarray,
               pred_mu: np.ndarray, window: tuple[float, float] | None = None,
               max_shift: float = 30.0, step: float = ALIGN_STEP_EV) -> float:
    """Energy shift that best aligns a predicted spectrum with a measured one.

    Both spectra are interpolated to a ``step`` grid, differentiated, and the
    Pearson correlation of dmu/dE over ``window`` is evaluated for every shift
    in ``[-max_shift, +max_shift]`` (multiples of ``step``); the best one is
    refined by a parabola through its neighbours.

    Args:
        meas_energy: (N,) measured energies in eV, strictly increasing.
        meas_mu: (N,) measured (normalized) absorption.
        pred_energy_abs: (G,) predicted energies in absolute eV, strictly increasing.
        pred_mu: (G,) predicted absorption.
        window: (lo, hi) absolute eV over which the derivatives are compared;
            None uses the overlap of both spectra's ranges.
        max_shift: largest shift tried, eV (both signs).
        step: grid step, eV.

    Returns:
        The shift in eV to add to ``pred_energy_abs``.

    Raises:
        ValueError: the window and the measured data overlap by less than 2 eV,
            or a spectrum has no slope in the window.
    """
    me, mm = _as_arrays(meas_energy, meas_mu, "measured")
    pe, pm = _as_arrays(pred_energy_abs, pred_mu, "predicted")
    if window is None:
        window = _overlap((me[0], me[-1]), (pe[0], pe[-1]))
    lo, hi = _overlap((me[0], me[-1]), (float(window[0]), float(window[1])))
    if hi - lo < _MIN_OVERLAP_EV:
        raise ValueError(f"alignment window {window[0]:.1f}-{window[1]:.1f} eV hardly overlaps the measured "
                         f"data ({me[0]:.1f}-{me[-1]:.1f} eV)")
    n = int(math.floor((hi - lo) / step)) + 1
    x = lo + step * np.arange(n)
    k_max = max(1, int(round(max_shift / step)))
    # Predicted derivative on the window extended by max_shift on both sides;
    # outside the predicted range np.interp holds the end values, so the
    # derivative there is zero and contributes nothing.
    x_ext = lo - k_max * step + step * np.arange(n + 2 * k_max)
    d_meas = np.gradient(np.interp(x, me, mm), step)
    d_pred = np.gradient(np.interp(x_ext, pe, pm), step)
    d_meas = d_meas - d_meas.mean()
    segments = np.lib.stride_tricks.sliding_window_view(d_pred, n)  # (2K+1, n); row j <-> shift (K - j) * step
    centered = segments - segments.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centered, axis=1) * np.linalg.norm(d_meas)
    if not np.any(norms > 0):
        raise ValueError("no edge to align: a spectrum is flat in the alignment window")
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(norms > 0, centered @ d_meas / norms, -np.inf)
    j = int(np.argmax(corr))
    offset = 0.0
    if 0 < j < len(corr) - 1 and np.all(np.isfinite(corr[j - 1:j + 2])):
        left, mid, right = corr[j - 1], corr[j], corr[j + 1]
        curvature = left - 2.0 * mid + right
        if curvature < 0:
            offset = float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    return float((k_max - (j + offset)) * step)


def comparison_metrics(measured: np.ndarray, predicted: np.ndarray, energy: np.ndarray) -> dict[str, float]:
    """mse, pearson_r, pearson_r_deriv, cosine, n_points of two curves on one grid."""

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        a = a - a.mean()
        b = b - b.mean()
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(a @ b / denominator) if denominator > 0 else math.nan

    norm = float(np.linalg.norm(measured) * np.linalg.norm(predicted))
    return {
        "mse": float(np.mean((measured - predicted) ** 2)),
        "pearson_r": pearson(measured, predicted),
        "pearson_r_deriv": pearson(np.gradient(measured, energy), np.gradient(predicted, energy)),
        "cosine": float(measured @ predicted / norm) if norm > 0 else math.nan,
        "n_points": int(len(energy)),
    }


def comparison_grid(lo: float, hi: float, step: float) -> np.ndarray:
    """Evenly spaced energies from ``lo`` up to ``hi`` (included when it falls on a step)."""
    n = int(math.floor((hi - lo) / step + 1e-9)) + 1
    return lo + step * np.arange(n)


def default_step_ev(energy: np.ndarray, lo: float, hi: float) -> float:
    """Grid step for comparing on [lo, hi]: the data's median spacing there, within 0.1–1 eV."""
    inside = energy[(energy >= lo) & (energy <= hi)]
    spacing = float(np.median(np.diff(inside))) if len(inside) > 2 else (hi - lo) / 100.0
    # The data's own sampling, but not finer than 0.1 eV (pointless) nor coarser
    # than 1 eV (would wash out XANES features of the prediction).
    return float(np.clip(spacing, 0.1, 1.0))


def similarity(meas_e: np.ndarray, meas_mu: np.ndarray, pred_e: np.ndarray, pred_mu: np.ndarray,
               window: tuple[float, float] | None = None, step: float | None = None) -> dict[str, float]:
    """Similarity of two spectra over their common energy range.

    Both are interpolated to a uniform grid over the overlap of their ranges
    (and ``window``), so that densely sampled edge regions do not dominate.

    Args:
        meas_e, meas_mu: (N,) measured energies (eV, increasing) and absorption.
        pred_e, pred_mu: (G,) predicted energies (same reference) and absorption.
        window: (lo, hi) eV to restrict the comparison; None for the whole overlap.
        step: grid step in eV; None uses the measured spacing clipped to 0.1-1 eV.

    Returns:
        dict with ``mse`` (mean squared difference), ``pearson_r`` (of mu),
        ``pearson_r_deriv`` (of dmu/dE), ``cosine`` (cosine similarity of mu) and
        ``n_points`` (grid points). Correlations are NaN for a constant curve.

    Raises:
        ValueError: the spectra overlap by less than 2 eV.
    """
    me, mm = _as_arrays(meas_e, meas_mu, "measured")
    pe, pm = _as_arrays(pred_e, pred_mu, "predicted")
    ranges = [(me[0], me[-1]), (pe[0], pe[-1])]
    if window is not None:
        ranges.append((float(window[0]), float(window[1])))
    lo, hi = _overlap(*ranges)
    if hi - lo < _MIN_OVERLAP_EV:
        raise ValueError("the spectra do not overlap in energy (need at least 2 eV in common)")
    grid = comparison_grid(lo, hi, step or default_step_ev(me, lo, hi))
    if len(grid) < _MIN_OVERLAP_POINTS:
        grid = np.linspace(lo, hi, _MIN_OVERLAP_POINTS)
    return comparison_metrics(np.interp(grid, me, mm), np.interp(grid, pe, pm), grid)


# ---------------------------------------------------------------------------
# Measured vs predicted
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """A measured and a predicted spectrum on one absolute energy grid.

    Attributes:
        energy_ev: (K,) uniform absolute energies in eV over the compared range.
        measured: (K,) normalized (or flattened) measured mu.
        predicted: (K,) predicted mu, placed, shifted and broadened.
        d_measured: (K,) dmu/dE of ``measured`` in 1/eV.
        d_predicted: (K,) dmu/dE of ``predicted`` in 1/eV.
        shift_ev: shift added after placing the prediction at its E0 reference, eV.
        e0: measured edge energy in eV (from the normalization).
        edge_step: measured edge step (units of the raw mu).
        metrics: ``mse``, ``pearson_r``, ``pearson_r_deriv``, ``cosine``, ``n_points``.
        mode: "auto", "e0" or "manual".
        e0_reference: where the prediction's zero was put: "model" (its predicted
            E0), "measured" (the measured E0) or "absolute" (already absolute).
        e0_predicted_ev: the model's E0 in eV when it has one.
        broaden_fwhm_ev: broadening applied to the prediction (0 = none).
        broaden_kind: "gaussian" or "lorentzian".
        use_flat: whether ``measured`` is the flattened spectrum.
        window: (lo, hi) absolute eV actually compared.
        grid_origin_ev: the fixed energy the model's grid is relative to when it is not the
            predicted E0 (FDMNES-trained models: the tabulated edge); "model" placement puts
            the prediction's zero there. None: at ``e0_predicted_ev``.
    """

    energy_ev: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    d_measured: np.ndarray
    d_predicted: np.ndarray
    shift_ev: float
    e0: float
    edge_step: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    mode: str = "auto"
    e0_reference: str = "model"
    e0_predicted_ev: float | None = None
    broaden_fwhm_ev: float = 0.0
    broaden_kind: str = "gaussian"
    use_flat: bool = True
    window: tuple[float, float] = (0.0, 0.0)
    # Last, so the fields before it keep their positions.
    grid_origin_ev: float | None = None

    def __post_init__(self) -> None:
        for name in ("energy_ev", "measured", "predicted", "d_measured", "d_predicted"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def placement_ev(self) -> float:
        """Total offset added to the prediction's edge-relative energies, eV."""
        model = self.grid_origin_ev if self.grid_origin_ev is not None else self.e0_predicted_ev
        base = {"model": model, "measured": self.e0}.get(self.e0_reference) or 0.0
        return float(base + self.shift_ev)


def compare(measured: Any, norm: Any, prediction_spectrum: Spectrum, *, mode: str = "auto",
            shift_ev: float = 0.0, broaden_fwhm_ev: float = 0.0, broaden_kind: str = "gaussian",
            use_flat: bool = True, window: tuple[float, float] | None = None,
            max_shift: float = 30.0, step_ev: float | None = None) -> ComparisonResult:
    """Compare a normalized measured spectrum with a predicted one.

    Args:
        measured: :class:`~model_core.spectra.measured.MeasuredData` (its ``energy_ev``
            is the grid ``norm`` was computed on).
        norm: :class:`~model_core.spectra.normalize.NormResult` of ``measured``.
        prediction_spectrum: the predicted spectrum; edge-relative energies with
            ``e0_ev`` the model's E0 (None when the model predicts none), or absolute.
        mode: "auto" (place at E0, then refine ``shift_ev`` by derivative
            cross-correlation within +-``max_shift``), "e0" (place at E0, no
            shift) or "manual" (place at E0 plus ``shift_ev``).
        shift_ev: manual shift, and the starting point of "auto", eV.
        broaden_fwhm_ev: FWHM of the broadening applied to the prediction, eV (0 = none).
        broaden_kind: "gaussian" or "lorentzian".
        use_flat: compare with the flattened (True) or the normalized measured spectrum.
        window: (lo, hi) absolute eV to compare (and align) over; None for the
            whole overlap of both spectra.
        max_shift: search range of "auto", eV.
        step_ev: grid step in eV; None uses the measured spacing clipped to 0.1-1 eV.

    Returns:
        ComparisonResult on a uniform absolute grid over the overlap.

    Raises:
        ValueError: unknown mode, mismatched inputs, or no overlap between the spectra.
    """
    if mode not in ("auto", "e0", "manual"):
        raise ValueError(f"mode must be 'auto', 'e0' or 'manual', got {mode!r}")
    me = np.asarray(measured.energy_ev if hasattr(measured, "energy_ev") else measured, dtype=np.float64)
    mm = np.asarray(norm.flat if use_flat else norm.norm, dtype=np.float64)
    if me.shape != mm.shape:
        raise ValueError("the normalization does not belong to this measured spectrum (different lengths)")
    pe, pm = _as_arrays(prediction_spectrum.energy_ev, prediction_spectrum.mu, "predicted")
    if broaden_fwhm_ev and broaden_fwhm_ev > 0:
        pm = broaden(pe, pm, broaden_fwhm_ev, broaden_kind)

    e0_pred = prediction_spectrum.e0_ev
    zero = prediction_spectrum.zero_ev
    if prediction_spectrum.energy_reference == "absolute":
        reference, base = "absolute", 0.0
    elif zero is not None and np.isfinite(zero):
        reference, base = "model", float(zero)
    else:
        reference, base = "measured", float(norm.e0)
    placed = pe + base
    shift = 0.0 if mode == "e0" else float(shift_ev)
    if mode == "auto":
        align_window = window
        if align_window is None:
            align_window = _overlap((me[0], me[-1]), (placed[0] + shift, placed[-1] + shift))
        shift += auto_align(me, mm, placed + shift, pm, window=align_window, max_shift=max_shift)

    ranges = [(me[0], me[-1]), (placed[0] + shift, placed[-1] + shift)]
    if window is not None:
        ranges.append((float(window[0]), float(window[1])))
    lo, hi = _overlap(*ranges)
    if hi - lo < _MIN_OVERLAP_EV:
        raise ValueError(f"the prediction ({placed[0] + shift:.1f}-{placed[-1] + shift:.1f} eV after placement) "
                         f"and the measured spectrum ({me[0]:.1f}-{me[-1]:.1f} eV) do not overlap"
                         + ("" if window is None else f" within {window[0]:.1f}-{window[1]:.1f} eV"))
    grid = comparison_grid(lo, hi, step_ev or default_step_ev(me, lo, hi))
    if len(grid) < _MIN_OVERLAP_POINTS:
        grid = np.linspace(lo, hi, _MIN_OVERLAP_POINTS)
    measured_grid = np.interp(grid, me, mm)
    predicted_grid = np.interp(grid, placed + shift, pm)
    return ComparisonResult(
        energy_ev=grid, measured=measured_grid, predicted=predicted_grid,
        d_measured=np.gradient(measured_grid, grid), d_predicted=np.gradient(predicted_grid, grid),
        shift_ev=float(shift), e0=float(norm.e0), edge_step=float(norm.edge_step),
        metrics=comparison_metrics(measured_grid, predicted_grid, grid), mode=mode, e0_reference=reference,
        e0_predicted_ev=None if e0_pred is None else float(e0_pred),
        broaden_fwhm_ev=float(broaden_fwhm_ev or 0.0), broaden_kind=broaden_kind, use_flat=use_flat,
        window=(float(grid[0]), float(grid[-1])),
        grid_origin_ev=None if reference == "absolute" else prediction_spectrum.grid_origin_ev,
    )


def _summary(result: ComparisonResult) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [
        ("energy_reference", "absolute eV"),
        ("measured_e0_ev", f"{result.e0:.3f}"),
        ("measured_edge_step", f"{result.edge_step:.6g}"),
        ("measured_curve", "flattened" if result.use_flat else "normalized"),
        ("alignment_mode", result.mode),
        ("prediction_placed_at", {"model": "the model's predicted E0" if result.grid_origin_ev is None
                                  else f"its grid's origin, {result.grid_origin_ev:.1f} eV (the tabulated edge "
                                       "the model was trained against)",
                                  "measured": "the measured E0",
                                  "absolute": "its own absolute energies"}[result.e0_reference]),
    ]
    if result.e0_predicted_ev is not None:
        items.append(("predicted_e0_ev", f"{result.e0_predicted_ev:.3f}"))
    items.append(("shift_ev", f"{result.shift_ev:.3f}"))
    if result.broaden_fwhm_ev > 0:
        items.append(("broadening", f"{result.broaden_kind} FWHM {result.broaden_fwhm_ev:g} eV"))
    items.append(("window_ev", f"{result.window[0]:.3f} {result.window[1]:.3f}"))
    for key, value in result.metrics.items():
        items.append((key, f"{value:.6g}" if isinstance(value, float) else value))
    return items


def comparison_to_csv(result: ComparisonResult, path_or_file: str | Path | IO[str],
                      metadata: Mapping[str, Any] | None = None) -> None:
    """Write a comparison as CSV: ``# key: value`` lines, then the columns.

    Columns: ``energy_ev, measured, predicted, d_measured, d_predicted``
    (absolute eV; normalized mu; dmu/dE in 1/eV).

    Args:
        result: the comparison.
        path_or_file: a path, or an open text stream.
        metadata: extra ``# key: value`` lines written first (model, files, ...).
    """
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "w", encoding="utf-8", newline="") as handle:
            comparison_to_csv(result, handle, metadata)
        return
    stream = path_or_file
    for key, value in [*(metadata or {}).items(), *_summary(result)]:
        stream.write(f"# {key}: {' '.join(str(value).split())}\n")
    stream.write("energy_ev,measured,predicted,d_measured,d_predicted\n")
    for row in zip(result.energy_ev, result.measured, result.predicted, result.d_measured, result.d_predicted):
        stream.write(f"{row[0]:.4f},{row[1]:.6g},{row[2]:.6g},{row[3]:.6g},{row[4]:.6g}\n")
