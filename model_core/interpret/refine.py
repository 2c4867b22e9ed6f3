"""Refining the local structure around an absorber through the differentiable model.

Parameters (natural units, starting values in brackets):

* ``shell_k_scale`` [1]: radial scale factor of coordination shell k around the
  absorber (k = 1 .. ``max_shells``). Shells are found per absorber by clustering the
  absorber-neighbour distances of its graph: sorted distances split where two
  consecutive ones differ by more than ``SHELL_GAP_A`` (0.25 Å); only shells lying
  entirely within 0.75 x the crop radius are refined (beyond, the "shells" merge into
  the continuum of distant atoms). Atoms beyond the refined shells keep their distance.
* ``strain`` [0]: isotropic strain of a crystal; every node of the graph moves to
  ``(1 + strain)`` times its position (the cell with it).
* the fit parameters of :mod:`model_core.interpret.fit`: ``shift_ev`` (within the
  calibration +- the tolerance), ``scale``, an optional background, and the
  Gaussian/Lorentzian broadening.

How: the graph of every selected site is built once for the starting structure
(fixed topology: the nodes within the crop radius and the edges within ``r_max``
stay those of the start; for the few-percent changes refined here the cosine cutoff
keeps an edge crossing ``r_max`` negligible). Node positions become torch functions
of the parameters, ``pos_j = (1 + strain) * s_shell(j) * pos0_j`` (absorber at the
origin), the edge vectors are recomputed from them, and the model (every ensemble
member, in float32 like the predictor; everything after it in float64) predicts the
spectrum, which is broadened by a fixed matrix, shifted by linear interpolation and
scaled. L-BFGS minimises the mean squared
difference to the measured spectrum on the fit window with the broadening held at
the starting fit's values; the fit of :func:`~model_core.interpret.fit.fit_spectrum`
is then redone on the refined prediction (shift, broadening, scale), and L-BFGS runs
once more with the new broadening.

Uncertainties: Gauss-Newton, ``cov = s^2 (J^T J)^-1`` at the optimum, with ``J`` the
Jacobian of the residuals with respect to the structural parameters, shift, scale
(and background) by central differences; the broadening is held at its fitted value
(the errors are conditional on it).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from model_core.interpret.calibration import Calibration, placement_base
from model_core.interpret.fit import FitResult, fit_spectrum
from model_core.interpret.identify import DEFAULT_SHIFT_TOLERANCE_EV
from model_core.interpret.shells import FIRST_SHELL_FACTOR, SHELL_GAP_A, find_shells, first_shell_mask
from model_core.spectra.align import broaden
from model_core.types import Spectrum, Structure

__all__ = ["RefineResult", "find_shells", "first_shell_mask", "predict_distorted", "refine_structure", "SHELL_GAP_A",
           "FIRST_SHELL_FACTOR", "PARAMS"]

PARAMS = ("shells", "strain")
_SHELL_RANGE = 0.2  # scale factors stay within 1 +- this
#: Refined shells lie entirely within this fraction of the crop radius.
_SHELL_REACH = 0.75
_STRAIN_RANGE = 0.1
_FD_STEP = 1e-3  # float32 model: larger steps than float64 would allow, still well within linearity


@dataclass(frozen=True, eq=False)
class RefineResult:
    """A refined local structure.

    Attributes:
        parameters: name -> value of every parameter (structural and fit).
        stderr: name -> standard error (NaN where not estimated).
        start: name -> starting value of each structural parameter.
        first_shell: ``distance_a`` (refined mean first-shell distance), ``start_a``,
            ``stderr_a``, ``n_atoms``, averaged over the sites with their weights.
        shells: per refined shell: ``shell``, ``n_atoms``, ``start_a``, ``distance_a``
            (of the first site).
        metrics_start: fit metrics of the starting structure (after fitting shift,
            broadening and scale).
        metrics_end: the same for the refined structure.
        fit_start, fit_end: the fits of :func:`fit_spectrum` on the starting and refined predictions.
        structure: the refined structure (see :func:`refine_structure`).
        n_evaluations: model evaluations by the optimizer.
        seconds: wall time.
    """

    parameters: Mapping[str, float]
    stderr: Mapping[str, float]
    start: Mapping[str, float]
    first_shell: Mapping[str, float]
    shells: tuple[Mapping[str, float], ...]
    metrics_start: Mapping[str, float]
    metrics_end: Mapping[str, float]
    fit_start: FitResult
    fit_end: FitResult
    structure: Structure
    n_evaluations: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        for name in ("parameters", "stderr", "start", "first_shell", "metrics_start", "metrics_end"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``xanes-refine`` (NaN kept; callers map it to null)."""
        return {
            "first_shell": dict(self.first_shell),
            "parameters": {k: {"value": float(v), "stderr": float(self.stderr.get(k, math.nan)),
                               **({"start": float(self.start[k])} if k in self.start else {})}
                           for k, v in self.parameters.items()},
            "shells": [dict(s) for s in self.shells],
            "metrics_start": dict(self.metrics_start), "metrics_end": dict(self.metrics_end),
            "n_evaluations": self.n_evaluations, "seconds": self.seconds,
        }


class _Forward:
    """Spectrum of the selected sites as a torch function of the structural parameters."""

    def __init__(self, predictor: Any, structure: Structure, sites: np.ndarray, weights: np.ndarray,
                 params: Sequence[str], max_shells: int, dtype: Any = None) -> None:
        import torch

        from model_core.batching import collate
        from model_core.graph import build_graphs
        from model_core.nn.model import XANE3

        checkpoint = predictor.checkpoint
        self.dtype = dtype or torch.float32
        self.models = []
        for state, config in checkpoint.spectrum_members:
            model = XANE3(config)
            model.load_state_dict(state)
            self.models.append(model.to(self.dtype).eval())
        if not self.models:
            raise ValueError(f"model {predictor.info.name} is untrained: nothing to refine through")
        self.member_weights = torch.as_tensor(checkpoint.spectrum_weights, dtype=self.dtype)  # (K,)
        for model in self.models:
            for p in model.parameters():
                p.requires_grad_(False)
        self.graphs = build_graphs(structure, sites, checkpoint.graph_config)
        self.batch = collate(self.graphs, dtype=self.dtype)
        self.pos0 = self.batch.pos.clone()  # (N, 3), every absorber at the origin of its graph
        self.weights = torch.as_tensor(np.asarray(weights) / np.sum(weights), dtype=self.dtype)
        shell_of_node, self.shell_counts = [], []
        reach = _SHELL_REACH * checkpoint.graph_config.r_crop
        for graph in self.graphs:
            distance = np.linalg.norm(graph.positions[1:], axis=1)
            shells = find_shells(distance)
            # A "shell" reaching the crop edge is the continuum of distant atoms, not a
            # coordination shell; scaling it would be the strain again (degenerate).
            too_far = np.unique(shells[distance > reach])
            shells[(shells > max_shells) | np.isin(shells, too_far)] = 0
            shell_of_node.append(np.concatenate([[0], shells]))
        self.n_shells = int(max(s.max() for s in shell_of_node)) if "shells" in params else 0
        self.shell_of_node = torch.as_tensor(np.concatenate(shell_of_node), dtype=torch.long)
        self.strain = "strain" in params
        self.names = [f"shell_{k}_scale" for k in range(1, self.n_shells + 1)] + (["strain"] if self.strain else [])

    def node_factors(self, theta):
        """(N,) radial factor of every node from the natural parameters (S shell scales, strain)."""
        import torch

        theta = theta.to(self.dtype)
        factors = torch.ones(self.n_shells + 1, dtype=self.dtype)
        if self.n_shells:
            factors = torch.cat([factors[:1], theta[:self.n_shells]])
        node = factors[self.shell_of_node]
        if self.strain:
            node = node * (1.0 + theta[self.n_shells])
        return node

    def __call__(self, theta):
        """(G,) the weighted site-average spectrum (the members' weighted mean) for parameters ``theta``."""
        import torch

        from model_core.inference import weighted_mean

        pos = self.pos0 * self.node_factors(theta)[:, None]
        src, dst = self.batch.edge_index
        self.batch.edge_vec = pos.index_select(0, dst) - pos.index_select(0, src)
        mu = weighted_mean(torch.stack([model(self.batch)["mu"] for model in self.models]),
                           self.member_weights)  # (K, B, G) -> (B, G)
        return (self.weights @ mu).double()


def _broadening_matrix(energy: np.ndarray, gaussian: float, lorentzian: float) -> np.ndarray:
    """(G, G) matrix M with M @ mu = the Gaussian-then-Lorentzian broadening of mu (linear in mu)."""
    columns = np.eye(len(energy))
    out = []
    for column in columns:
        if gaussian > 0.05:
            column = broaden(energy, column, gaussian, "gaussian")
        if lorentzian > 0.05:
            column = broaden(energy, column, lorentzian, "lorentzian")
        out.append(column)
    return np.stack(out, axis=1)


class _Objective:
    """Residuals on the fit grid as a torch function of (structural, shift, scale, background)."""

    def __init__(self, forward: _Forward, fit: FitResult, energy_rel: np.ndarray, base: float) -> None:
        import torch

        self.forward = forward
        self.energy = torch.tensor(np.asarray(fit.energy_ev), dtype=torch.float64)
        self.measured = torch.tensor(np.asarray(fit.measured), dtype=torch.float64)
        self.grid0 = float(energy_rel[0])
        self.step = float(energy_rel[1] - energy_rel[0])
        self.g = len(energy_rel)
        self.base = base
        self.background = "background_offset" in fit.parameters
        self.centre = 0.5 * float(fit.energy_ev[0] + fit.energy_ev[-1])
        self.set_broadening(fit)

    def set_broadening(self, fit: FitResult) -> None:
        import torch

        energy = self.grid0 + self.step * np.arange(self.g)
        self.matrix = torch.as_tensor(_broadening_matrix(energy, fit.parameters["gaussian_fwhm_ev"],
                                                         fit.parameters["lorentzian_fwhm_ev"]))

    def curve(self, theta, shift, scale, background=None):
        mu = self.matrix @ self.forward(theta)
        # Linear interpolation at E - base - shift, holding the end values (as np.interp).
        t = ((self.energy - self.base - shift - self.grid0) / self.step).clamp(0.0, self.g - 1.0)
        lower = t.detach().floor().clamp(max=self.g - 2).long()
        w = t - lower
        out = scale * ((1 - w) * mu[lower] + w * mu[lower + 1])
        if background is not None:
            out = out + background[0] + background[1] * (self.energy - self.centre)
        return out

    def residuals(self, vector):
        """Residuals for the natural-parameter vector [structural..., shift, scale, (b0, b1)]."""
        n = len(self.forward.names)
        background = vector[n + 2:n + 4] if self.background else None
        return self.curve(vector[:n], vector[n], vector[n + 1], background) - self.measured


def _optimise(objective: _Objective, start: np.ndarray, shift_bounds: tuple[float, float],
              max_iterations: int, check: Callable[[], None] | None = None) -> tuple[np.ndarray, int]:
    """L-BFGS over bounded reparametrisations; returns (natural parameters, evaluations).
    ``check`` is called before every evaluation (it may raise to stop)."""
    import torch

    n = len(objective.forward.names)
    half = 0.5 * (shift_bounds[1] - shift_bounds[0])
    centre = 0.5 * (shift_bounds[1] + shift_bounds[0])
    ranges = torch.tensor([_SHELL_RANGE] * objective.forward.n_shells
                          + [_STRAIN_RANGE] * objective.forward.strain, dtype=torch.float64)
    offsets = torch.tensor([1.0] * objective.forward.n_shells + [0.0] * objective.forward.strain,
                           dtype=torch.float64)

    def natural(u):
        structural = offsets + ranges * torch.tanh(u[:n])
        shift = centre + half * torch.tanh(u[n:n + 1]) if half > 0 else torch.full((1,), centre, dtype=u.dtype)
        return torch.cat([structural, shift, u[n + 1:]])

    def inverse(x):
        u = np.array(x, dtype=np.float64)
        u[:n] = np.arctanh(np.clip((x[:n] - offsets.numpy()) / ranges.numpy(), -0.999, 0.999))
        u[n] = np.arctanh(np.clip((x[n] - centre) / half, -0.999, 0.999)) if half > 0 else 0.0
        return u

    u = torch.tensor(inverse(start), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([u], lr=1.0, max_iter=max_iterations, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
    count = [0]

    def closure():
        if check is not None:
            check()
        optimizer.zero_grad()
        loss = objective.residuals(natural(u)).pow(2).mean()
        loss.backward()
        count[0] += 1
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return natural(u).numpy().copy(), count[0]


def _jacobian(objective: _Objective, x: np.ndarray) -> np.ndarray:
    """(n_points, P) central-difference Jacobian of the residuals at natural parameters ``x``."""
    import torch

    columns = []
    with torch.no_grad():
        for i in range(len(x)):
            h = _FD_STEP * max(1.0, abs(x[i]))
            plus, minus = x.copy(), x.copy()
            plus[i] += h
            minus[i] -= h
            columns.append((objective.residuals(torch.as_tensor(plus)) - objective.residuals(torch.as_tensor(minus)))
                           .numpy() / (2 * h))
    return np.stack(columns, axis=1)


def refine_structure(predictor: Any, structure: Structure, sites: Sequence[int], weights: Sequence[float],
                     measured_energy_ev: np.ndarray, measured_mu: np.ndarray, calibration: Calibration, *,
                     element: str, params: Sequence[str] = PARAMS, max_shells: int = 3,
                     shift_tolerance_ev: float = DEFAULT_SHIFT_TOLERANCE_EV,
                     window: tuple[float, float] | None = None, background: bool = False,
                     max_iterations: int = 30, check: Callable[[], None] | None = None) -> RefineResult:
    """Refine shell distances and strain of ``structure`` against a measured spectrum.

    Args:
        predictor: a :class:`~model_core.inference.XanesPredictor` (its checkpoint is used).
        structure: the starting structure.
        sites, weights: the absorber sites and their weights in the average.
        measured_energy_ev, measured_mu: (N,) normalized (flattened) measured spectrum, absolute eV.
        calibration: the element's calibration; the shift stays within +- ``shift_tolerance_ev``.
        element: absorbing element.
        params: any of "shells", "strain" (strain only for a crystal).
        max_shells: number of shells refined.
        window: absolute eV to fit; None for the whole overlap.
        background: also fit a linear background.
        max_iterations: L-BFGS iterations per round (two rounds).
        check: called after the starting fit and before every evaluation of the objective;
            an exception it raises (a cancel) stops the refinement and propagates.

    Returns:
        The :class:`RefineResult`. Its ``structure`` is the refined crystal when only
        the strain is refined; otherwise (shell scales cannot be applied to a crystal
        without breaking its periodicity) the refined cluster of the first site's
        graph as a molecule, absorber first; for a molecule, the molecule with the
        graph's atoms moved.

    Raises:
        ValueError: unknown or inapplicable parameters, an untrained model, no overlap.
    """
    import torch

    started = time.perf_counter()
    unknown = set(params) - set(PARAMS)
    if unknown or not params:
        raise ValueError(f"--params takes {', '.join(PARAMS)}; got {', '.join(sorted(unknown)) or 'nothing'}")
    if "strain" in params and not structure.is_periodic:
        raise ValueError("strain needs a crystal (the structure has no periodic cell)")
    sites = np.asarray(sites, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    shift = calibration.shift_ev
    bounds = (shift - shift_tolerance_ev, shift + shift_tolerance_ev)

    prediction = predictor.predict(structure, sites)
    spectrum = prediction.average_spectrum()
    base = placement_base(spectrum, element)[0]
    energy_rel = np.asarray(spectrum.energy_ev)
    if not np.allclose(np.diff(energy_rel), energy_rel[1] - energy_rel[0]):
        raise ValueError("refinement needs a model on a uniform energy grid")
    options = dict(offset_ev=base, shift_bounds_ev=bounds, window=window, background=background)
    fit_start = fit_spectrum(measured_energy_ev, measured_mu, energy_rel, prediction.average,
                             shift_start_ev=shift, **options)
    if check is not None:
        check()
    forward = _Forward(predictor, structure, sites, weights, params, max_shells)
    objective = _Objective(forward, fit_start, energy_rel, base)
    n = len(forward.names)
    names_fit = ["shift_ev", "scale"] + (["background_offset", "background_slope"] if background else [])
    x = np.array([*([1.0] * forward.n_shells), *([0.0] * forward.strain),
                  *(fit_start.parameters[k] for k in names_fit)])
    evaluations = 0
    fit = fit_start
    for _ in range(2):
        x, count = _optimise(objective, x, bounds, max_iterations, check)
        evaluations += count
        with torch.no_grad():
            mu = forward(torch.as_tensor(x[:n])).numpy()
        fit = fit_spectrum(measured_energy_ev, measured_mu, energy_rel, mu,
                           shift_start_ev=float(np.clip(x[n], *bounds)),
                           gaussian_start_ev=fit.parameters["gaussian_fwhm_ev"],
                           lorentzian_start_ev=fit.parameters["lorentzian_fwhm_ev"], **options)
        objective.set_broadening(fit)
        x[n:] = [fit.parameters[k] for k in names_fit]

    jac = _jacobian(objective, x)
    residuals = np.asarray(fit.fitted) - np.asarray(fit.measured)
    dof = max(1, len(residuals) - len(x))
    covariance = np.linalg.pinv(jac.T @ jac) * float(residuals @ residuals) / dof
    stderr_x = np.sqrt(np.clip(np.diag(covariance), 0.0, None))

    values = {name: float(v) for name, v in zip(forward.names, x[:n])}
    stderr = {name: float(s) for name, s in zip(forward.names, stderr_x[:n])}
    values.update({k: float(v) for k, v in fit.parameters.items()})
    stderr.update({k: float(fit.stderr[k]) for k in fit.parameters})
    for k, name in enumerate(names_fit):
        stderr[name] = float(stderr_x[n + k])
    start = {name: (1.0 if name.startswith("shell_") else 0.0) for name in forward.names}

    first_shell = _first_shell(forward, x[:n], covariance[:n, :n], weights)
    shells = _shell_table(forward, x[:n])
    refined = _refined_structure(forward, x[:n], structure, params)
    return RefineResult(parameters=values, stderr=stderr, start=start, first_shell=first_shell,
                        shells=shells, metrics_start=fit_start.metrics_after, metrics_end=fit.metrics_after,
                        fit_start=fit_start, fit_end=fit, structure=refined, n_evaluations=evaluations,
                        seconds=time.perf_counter() - started)


@functools.lru_cache(maxsize=1)  # a live preview asks again and again for one structure: build its models once
def _preview(model: Any, structure: Structure, sites: tuple, weights: tuple, shells: int) -> _Forward:
    return _Forward(model, structure, np.array(sites), np.array(weights), PARAMS[:1 + structure.is_periodic], shells)


def predict_distorted(predictor: Any, structure: Structure, sites: Sequence[int], weights: Sequence[float],
                      shell_scales: Sequence[float] = (), strain: float = 0.0, *, max_shells: int = 3) -> Spectrum:
    """:func:`refine_structure`'s forward pass (edge-relative, no ``e0_ev``; models kept for the last structure) at
    ``shell_scales`` (shells 1, 2, ...; missing: 1), ``strain`` (crystals); site 1's shells: ``metadata["shells"]``."""
    import torch
    if strain and not structure.is_periodic:
        raise ValueError("strain needs a crystal (the structure has no periodic cell)")
    forward = _preview(predictor, structure, tuple(map(int, sites)), tuple(map(float, weights)), max_shells)
    n = forward.n_shells
    theta = np.array(([float(v) for v in shell_scales] + [1.0] * n)[:n] + [float(strain)] * forward.strain)
    return Spectrum(predictor.info.energy_ev, forward(torch.as_tensor(theta)).numpy(), energy_reference="edge",
                    metadata={"shells": _shell_table(forward, theta)})


def _node_distances(forward: _Forward, theta: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        factors = forward.node_factors(torch.as_tensor(theta, dtype=torch.float64)).numpy()
    return np.linalg.norm(forward.pos0.numpy(), axis=1) * factors


def _first_shell(forward: _Forward, theta: np.ndarray, covariance: np.ndarray,
                 weights: np.ndarray) -> dict[str, float]:
    """Weighted mean over sites of the first-shell mean distance, with its delta-method error."""
    node_graph = forward.batch.batch.numpy()
    start = _node_distances(forward, np.array([1.0] * forward.n_shells + [0.0] * forward.strain))
    masks = []
    for k in range(len(forward.graphs)):
        mask = np.zeros(len(node_graph), dtype=bool)
        inside = np.flatnonzero(node_graph == k)[1:]  # node 0 of each graph is the absorber
        mask[inside[first_shell_mask(start[inside])]] = True
        masks.append(mask)
    w = weights / weights.sum()

    def mean_distance(t: np.ndarray) -> float:
        d = _node_distances(forward, t)
        return float(sum(wk * d[m].mean() for wk, m in zip(w, masks)))

    value = mean_distance(theta)
    gradient = np.array([(mean_distance(theta + h) - mean_distance(theta - h)) / (2 * _FD_STEP)
                         for h in np.eye(len(theta)) * _FD_STEP])
    stderr = float(np.sqrt(max(gradient @ covariance @ gradient, 0.0))) if len(theta) else math.nan
    return {"distance_a": value, "start_a": mean_distance(np.array([1.0] * forward.n_shells
                                                                   + [0.0] * forward.strain)),
            "stderr_a": stderr, "n_atoms": float(np.mean([m.sum() for m in masks]))}


def _shell_table(forward: _Forward, theta: np.ndarray) -> tuple[dict[str, float], ...]:
    node_graph = forward.batch.batch.numpy()
    shell = forward.shell_of_node.numpy()
    start = _node_distances(forward, np.array([1.0] * forward.n_shells + [0.0] * forward.strain))
    refined = _node_distances(forward, theta)
    rows = []
    for k in range(1, forward.n_shells + 1):
        mask = (node_graph == 0) & (shell == k)
        if mask.any():
            rows.append({"shell": k, "n_atoms": int(mask.sum()), "start_a": float(start[mask].mean()),
                         "distance_a": float(refined[mask].mean())})
    return tuple(rows)


def _refined_structure(forward: _Forward, theta: np.ndarray, structure: Structure,
                       params: Sequence[str]) -> Structure:
    import torch

    if "shells" not in params and structure.cell is not None:
        factor = 1.0 + float(theta[-1])
        return structure.replace(positions=structure.positions * factor, cell=structure.cell * factor,
                                 name=f"{structure.name} refined")
    graph = forward.graphs[0]
    with torch.no_grad():
        factors = forward.node_factors(torch.as_tensor(theta, dtype=torch.float64)).numpy()
    first = np.asarray(forward.batch.batch.numpy() == 0)
    positions = forward.pos0.numpy()[first] * factors[first][:, None]
    absorber = structure.positions[graph.site_index]
    if structure.cell is None:
        moved = np.array(structure.positions)
        moved[graph.atom_index] = absorber + positions
        return structure.replace(positions=moved, name=f"{structure.name} refined")
    return Structure(atomic_numbers=graph.atomic_numbers, positions=positions + absorber,
                     name=f"{structure.name} refined cluster", source="", absorber_index=0,
                     info={"refined_from": structure.source or structure.name})
