"""Symmetry-equivalence groups mapped back to the input atom order."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.symmetry import analyze_symmetry
from model_core.types import Structure


def crystal(symbols, fractional, cell) -> Structure:
    from model_core.types import atomic_number

    cell = np.asarray(cell, dtype=float)
    return Structure([atomic_number(s) for s in symbols], np.asarray(fractional) @ cell,
                     cell=cell, pbc=(True, True, True))


def cu2o() -> Structure:
    # Pn-3m origin 1: Cu 4b, O 2a.
    cu = [[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]
    o = [[0, 0, 0], [0.5, 0.5, 0.5]]
    return crystal(["Cu"] * 4 + ["O"] * 2, cu + o, 4.2696 * np.eye(3))


def rutile() -> Structure:
    u = 0.3053
    ti = [[0, 0, 0], [0.5, 0.5, 0.5]]
    o = [[u, u, 0], [1 - u, 1 - u, 0], [0.5 + u, 0.5 - u, 0.5], [0.5 - u, 0.5 + u, 0.5]]
    return crystal(["Ti"] * 2 + ["O"] * 4, ti + o, np.diag([4.594, 4.594, 2.959]))


def test_cu2o_wyckoff_and_multiplicities():
    sym = analyze_symmetry(cu2o())
    assert sym.spacegroup_number == 224 and sym.spacegroup_symbol == "Pn-3m"
    np.testing.assert_array_equal(sym.group, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(sym.multiplicity, [4, 4, 4, 4, 2, 2])
    assert sym.wyckoff == ("4b",) * 4 + ("2a",) * 2


def test_rutile():
    sym = analyze_symmetry(rutile())
    assert sym.spacegroup_number == 136
    assert sym.wyckoff == ("2a",) * 2 + ("4f",) * 4
    np.testing.assert_array_equal(sym.multiplicity, [2, 2, 4, 4, 4, 4])
    assert len(set(sym.group.tolist())) == 2


def test_groups_follow_a_shuffled_input_order():
    base = rutile()
    order = np.array([3, 0, 5, 1, 2, 4])
    shuffled = base.replace(atomic_numbers=base.atomic_numbers[order], positions=base.positions[order])
    sym = analyze_symmetry(shuffled)
    # Group ids are numbered by first appearance: O first (id 0), then Ti (id 1).
    np.testing.assert_array_equal(sym.group, [0, 1, 0, 1, 0, 0])
    assert sym.wyckoff == ("4f", "2a", "4f", "2a", "4f", "4f")


def test_primitive_cell_wyckoff_uses_conventional_multiplicity():
    a = 5.64
    primitive = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    sym = analyze_symmetry(crystal(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], primitive))
    np.testing.assert_array_equal(sym.multiplicity, [1, 1])
    assert sym.wyckoff == ("4a", "4b") and sym.spacegroup_number == 225


def test_supercell_groups():
    base = cu2o()
    shifts = np.array([[0, 0, 0], [1, 0, 0]]) * 4.2696
    positions = np.concatenate([base.positions + s for s in shifts])
    numbers = np.concatenate([base.atomic_numbers] * 2)
    cell = np.diag([2 * 4.2696, 4.2696, 4.2696])
    sym = analyze_symmetry(Structure(numbers, positions, cell=cell, pbc=(True, True, True)))
    assert set(sym.multiplicity[numbers == 29].tolist()) == {8}
    assert set(sym.wyckoff[i] for i in np.flatnonzero(numbers == 29)) == {"4b"}


def test_molecule_is_trivial():
    water = Structure([8, 1, 1], [[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]])
    sym = analyze_symmetry(water)
    np.testing.assert_array_equal(sym.group, [0, 1, 2])
    np.testing.assert_array_equal(sym.multiplicity, [1, 1, 1])
    assert sym.wyckoff == ("", "", "") and sym.spacegroup_symbol == "" and sym.spacegroup_number == 0


def test_spglib_failure_falls_back(monkeypatch):
    import pymatgen.symmetry.analyzer as analyzer

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("spglib failed")

    monkeypatch.setattr(analyzer, "SpacegroupAnalyzer", Broken)
    sym = analyze_symmetry(cu2o())
    np.testing.assert_array_equal(sym.group, np.arange(6))
    np.testing.assert_array_equal(sym.multiplicity, np.ones(6))
    assert sym.spacegroup_number == 0


@pytest.mark.parametrize("symprec", [1e-3, 0.1])
def test_tolerances_are_passed(symprec):
    # A slightly distorted Cu2O keeps Pn-3m only at the loose tolerance.
    base = cu2o()
    positions = np.array(base.positions)
    positions[0] += [0.02, 0.0, 0.0]
    sym = analyze_symmetry(base.replace(positions=positions), symprec=symprec)
    assert (sym.spacegroup_number == 224) == (symprec == 0.1)


def test_trivial_symmetry_is_every_atom_its_own_group():
    from model_core.symmetry import trivial_symmetry

    sym = trivial_symmetry(4)
    np.testing.assert_array_equal(sym.group, np.arange(4))
    np.testing.assert_array_equal(sym.multiplicity, np.ones(4))
    assert sym.wyckoff == ("",) * 4 and sym.representatives(np.array([3, 1]))[0].tolist() == [3, 1]
