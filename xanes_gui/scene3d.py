"""What the 3-D view draws for a structure, as plain numpy (testable without OpenGL).

Displayed atoms (a supercell repeats them), their radii and colours, bonds found
with a KD-tree (O(N log N), never all pairs), bond half-segments and cell edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_core.types import Structure
from xanes_gui.elements import covalent_radii, jmol_colors

#: Spheres are drawn at this fraction of the covalent radius (ball-and-stick look).
ATOM_SCALE = 0.45
#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_TOLERANCE = 1.15
#: Non-metals (H, He, B, C, N, O, F, Ne, Si, P, S, Cl, Ar, As, Se, Br, Kr, Te, I, Xe, At, Rn).
#: Sticks are drawn only when at least one end is one of these: metal-metal
#: contacts in oxides and salts (Cu-Cu 2.9 A in CuO) would otherwise hide the
#: coordination polyhedra. A display choice only.
NON_METALS = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86})


def supercell(structure: Structure, repeats: tuple[int, int, int] = (1, 1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Positions repeated along the cell vectors and the original atom index of each.

    Returns:
        ((N·na·nb·nc, 3) positions, (N·na·nb·nc,) atom indices into ``structure``).
    """
    positions = np.asarray(structure.positions)
    index = np.arange(structure.n_atoms)
    if structure.cell is None or tuple(repeats) == (1, 1, 1):
        return positions.copy(), index
    # Only periodic directions can be repeated (a slab is not repeated along its normal).
    na, nb, nc = (max(1, int(n)) if periodic else 1 for n, periodic in zip(repeats, structure.pbc))
    shifts = np.array([(i, j, k) for i in range(na) for j in range(nb) for k in range(nc)], dtype=float)
    translations = shifts @ np.asarray(structure.cell)
    out = (positions[None, :, :] + translations[:, None, :]).reshape(-1, 3)
    return out, np.tile(index, len(shifts))


def find_bonds(positions: np.ndarray, radii: np.ndarray, tolerance: float = BOND_TOLERANCE,
               atomic_numbers: np.ndarray | None = None) -> np.ndarray:
    """(B, 2) pairs of displayed atoms closer than ``tolerance`` × the sum of their covalent radii.

    With ``atomic_numbers``, pairs of two metals are left out (see :data:`NON_METALS`).
    """
    from scipy.spatial import cKDTree

    if len(positions) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    cutoff = tolerance * 2.0 * float(np.max(radii))
    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=1)
    keep = (d < tolerance * (radii[pairs[:, 0]] + radii[pairs[:, 1]])) & (d > 0.1)
    if atomic_numbers is not None:
        nonmetal = np.isin(np.asarray(atomic_numbers), list(NON_METALS))
        keep &= nonmetal[pairs[:, 0]] | nonmetal[pairs[:, 1]]
    return pairs[keep]


def bond_segments(positions: np.ndarray, pairs: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-bond line segments (4 vertices per bond) coloured like their atoms, for mode='lines'."""
    a, b = positions[pairs[:, 0]], positions[pairs[:, 1]]
    mid = 0.5 * (a + b)
    pos = np.stack([a, mid, mid, b], axis=1).reshape(-1, 3).astype(np.float32)
    col = np.stack([colors[pairs[:, 0]], colors[pairs[:, 0]], colors[pairs[:, 1]], colors[pairs[:, 1]]],
                   axis=1).reshape(-1, 4).astype(np.float32)
    return pos, col


def cell_edges(cell: np.ndarray) -> np.ndarray:
    """(24, 3) endpoints of the 12 unit-cell edges (for mode='lines')."""
    a, b, c = np.asarray(cell, dtype=float)
    corners = {(i, j, k): i * a + j * b + k * c for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    lines = []
    for (i, j, k), p in corners.items():
        for di, dj, dk in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            q = (i + di, j + dj, k + dk)
            if q in corners:
                lines += [p, corners[q]]
    return np.array(lines, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class SceneGeometry:
    """What is drawn for one structure (displayed atoms may repeat in a supercell).

    Attributes:
        positions: (D, 3) displayed atom centres.
        atom_index: (D,) original atom index of each displayed atom.
        radii: (D,) drawn sphere radii (Å).
        colors: (D, 4) element colours.
        bonds: (B, 2) pairs of displayed atoms.
    """

    positions: np.ndarray
    atom_index: np.ndarray
    radii: np.ndarray
    colors: np.ndarray
    bonds: np.ndarray

    @classmethod
    def build(cls, structure: Structure, repeats: tuple[int, int, int] = (1, 1, 1),
              with_bonds: bool = True) -> "SceneGeometry":
        positions, index = supercell(structure, repeats)
        numbers = np.asarray(structure.atomic_numbers)[index]
        covalent = covalent_radii(numbers)
        bonds = find_bonds(positions, covalent, atomic_numbers=numbers) if with_bonds \
            else np.zeros((0, 2), dtype=np.int64)
        return cls(positions, index, ATOM_SCALE * covalent, jmol_colors(numbers), bonds)
