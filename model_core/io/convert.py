"""Conversions between :class:`~model_core.types.Structure` and ASE / pymatgen objects.

ASE and pymatgen are imported inside the functions so that importing this
module costs nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model_core.types import Structure


def _cell_or_none(cell: np.ndarray, pbc: tuple[bool, bool, bool]) -> np.ndarray | None:
    """The cell to keep: None for a molecule, else the (3, 3) matrix in Å."""
    if not any(pbc):
        return None
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(cell)) < 1e-6:
        periodic = ", ".join("abc"[k] for k in range(3) if pbc[k])
        raise ValueError(f"periodic along {periodic} but the cell has zero volume")
    return cell


def from_ase(atoms: Any, source: str = "", name: str = "") -> Structure:
    """Structure from an :class:`ase.Atoms`.

    Args:
        atoms: the ASE atoms. A cell is kept only when some direction is
            periodic; non-periodic atoms become a molecule (cell None).
        source: the file it came from.
        name: display name (defaults to the chemical formula).

    Returns:
        The structure; ``info`` receives ASE's ``atoms.info`` entries whose values
        are plain scalars or strings.
    """
    pbc = tuple(bool(p) for p in atoms.pbc)
    cell = _cell_or_none(atoms.cell.array, pbc)
    info = {str(k): v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool))}
    return Structure(
        atomic_numbers=np.asarray(atoms.numbers, dtype=np.int64),
        positions=np.asarray(atoms.positions, dtype=np.float64),
        cell=cell,
        pbc=pbc,
        source=source,
        name=name or atoms.get_chemical_formula(),
        info=info,
    )


def to_ase(structure: Structure) -> Any:
    """:class:`ase.Atoms` of a structure (positions in Å; zero cell for a molecule)."""
    from ase import Atoms

    cell = structure.cell if structure.cell is not None else np.zeros((3, 3))
    atoms = Atoms(numbers=np.array(structure.atomic_numbers), positions=np.array(structure.positions),
                  cell=np.array(cell), pbc=structure.pbc)
    if structure.name:
        atoms.info["name"] = structure.name
    if structure.source:
        atoms.info["source"] = structure.source
    return atoms


def from_pymatgen(obj: Any, source: str = "", name: str = "") -> Structure:
    """Structure from an ordered pymatgen ``Structure`` or ``Molecule``.

    Raises:
        ValueError: for disordered objects or sites that are not chemical elements.
    """
    if not obj.is_ordered:
        raise ValueError("the structure is disordered (partial occupancies)")
    numbers = []
    for k, site in enumerate(obj):
        z = int(getattr(site.specie, "Z", 0) or 0)
        if z <= 0:
            raise ValueError(f"site {k} ({site.species_string}) is not a chemical element")
        numbers.append(z)
    lattice = getattr(obj, "lattice", None)
    if lattice is None:
        cell, pbc = None, (False, False, False)
    else:
        pbc = tuple(bool(p) for p in getattr(lattice, "pbc", (True, True, True)))
        cell = _cell_or_none(lattice.matrix, pbc)
    return Structure(
        atomic_numbers=np.asarray(numbers, dtype=np.int64),
        positions=np.asarray(obj.cart_coords, dtype=np.float64).reshape(-1, 3),
        cell=cell,
        pbc=pbc,
        source=source,
        name=name or obj.composition.reduced_formula,
    )


def to_pymatgen(structure: Structure) -> Any:
    """pymatgen ``Structure`` for a periodic structure, ``Molecule`` otherwise.

    Site order and Cartesian positions (Å) are preserved exactly.
    """
    numbers = [int(z) for z in structure.atomic_numbers]
    positions = np.array(structure.positions)
    if structure.is_periodic:
        from pymatgen.core import Lattice
        from pymatgen.core import Structure as PmgStructure

        lattice = Lattice(np.array(structure.cell), pbc=structure.pbc)
        return PmgStructure(lattice, numbers, positions, coords_are_cartesian=True)
    from pymatgen.core import Molecule

    return Molecule(numbers, positions)
