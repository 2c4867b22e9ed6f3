"""Small structures foreign to the shipped models, built in memory."""

from __future__ import annotations

import numpy as np

from model_core.types import Structure

_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


def cu_hexaaqua() -> Structure:
    """[Cu(H2O)6]2+: Jahn-Teller octahedron (Cu-O 1.97 Å equatorial, 2.30 Å axial), H 0.96 Å from O."""
    z, positions = [29], [np.zeros(3)]
    for k, axis in enumerate(_AXES):
        oxygen = axis * (2.30 if k >= 4 else 1.97)
        z.append(8)
        positions.append(oxygen)
        perpendicular = np.roll(axis, 1)
        for sign in (1, -1):
            half = np.radians(52)
            z.append(1)
            positions.append(oxygen + 0.96 * (np.cos(half) * axis + sign * np.sin(half) * perpendicular))
    return Structure(np.array(z), np.array(positions), name="Cu(H2O)6")


def cu_tetrachloride() -> Structure:
    """[CuCl4]2-, tetrahedral, Cu-Cl 2.25 Å."""
    tetrahedron = np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]]) / np.sqrt(3)
    return Structure(np.array([29, 17, 17, 17, 17]), np.vstack([np.zeros(3), 2.25 * tetrahedron]), name="CuCl4")
