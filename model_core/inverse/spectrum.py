"""An input spectrum put on the forward model's edge-relative grid, normalized like its targets.

* FEFF ``xmu.dat``: the file gives the edge (``omega - e``) and FEFF's own
  normalization (mu divided by its value at edge + 50 eV) is the forward
  model's training normalization (``"feff"``), so mu is taken as it is.
* Anything else :func:`model_core.spectra.measured.read_measured` reads (XDI,
  Athena projects, column files, FDMNES output): edge-step normalized with
  larch's ``pre_edge`` as ``xanes-compare`` does
  (:func:`model_core.spectra.normalize.normalize`, the not-flattened ``norm``;
  post-edge ~1 like FEFF's), and placed on the grid with its E0 (the maximum of
  dmu/dE) at ``edge_offset_ev``: where the training spectra have the maximum of
  their derivative. The round-trip fit's free shift of +-3 eV absorbs the rest.
* A spectrum already in memory on an edge-relative axis and in FEFF's
  normalization (a FEFF10 run's, a forward prediction's):
  :func:`spectrum_on_grid`, the last step of the file route.
* FDMNES output, when the absorbing element is given: a simulated spectrum like the
  training data, so it is prepared like their targets: energies relative to the
  file's ``E_edge``, else the element's tabulated K edge (as
  :mod:`trainer.data.fdmnes_source` does), and the targets' edge-step normalization
  (:func:`model_core.spectra.normalize.normalize_target`). An E0 search on the short
  -15..+60 eV range of such files can land 10 eV into the white line (the data then
  miss the grid) and larch's edge step can come out negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GridSpectrum", "read_spectrum_on_grid", "spectrum_on_grid", "to_grid"]

#: How far (eV) the grid may reach beyond the data; the nearest value is held there.
GRID_TOLERANCE_EV = 2.5


@dataclass(frozen=True, eq=False)
class GridSpectrum:
    """A spectrum on the model grid.

    Attributes:
        energy_ev: (G,) grid energies, eV relative to the edge.
        mu: (G,) normalized absorption.
        source: the file.
        label: legend name.
        e0_ev: absolute energy put at 0 on the grid (eV).
        alignment: how the edge was placed, in words.
        warnings: repairs and adjustments made while reading and normalizing.
    """

    energy_ev: np.ndarray
    mu: np.ndarray
    source: str = ""
    label: str = ""
    e0_ev: float = float("nan")
    alignment: str = ""
    warnings: tuple[str, ...] = ()


def to_grid(energy_rel_ev: np.ndarray, mu: np.ndarray, grid_ev: np.ndarray, source: str = "spectrum") -> np.ndarray:
    """Linear interpolation onto the grid; ValueError when the data miss the grid by over 2.5 eV."""
    energy = np.asarray(energy_rel_ev, dtype=np.float64)
    grid = np.asarray(grid_ev, dtype=np.float64)
    if energy[0] - grid[0] > GRID_TOLERANCE_EV or grid[-1] - energy[-1] > GRID_TOLERANCE_EV:
        raise ValueError(f"{source}: covers {energy[0]:.1f}..{energy[-1]:.1f} eV around the edge; "
                         f"the model needs {grid[0]:g}..{grid[-1]:g} eV")
    return np.interp(grid, energy, np.asarray(mu, dtype=np.float64))


def read_spectrum_on_grid(path: str | Path, grid_ev: np.ndarray, *, group: str | None = None,
                          edge_offset_ev: float = 0.0, element: str | None = None) -> GridSpectrum:
    """Read a spectrum file and put it on the grid (see the module docstring).

    ``element``: the absorber, whose tabulated K edge places an FDMNES file that gives none.

    Raises:
        ValueError: a one-line message naming the file (unreadable, not normalizable,
            too short a range).
    """
    from model_core.spectra.measured import read_measured
    from model_core.spectra.normalize import normalize

    data = read_measured(path, group=group)
    warnings = list(data.warnings)
    e0_hint = data.metadata.get("e0_hint_ev")
    if data.format == "feff" and e0_hint is not None:
        e0 = float(e0_hint)
        energy_rel, mu = data.energy_ev - e0, data.mu
        alignment = "FEFF edge from the file; FEFF normalization"
    elif data.format == "fdmnes" and (e0_hint is not None or element):
        from model_core.interpret.calibration import tabulated_edge_ev
        from model_core.spectra.normalize import NormalizationError, TargetNormalization, normalize_target

        e0 = float(e0_hint) if e0_hint is not None else tabulated_edge_ev(str(element))
        energy_rel = data.energy_ev - e0
        try:
            mu, _info = normalize_target(energy_rel, data.mu, TargetNormalization(mode="edge_step"))
        except NormalizationError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        alignment = (f"FDMNES edge {e0:.2f} eV ({'from the file' if e0_hint is not None else 'tabulated'}); "
                     "edge-step normalization of the training targets")
    else:
        norm = normalize(data.energy_ev, data.mu)
        warnings.extend(norm.warnings)
        e0 = float(norm.e0) - float(edge_offset_ev)
        energy_rel, mu = data.energy_ev - e0, norm.norm
        alignment = (f"E0 {norm.e0:.2f} eV (max dmu/dE) placed at {edge_offset_ev:+.2f} eV; "
                     "larch edge-step normalization")
    return spectrum_on_grid(energy_rel, mu, grid_ev, source=str(path), label=data.label, e0_ev=e0,
                            alignment=alignment, warnings=tuple(warnings))


def spectrum_on_grid(energy_rel_ev: np.ndarray, mu: np.ndarray, grid_ev: np.ndarray, *, source: str = "spectrum",
                     label: str = "", e0_ev: float = float("nan"), alignment: str = "edge and normalization as given",
                     warnings: tuple[str, ...] = ()) -> GridSpectrum:
    """An edge-relative spectrum, normalized like the forward model's targets, on the grid.

    Args:
        energy_rel_ev, mu: (N,) energies relative to the edge (eV) and normalized mu.
        grid_ev: (G,) the model grid.
        source, label: names for messages and legends.
        e0_ev: the absolute energy of the edge (NaN when unknown).

    Raises:
        ValueError: naming ``source``: too short a range, or non-finite values on the grid.
    """
    on_grid = to_grid(energy_rel_ev, mu, grid_ev, source)
    if not np.all(np.isfinite(on_grid)):
        raise ValueError(f"{source}: the spectrum has non-finite values on the model grid")
    return GridSpectrum(energy_ev=np.asarray(grid_ev, dtype=np.float64), mu=on_grid, source=source, label=label,
                        e0_ev=float(e0_ev), alignment=alignment, warnings=tuple(warnings))
