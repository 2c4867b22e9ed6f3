"""Edge-step normalization of XAS spectra: measured spectra and training targets.

Two normalizations live here, because they must give the same curve where both apply
(a prediction is trained on one and compared with a measurement normalized by the other):

* :func:`normalize`: measured spectra (long pre- and post-edge ranges), with larch's
  ``pre_edge`` exactly as in Larix/Athena.
* :func:`normalize_target`: training targets, i.e. simulated spectra on short ranges
  (FDMNES -15..+60 eV), with the modes of :class:`TargetNormalization`. Its
  ``"edge_step"`` mode is the same edge-step definition (pre-edge line 0, post-edge
  curve 1, ``(mu - pre(E)) / step`` with the step at the edge) with windows and
  fallbacks chosen for short ranges.

On simulated spectra the two agree (``tests/model_core/spectra/test_normalize_agreement.py``):

* a spectrum normalized by :func:`normalize` over a long, measured-like range and its
  -15..+60 eV crop normalized by :func:`normalize_target` ("edge_step") differ by at
  most :data:`AGREEMENT_TOLERANCE` (max absolute difference, normalized units) on
  the crop (synthetic spectra: 0.002);
* on the FDMNES spectra of the shipped Fe dataset, "edge_step" and :func:`normalize`
  given the same windows (:func:`target_norm_params`) differ by at most
  :data:`AGREEMENT_TOLERANCE` (0.035 measured over 40 spectra).

They must differ where larch's pre-edge line would be fitted on the rise: FEFF spectra
start ~11 eV below the edge, and the window below -5 eV already climbs, so larch's
line, extrapolated, swamps the spectrum; the target fit then falls back to a constant
pre-edge. FEFF's own normalization (mode "feff": mu divided by the atomic background
near edge + 50 eV) is another scale: on 400 Cu sites its edge step is 0.69-0.91
(1st-99th percentile) of FEFF's unit, and "feff" and "edge_step" targets differ by
0.2 (median) up to :data:`FEFF_AGREEMENT_TOLERANCE`.

Usage (measured spectra)::

    from model_core.spectra.normalize import NormParams, normalize

    result = normalize(data.energy_ev, data.mu)                 # larch's automatic windows
    result = normalize(energy, mu, NormParams(e0=8979.0, pre1=-150, pre2=-30, norm1=75))
    result.e0, result.edge_step, result.norm, result.flat, result.params

The work is done by :func:`larch.xafs.pre_edge` on a larch Group, exactly as in
Larix/Athena; this module only validates the input, finds E0 robustly, clips
explicitly given windows to the data (so that Athena-style windows such as
``pre1 = -150 eV`` still work on a simulated spectrum that starts 15 eV below
the edge) and reports the parameters larch actually used.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
import math
from typing import Any, Literal, Mapping

import numpy as np

from model_core.config import ConfigError, check_choices, from_dict, to_dict
from model_core.spectra.larch_compat import import_larch, preserved_global_state
from model_core.types import Spectrum

__all__ = ["AGREEMENT_TOLERANCE", "FEFF_AGREEMENT_TOLERANCE", "MIN_POST_EDGE_EV", "MIN_PRE_EDGE_EV",
           "NormParams", "NormResult", "NormalizationError", "TARGET_DESCRIPTIONS", "TargetMode",
           "TargetNormalization", "find_e0", "normalize", "normalize_target", "target_norm_params",
           "target_normalization_from_record", "target_normalization_record"]

#: The data must extend at least this far below / above E0 (eV) to be normalized:
#: a pre-edge line and a post-edge curve need some data to be fitted to.
MIN_PRE_EDGE_EV = 2.0
MIN_POST_EDGE_EV = 10.0
_MIN_POINTS = 5


class NormalizationError(ValueError):
    """A spectrum could not be normalized (too short a range, no edge, wrong E0, ...)."""


@dataclass(frozen=True)
class NormParams:
    """Normalization parameters; energies in eV relative to E0.

    ``None`` means larch's automatic choice (as in Larix):

    * ``e0``: absolute edge energy in eV; None finds it (maximum of dmu/dE).
    * ``pre1``: start of the pre-edge line fit; auto = the second data point.
    * ``pre2``: end of the pre-edge fit; auto = ``pre1 / 2``.
    * ``norm1``: start of the post-edge fit; auto = ``min(25, norm2 / 15)`` rounded to 5 eV.
    * ``norm2``: end of the post-edge fit; auto = the last data point.
    * ``nnorm``: degree of the post-edge polynomial (0-2); auto = 2 for a fit range
      over 300 eV, 1 over 30 eV, else 0.

    Explicit windows that lie (partly) outside the data are clipped to it.

    Attributes:
        nvict: energy exponent of the pre-edge fit (mu * E**nvict is fitted by a line).
        flatten: report the flattened spectrum (post-edge curvature removed) as ``flat``.
    """

    e0: float | None = None
    pre1: float | None = None
    pre2: float | None = None
    norm1: float | None = None
    norm2: float | None = None
    nnorm: int | None = None
    nvict: int = 0
    flatten: bool = True

    def replace(self, **changes: Any) -> "NormParams":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class NormResult:
    """A normalized spectrum.

    Attributes:
        energy_ev: (G,) absolute energies in eV (the input grid).
        e0: edge energy in eV.
        edge_step: edge jump in units of the input mu (> 0).
        norm: (G,) normalized mu: (mu - pre_edge_line) / edge_step.
        flat: (G,) flattened normalized mu (equal to ``norm`` when not flattening).
        pre_edge_line: (G,) fitted pre-edge line, units of mu.
        post_edge_curve: (G,) fitted post-edge polynomial, units of mu.
        params: the parameters actually used (automatic choices resolved, windows clipped).
        warnings: adjustments made (windows clipped or moved into the data).
    """

    energy_ev: np.ndarray
    e0: float
    edge_step: float
    norm: np.ndarray
    flat: np.ndarray
    pre_edge_line: np.ndarray
    post_edge_curve: np.ndarray
    params: NormParams
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("energy_ev", "norm", "flat", "pre_edge_line", "post_edge_curve"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def spectrum(self, use_flat: bool = True, label: str = "") -> Spectrum:
        """The normalized (or flattened) spectrum with absolute energies."""
        return Spectrum(self.energy_ev, self.flat if use_flat else self.norm, label=label,
                        energy_reference="absolute", e0_ev=self.e0,
                        metadata={"edge_step": self.edge_step, "normalization": dataclasses.asdict(self.params)})


def _validate(energy: np.ndarray, mu: np.ndarray) -> None:
    if energy.ndim != 1 or energy.shape != mu.shape:
        raise NormalizationError(f"energy and mu must be 1-D of equal length, got {energy.shape} and {mu.shape}")
    if len(energy) < _MIN_POINTS:
        raise NormalizationError(f"only {len(energy)} points; at least {_MIN_POINTS} are needed to normalize")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        raise NormalizationError("energy or mu contain NaN or infinite values")
    if not np.all(np.diff(energy) > 0):
        raise NormalizationError("energies must be strictly increasing")


def _inside(e0: float | None, energy: np.ndarray) -> bool:
    # larch recomputes E0 unless energy[1] <= e0 <= energy[-2]; stay inside that.
    return e0 is not None and np.isfinite(e0) and energy[1] <= e0 <= energy[-2]


def find_e0(energy_ev: np.ndarray, mu: np.ndarray) -> float:
    """Edge energy in eV: larch's ``find_e0``, falling back where it fails.

    larch's ``find_e0`` can raise or land outside the data on calculated spectra
    (little or no pre-edge); then ``find_e0_calc`` is tried, and last the
    maximum of dmu/dE over the interior points.

    Args:
        energy_ev: (G,) strictly increasing energies in eV.
        mu: (G,) absorption.
    """
    energy = np.asarray(energy_ev, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    larch = import_larch()
    for finder in (larch.xafs.find_e0, getattr(larch.xafs, "find_e0_calc", None)):
        if finder is None:
            continue
        try:
            with preserved_global_state():
                # Failures are handled below; larch's RuntimeWarnings on odd data are noise.
                warnings.simplefilter("ignore", RuntimeWarning)
                e0 = finder(energy, mu)
            e0 = float(e0)
        except Exception:  # noqa: BLE001 - larch fails in many ways on odd data
            continue
        if _inside(e0, energy):
            return e0
    derivative = np.gradient(mu, energy)
    interior = slice(1, len(energy) - 1)
    return float(energy[interior][int(np.argmax(derivative[interior]))])


def _clip_windows(params: NormParams, e0: float, energy: np.ndarray) -> tuple[NormParams, list[str]]:
    """Clip explicitly given windows to the data range (eV relative to E0)."""
    notes: list[str] = []
    lo, hi = float(energy[0] - e0), float(energy[-1] - e0)
    pre1, pre2, norm1, norm2 = params.pre1, params.pre2, params.norm1, params.norm2
    if pre1 is not None and pre1 < lo:
        pre1 = lo
        notes.append(f"pre1 clipped to the first data point ({lo:.1f} eV)")
    if pre2 is not None:
        floor = lo if pre1 is None else pre1
        if pre2 <= floor + 1e-6:
            # The whole window lies below the data: use the lower half of the
            # available pre-edge instead.
            pre2 = 0.5 * (floor if floor < 0 else lo)
            notes.append(f"pre-edge window moved into the data (pre2 = {pre2:.1f} eV)")
    if norm2 is not None and norm2 > hi:
        norm2 = hi
        notes.append(f"norm2 clipped to the last data point ({hi:.1f} eV)")
    if norm1 is not None:
        top = hi if norm2 is None else norm2
        if norm1 >= top - 2.0:
            norm1 = top / 3.0
            notes.append(f"post-edge window moved into the data (norm1 = {norm1:.1f} eV)")
    return params.replace(pre1=pre1, pre2=pre2, norm1=norm1, norm2=norm2), notes


def normalize(energy_ev: np.ndarray, mu: np.ndarray, params: NormParams | None = None) -> NormResult:
    """Normalize a spectrum to unit edge step with larch's ``pre_edge``.

    Args:
        energy_ev: (G,) absolute energies in eV, strictly increasing.
        mu: (G,) absorption (any units).
        params: windows and options; None uses larch's automatic choices.

    Returns:
        NormResult on the input grid with the parameters actually used.

    Raises:
        NormalizationError: invalid arrays, E0 outside the data, too short a range
            below or above E0, or an edge that goes down instead of up.
    """
    params = params or NormParams()
    energy = np.asarray(energy_ev, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    _validate(energy, mu)
    if params.e0 is not None:
        e0 = float(params.e0)
        if not _inside(e0, energy):
            raise NormalizationError(f"E0 = {e0:.2f} eV is outside the data ({energy[0]:.2f}-{energy[-1]:.2f} eV)")
    else:
        e0 = find_e0(energy, mu)
    below, above = e0 - energy[0], energy[-1] - e0
    if below < MIN_PRE_EDGE_EV or np.count_nonzero(energy < e0) < 2:
        raise NormalizationError(f"range too short to normalize: the data start {below:.1f} eV below E0 = "
                                 f"{e0:.1f} eV (at least {MIN_PRE_EDGE_EV:g} eV and 2 points needed)")
    if above < MIN_POST_EDGE_EV or np.count_nonzero(energy > e0) < 3:
        raise NormalizationError(f"range too short to normalize: the data end {above:.1f} eV above E0 = "
                                 f"{e0:.1f} eV (at least {MIN_POST_EDGE_EV:g} eV and 3 points needed)")
    clipped, notes = _clip_windows(params, e0, energy)

    larch = import_larch()
    group = larch.Group(energy=energy.copy(), mu=mu.copy())
    try:
        with preserved_global_state():
            warnings.simplefilter("ignore", RuntimeWarning)
            larch.xafs.pre_edge(energy.copy(), mu.copy(), group=group, e0=e0,
                                pre1=clipped.pre1, pre2=clipped.pre2, norm1=clipped.norm1,
                                norm2=clipped.norm2, nnorm=clipped.nnorm, nvict=clipped.nvict,
                                make_flat=clipped.flatten)
    except Exception as exc:  # noqa: BLE001 - larch's fits raise numpy/lmfit errors
        raise NormalizationError(f"normalization failed ({' '.join(str(exc).split())[:120]})") from exc

    norm = np.asarray(group.norm, dtype=np.float64)
    if norm.shape != energy.shape:  # pragma: no cover - input is clean, larch keeps every point
        raise NormalizationError("larch changed the number of points during normalization")
    pre_line = np.asarray(group.pre_edge, dtype=np.float64)
    post_curve = np.asarray(group.post_edge, dtype=np.float64)
    ie0 = int(np.argmin(np.abs(energy - group.e0)))
    signed_step = float(post_curve[ie0] - pre_line[ie0])
    if not np.isfinite(signed_step) or signed_step <= 0:
        # larch reports |step|; a negative one means mu falls across the edge.
        raise NormalizationError("the absorption decreases across the edge (negative edge step): wrong channel, "
                                 "e.g. It/I0 instead of -ln(It/I0)?")
    edge_step = float(group.edge_step)
    if edge_step <= 1e-12 * max(1.0, float(np.max(np.abs(mu)))):
        raise NormalizationError("no edge step found")
    flat = np.asarray(group.flat, dtype=np.float64) if clipped.flatten else norm.copy()
    details = group.pre_edge_details

    def _value(name: str, fallback: Any) -> Any:
        value = getattr(details, name, None)
        return fallback if value is None else value

    used = NormParams(
        e0=float(group.e0),
        pre1=float(_value("pre1", clipped.pre1)), pre2=float(_value("pre2", clipped.pre2)),
        norm1=float(_value("norm1", clipped.norm1)), norm2=float(_value("norm2", clipped.norm2)),
        nnorm=int(_value("nnorm", clipped.nnorm)), nvict=int(_value("nvict", clipped.nvict)),
        flatten=clipped.flatten,
    )
    return NormResult(energy_ev=energy, e0=float(group.e0), edge_step=edge_step, norm=norm, flat=flat,
                      pre_edge_line=pre_line, post_edge_curve=post_curve, params=used, warnings=tuple(notes))


# ---------------------------------------------------------------------------
# Training targets: simulated spectra on short ranges
# ---------------------------------------------------------------------------

#: Largest difference (normalized units) between the edge-step target normalization
#: and :func:`normalize` on simulated spectra (see the module docstring).
AGREEMENT_TOLERANCE = 0.05
#: Largest difference between FEFF's own normalization and the edge-step one (400 Cu
#: FEFF spectra: 0.52).
FEFF_AGREEMENT_TOLERANCE = 0.6

TargetMode = Literal["none", "feff", "post_mean", "edge_step"]

#: What each target mode does, as recorded in checkpoints.
TARGET_DESCRIPTIONS = {
    "feff": "FEFF's own normalization (mu divided by its value at edge+50 eV): post-edge ~1",
    "edge_step": "pre-edge line subtracted, divided by the edge step from a post-edge fit: pre-edge ~0, post-edge ~1",
}


@dataclass(frozen=True)
class TargetNormalization:
    """How the raw intensities of a simulated spectrum become a training target.

    Modes:

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
        pre(0)`` and ``norm = (mu - pre(E)) / step``. With ``use_larch``, larch's
        ``pre_edge`` (:func:`normalize` with :func:`target_norm_params`) is tried first
        and the own fit is the fallback (as when larch's pre-edge line lands on the rise
        of a FEFF spectrum); the method used is returned.

    The field values are part of the prepared-dataset cache key (keep them stable).

    Attributes:
        mode: one of the modes above.
        pre_edge_max_ev: pre-edge region is E < this (eV relative to the edge).
        pre_edge_min_points: fewer pre-edge points than this -> constant pre-edge.
        post_edge_min_ev: post-edge region starts here (eV relative).
        post_edge_max_ev: post-edge region ends here (None: end of data).
        post_degree: polynomial degree of the post-edge fit (0 = constant).
        post_mean_window: (lo, hi) eV relative, window of the "post_mean" mode.
        use_larch: try xraylarch's ``pre_edge`` first in "edge_step" mode.
    """

    mode: TargetMode = "edge_step"
    pre_edge_max_ev: float = -5.0
    pre_edge_min_points: int = 4
    post_edge_min_ev: float = 20.0
    post_edge_max_ev: float | None = None
    post_degree: int = 1
    post_mean_window: tuple[float, float] = (20.0, 100.0)
    use_larch: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
        if self.post_degree < 0 or self.post_degree > 3:
            raise ConfigError(f"post_degree: {self.post_degree!r} is not one of 0, 1, 2, 3")


def target_normalization_record(norm: TargetNormalization) -> dict[str, Any]:
    """What a checkpoint records of its targets' normalization: ``mode``, a
    ``description`` and (since this version) every setting under ``params``."""
    return {"mode": norm.mode, "description": TARGET_DESCRIPTIONS.get(norm.mode, ""),
            "params": to_dict(norm)}


def target_normalization_from_record(record: Mapping[str, Any]) -> TargetNormalization:
    """The normalization a checkpoint's targets were made with (older checkpoints record
    only the mode, whose other settings were the defaults; no record means "feff")."""
    params = record.get("params")
    if params:
        return from_dict(TargetNormalization, params)
    return TargetNormalization(mode=str(record.get("mode", "feff")))


def _polyfit(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial coefficients (highest first); degree lowered to what the points allow."""
    degree = max(0, min(degree, len(x) - 2)) if len(x) > 1 else 0
    if degree == 0:
        return np.array([float(np.mean(y))])
    return np.polyfit(x, y, degree)


def _own_edge_step(energy: np.ndarray, mu: np.ndarray,
                   norm: TargetNormalization) -> tuple[np.ndarray, dict[str, Any]]:
    if len(energy) < 2:
        raise NormalizationError("too few points to normalize")
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
        raise NormalizationError(f"edge step not positive ({step:.3g})")
    normalized = (mu - np.polyval(pre, energy)) / step
    return normalized, {"method": "own_fit", "step": step, "pre": pre.tolist(), "post": post.tolist(),
                        "pre_kind": pre_kind, "n_pre": n_pre, "n_post": int(post_mask.sum())}


def target_norm_params(energy_rel: np.ndarray, norm: TargetNormalization, e_edge_abs: float) -> NormParams:
    """The :func:`normalize` parameters of the "edge_step" target windows: E0 at the edge,
    pre-edge line from the first point to ``pre_edge_max_ev``, post-edge polynomial of
    ``post_degree`` from ``post_edge_min_ev`` to ``post_edge_max_ev`` (or the last point),
    not flattened."""
    energy = np.asarray(energy_rel, dtype=np.float64)
    post_max = energy[-1] if norm.post_edge_max_ev is None else min(norm.post_edge_max_ev, energy[-1])
    return NormParams(e0=float(e_edge_abs), pre1=float(energy[0]), pre2=float(norm.pre_edge_max_ev),
                      norm1=float(norm.post_edge_min_ev), norm2=float(post_max), nnorm=int(norm.post_degree),
                      flatten=False)


def _larch_edge_step(energy: np.ndarray, mu: np.ndarray, norm: TargetNormalization,
                     e_edge_abs: float) -> tuple[np.ndarray, dict[str, Any]]:
    result = normalize(energy + e_edge_abs, mu, target_norm_params(energy, norm, e_edge_abs))
    line = result.pre_edge_line
    if abs(line[-1] - line[0]) > result.edge_step:
        # The rule of the own fit: a pre-edge line that changes by more than the edge
        # step over the data was fitted on the rise.
        raise NormalizationError("larch's pre-edge line is steeper than the edge step")
    return np.asarray(result.norm, dtype=np.float64), {"method": "larch", "step": result.edge_step}


def normalize_target(energy_rel: np.ndarray, mu: np.ndarray, norm: TargetNormalization,
                     e_edge_abs: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalize one simulated spectrum as a training target.

    Args:
        energy_rel: (G,) eV relative to the edge, increasing.
        mu: (G,) raw intensity.
        norm: the normalization settings.
        e_edge_abs: absolute edge energy in eV (needed only by larch).

    Returns:
        (mu_norm (G,), info) where info["method"] says what was done ("none",
        "post_mean", "own_fit", "larch") plus the fit parameters.

    Raises:
        NormalizationError: the normalization is undefined (non-positive step or
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
            raise NormalizationError(f"post-edge window {lo:g}..{hi:g} eV outside the data")
        scale = float(np.mean(mu[mask]))
        if not math.isfinite(scale) or scale <= 0:
            raise NormalizationError(f"post-edge mean not positive ({scale:.3g})")
        return mu / scale, {"method": "post_mean", "step": scale}
    if norm.use_larch and e_edge_abs is not None:
        try:
            return _larch_edge_step(energy, mu, norm, e_edge_abs)
        except Exception:  # noqa: BLE001 - any larch failure falls back to the own fit
            pass
    return _own_edge_step(energy, mu, norm)
