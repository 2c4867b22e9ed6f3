"""Choosing absorber sites, and per-site coordination data for the GUI's site table."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from model_core.types import SiteSelection, SiteSymmetry, Structure, atomic_number, element_symbol


def _label(structure: Structure) -> str:
    return structure.source or structure.name or structure.formula


def select_sites(structure: Structure, *, element: str | int | None = None,
                 sites: Sequence[int] | np.ndarray | None = None,
                 symmetry: SiteSymmetry | None = None,
                 reduce_equivalent: bool = True) -> SiteSelection:
    """Choose the absorber sites to predict and their weights in the site average.

    Exactly one way of choosing applies, in this order:

    * ``sites``: exactly these 0-based atom indices (duplicates dropped, order
      kept), weights 1.
    * ``element``: every atom of that element. With ``reduce_equivalent`` the
      atoms are reduced to one representative per symmetry-equivalence group
      (``symmetry`` is computed when not given) with weight = the number of
      selected atoms it stands for, so the weighted mean over the selection
      equals the plain mean over all atoms of the element.
    * neither: the absorber the file designates (``structure.absorber_index``).

    Args:
        structure: the structure.
        element: absorbing element, symbol ("Cu") or atomic number.
        sites: 0-based atom indices.
        symmetry: a precomputed :func:`model_core.symmetry.analyze_symmetry` result.
        reduce_equivalent: reduce equivalent atoms of ``element`` to representatives.

    Returns:
        The selection: (M,) indices and (M,) float weights.

    Raises:
        ValueError: both or neither of ``element``/``sites`` (and no designated
            absorber), an index out of range, or an element absent from the structure.
    """
    if element is not None and sites is not None:
        raise ValueError("give either an element or site indices, not both")
    n_atoms = structure.n_atoms
    if sites is not None:
        chosen: list[int] = []
        for site in np.asarray(sites).reshape(-1).tolist():
            if isinstance(site, float) and not site.is_integer():
                raise ValueError(f"site {site} is not an integer index")
            site = int(site)
            if not 0 <= site < n_atoms:
                raise ValueError(f"site {site} out of range (structure has {n_atoms} atoms)")
            if site not in chosen:
                chosen.append(site)
        if not chosen:
            raise ValueError("no sites given")
        return SiteSelection(np.array(chosen, dtype=np.int64))
    if element is not None:
        z = atomic_number(element)
        indices = np.flatnonzero(structure.atomic_numbers == z)
        if len(indices) == 0:
            raise ValueError(f"no {element_symbol(z)} atoms in {_label(structure)} ({structure.formula})")
        if not reduce_equivalent:
            return SiteSelection(indices)
        if symmetry is None:
            from model_core.symmetry import analyze_symmetry

            symmetry = analyze_symmetry(structure)
        if len(symmetry.group) != n_atoms:
            raise ValueError(f"the symmetry analysis has {len(symmetry.group)} atoms, "
                             f"the structure {n_atoms}")
        representatives, weights = symmetry.representatives(indices)
        return SiteSelection(representatives, weights)
    if structure.absorber_index is not None:
        return SiteSelection(np.array([structure.absorber_index], dtype=np.int64))
    raise ValueError(f"{_label(structure)} designates no absorber: choose an element or site indices")


def coordination_info(structure: Structure, indices: Sequence[int] | np.ndarray | None = None,
                      shell_tolerance: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Coordination number and nearest-neighbour distance of atoms, periodic images included.

    The coordination number counts the neighbours closer than ``shell_tolerance``
    times the atom's nearest-neighbour distance (the first coordination shell).
    Covalent-radius criteria fail both ways for the ionic and mixed compounds
    users open (no Na-Cl bond in rock salt, Cu-Cu "bonds" in CuO); the shell
    criterion gives the textbook numbers (NaCl 6, Cu2O 2, CuO 4, Fe2O3 6). The
    nearest-neighbour distance is the distance to the closest other atom (or periodic
    image) within a search radius of twice the largest covalent bond length (at
    least 4 Å); both are NaN/0 when there is none.

    Args:
        structure: the structure (N atoms).
        indices: atoms to report (default: all), 0-based.
        shell_tolerance: neighbours up to this multiple of the nearest distance count.

    Returns:
        ``(coordination_number, nearest_neighbor_distance_A)``: (M,) int64 and
        (M,) float64 in Å, for the M requested atoms in the order given.
    """
    from ase.neighborlist import natural_cutoffs, neighbor_list

    from model_core.io.convert import to_ase

    n_atoms = structure.n_atoms
    wanted = np.arange(n_atoms) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(wanted) and (wanted.min() < 0 or wanted.max() >= n_atoms):
        bad = int(wanted[(wanted < 0) | (wanted >= n_atoms)][0])
        raise ValueError(f"site {bad} out of range (structure has {n_atoms} atoms)")
    atoms = to_ase(structure)
    radii = np.asarray(natural_cutoffs(atoms), dtype=np.float64)
    search = max(4.0, 2.0 * float(radii.max()))
    # One neighbour search with a single radius, then the shell test in numpy.
    first, second, distance = neighbor_list("ijd", atoms, search, self_interaction=False)
    nearest = np.full(n_atoms, np.inf)
    np.minimum.at(nearest, first, distance)
    in_shell = distance < shell_tolerance * nearest[first] + 1e-6
    coordination = np.bincount(first[in_shell], minlength=n_atoms).astype(np.int64)
    nearest[np.isinf(nearest)] = np.nan
    return coordination[wanted], nearest[wanted]
