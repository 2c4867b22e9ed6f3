"""Refined candidates: a candidate cluster refined against the input spectrum by ``xanes-refine``'s refinement.

:func:`refine_cluster` runs :func:`model_core.interpret.refine.refine_structure`
(radial scale factors of up to ``max_shells`` coordination shells, params
``("shells",)``: a cluster has no cell to strain) on a cluster against a spectrum
on the forward model's edge-relative grid. The adapter: the refinement fits an
absolute-energy measurement with the prediction placed at its base (the predicted
E0, :func:`~model_core.interpret.calibration.placement_base`) plus a calibration
shift, so the grid is put at that same base and the calibration is "none" with a
tolerance of the round trip's ±``ROUNDTRIP_MAX_SHIFT_EV``: shift 0 there is the
round trip's shift 0.

The refinement minimises its own fit (shift, scale and a Voigt broadening fitted
with them, on the overlap of the shifted curves), not the round trip's (shift on a
0.1 eV grid and scale, no broadening); the caller scores the refined cluster with
the round trip like every other candidate, so the rankings stay comparable.

A cluster the refinement cannot move (no neighbour within the forward model's crop
radius, or no shell within its reach of 0.75 x that radius) gives ``None``: its
"refined" copy would be the candidate itself.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from model_core.inverse.clusters import cluster_structure
from model_core.inverse.roundtrip import ROUNDTRIP_MAX_SHIFT_EV

__all__ = ["REFINE_MAX_ITERATIONS", "refine_cluster"]

#: L-BFGS iterations per round of the refinement (two rounds): a few shell scales converge in
#: well under this, and invert() refines several candidates per spectrum.
REFINE_MAX_ITERATIONS = 12


def refine_cluster(predictor: Any, atomic_numbers: np.ndarray, positions_a: np.ndarray, energy_ev: np.ndarray,
                   mu: np.ndarray, element: str, *, max_shells: int = 3,
                   max_iterations: int = REFINE_MAX_ITERATIONS,
                   check: Callable[[], None] | None = None) -> np.ndarray | None:
    """The refined positions of a cluster (absorber first, at the origin; same atom order).

    Args:
        predictor: the forward :class:`~model_core.inference.XanesPredictor` (with a checkpoint).
        atomic_numbers, positions_a: (n,) and (n, 3) Å, the cluster, absorber in row 0.
        energy_ev, mu: (G,) the input spectrum on the forward model's edge-relative grid.
        element: absorbing element.
        max_shells: coordination shells refined (only those within 0.75 x the crop radius).
        max_iterations: L-BFGS iterations per round.
        check: called between the refinement's predictions and before each of its
            evaluations (it may raise to cancel).

    Returns:
        (n, 3) float64 refined positions in Å, or None when nothing could be refined.

    Raises:
        ValueError: from the refinement (e.g. an untrained forward model).
    """
    from model_core.interpret.calibration import Calibration, placement_base
    from model_core.interpret.refine import refine_structure

    positions_a = np.asarray(positions_a, dtype=np.float64)
    distance = np.linalg.norm(positions_a[1:] - positions_a[0], axis=1)
    if not np.any((distance > 0) & (distance < predictor.checkpoint.graph_config.r_crop)):
        return None
    structure = cluster_structure(atomic_numbers, positions_a, name="candidate")
    base, _how = placement_base(predictor.predict(structure, [0]).average_spectrum(), element)
    if check is not None:
        check()
    result = refine_structure(predictor, structure, [0], [1.0], np.asarray(energy_ev, dtype=np.float64) + base,
                              np.asarray(mu, dtype=np.float64), Calibration(element=element), element=element,
                              params=("shells",), max_shells=max_shells, shift_tolerance_ev=ROUNDTRIP_MAX_SHIFT_EV,
                              max_iterations=max_iterations, check=check)
    if not any(name.startswith("shell_") for name in result.parameters):
        return None
    return np.asarray(result.structure.positions, dtype=np.float64)
