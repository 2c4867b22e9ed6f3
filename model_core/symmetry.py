"""Symmetry-equivalent sites of a structure (spglib through pymatgen).

Equivalent absorbers have identical spectra (for a powder / orientation average),
so the model needs to predict only one representative per group, weighted by
the group's size.
"""

from __future__ import annotations

import numpy as np

from model_core.types import SiteSymmetry, Structure


def trivial_symmetry(n_atoms: int) -> SiteSymmetry:
    """"No symmetry known": every atom its own group of multiplicity one, Wyckoff "" (molecules,
    or when symmetry analysis fails)."""
    return SiteSymmetry(group=np.arange(n_atoms), wyckoff=("",) * n_atoms,
                        multiplicity=np.ones(n_atoms, dtype=np.int64))


def analyze_symmetry(structure: Structure, symprec: float = 0.01,
                     angle_tolerance: float = 5.0) -> SiteSymmetry:
    """Group the atoms of a structure into symmetry-equivalent sets.

    Args:
        structure: the structure (N atoms).
        symprec: distance tolerance in Å for spglib.
        angle_tolerance: angle tolerance in degrees for spglib.

    Returns:
        Per-atom groups in the input atom order: ``group`` (N,) ids numbered
        0, 1, ... in order of first appearance; ``multiplicity`` (N,) the number
        of atoms of the input cell in the atom's group; ``wyckoff`` labels such
        as "4b" whose number is the International Tables multiplicity (per
        conventional cell, so it may differ from ``multiplicity`` when the input
        is a primitive or super cell). A molecule, or a crystal spglib cannot
        analyse, gets every atom in its own group, multiplicity 1, Wyckoff "".
    """
    n_atoms = structure.n_atoms
    if not structure.is_periodic:
        return trivial_symmetry(n_atoms)
    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        from model_core.io.convert import to_pymatgen

        analyzer = SpacegroupAnalyzer(to_pymatgen(structure), symprec=symprec,
                                      angle_tolerance=angle_tolerance)
        # The dataset holds what get_symmetrized_structure() would group by
        # (equivalent_atoms, wyckoffs) without building one SymmOp per operation,
        # which for a 10,000-atom supercell (tens of thousands of pure
        # translations) takes tens of seconds.
        dataset = analyzer.get_symmetry_dataset()
        symbol = analyzer.get_space_group_symbol()
        number = analyzer.get_space_group_number()
    except Exception:  # noqa: BLE001 - spglib gives up on odd cells; symmetry is optional
        return trivial_symmetry(n_atoms)
    if dataset is None:
        return trivial_symmetry(n_atoms)

    # spglib's conventional cell contains whole orbits, as does the input cell, so
    # orbit sizes scale by the ratio of atom counts.
    to_conventional = len(dataset.std_types) / n_atoms
    equivalent = np.asarray(dataset.equivalent_atoms, dtype=np.int64)
    letters = list(dataset.wyckoffs)
    if equivalent.shape != (n_atoms,) or len(letters) != n_atoms:
        return trivial_symmetry(n_atoms)  # inconsistent dataset: stay safe
    # spglib names each orbit by one member atom; renumber orbits 0, 1, ... in
    # order of their first atom so that ids follow the input order.
    _, first_seen, group = np.unique(equivalent, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_seen))
    group = order[group.reshape(-1)].astype(np.int64)
    sizes = np.bincount(group)
    multiplicity = sizes[group].astype(np.int64)
    wyckoff = tuple(f"{int(round(multiplicity[i] * to_conventional))}{letters[i]}" for i in range(n_atoms))
    return SiteSymmetry(group=group, wyckoff=wyckoff, multiplicity=multiplicity,
                        spacegroup_symbol=str(symbol), spacegroup_number=int(number))
