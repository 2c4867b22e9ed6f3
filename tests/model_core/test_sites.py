"""Absorber-site selection and per-site coordination data."""

from __future__ import annotations


import numpy as np
import pytest

from model_core.sites import coordination_info, select_sites
from model_core.symmetry import analyze_symmetry
from model_core.types import Structure


def cu2o() -> Structure:
    a = 4.2696
    frac = [[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75],
            [0, 0, 0], [0.5, 0.5, 0.5]]
    return Structure([29] * 4 + [8] * 2, np.array(frac) * a, cell=a * np.eye(3),
                     pbc=(True, True, True), source="/data/Cu2O.cif", name="Cu2O")


def water(absorber=None) -> Structure:
    return Structure([8, 1, 1], [[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]],
                     source="water.xyz", absorber_index=absorber)


def test_element_reduced_to_representatives_with_weights():
    s = cu2o()
    selection = select_sites(s, element="Cu")
    np.testing.assert_array_equal(selection.indices, [0])
    np.testing.assert_array_equal(selection.weights, [4.0])
    same = select_sites(s, element=29, symmetry=analyze_symmetry(s))
    np.testing.assert_array_equal(same.indices, [0])


def test_weighted_mean_equals_mean_over_all_atoms():
    # Two inequivalent Ti-like groups of different sizes: rutile O (4f) and Ti (2a) as one element.
    u = 0.3053
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [u, u, 0], [1 - u, 1 - u, 0], [0.5 + u, 0.5 - u, 0.5],
            [0.5 - u, 0.5 + u, 0.5]]
    cell = np.diag([4.594, 4.594, 2.959])
    s = Structure([8] * 6, np.array(frac) @ cell, cell=cell, pbc=(True, True, True))
    sym = analyze_symmetry(s)
    selection = select_sites(s, element="O", symmetry=sym)
    assert selection.weights.sum() == 6 and sorted(selection.weights.tolist()) == [2.0, 4.0]
    per_atom_value = sym.group.astype(float) * 3.0 + 1.0  # any function constant on groups
    weighted = np.average(per_atom_value[selection.indices], weights=selection.weights)
    assert weighted == pytest.approx(per_atom_value.mean())


def test_element_without_reduction():
    selection = select_sites(cu2o(), element="Cu", reduce_equivalent=False)
    np.testing.assert_array_equal(selection.indices, [0, 1, 2, 3])
    np.testing.assert_array_equal(selection.weights, [1, 1, 1, 1])


def test_molecule_element_keeps_every_atom():
    selection = select_sites(water(), element="H")
    np.testing.assert_array_equal(selection.indices, [1, 2])
    np.testing.assert_array_equal(selection.weights, [1, 1])


def test_explicit_sites():
    selection = select_sites(cu2o(), sites=[5, 1, 5])
    np.testing.assert_array_equal(selection.indices, [5, 1])
    np.testing.assert_array_equal(selection.weights, [1, 1])


@pytest.mark.parametrize("bad", [12, -1])
def test_site_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"site {bad} out of range \(structure has 6 atoms\)"):
        select_sites(cu2o(), sites=[0, bad])


def test_absorber_default_and_missing():
    selection = select_sites(water(absorber=0))
    np.testing.assert_array_equal(selection.indices, [0])
    with pytest.raises(ValueError, match="designates no absorber"):
        select_sites(water())


def test_missing_element_names_element_and_file():
    with pytest.raises(ValueError, match=r"no Fe atoms in /data/Cu2O.cif"):
        select_sites(cu2o(), element="Fe")
    with pytest.raises(ValueError):
        select_sites(cu2o(), element="Xx")


def test_element_and_sites_together_is_an_error():
    with pytest.raises(ValueError, match="not both"):
        select_sites(cu2o(), element="Cu", sites=[0])


def test_coordination_rocksalt_periodic_images():
    a = 5.64
    primitive = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    s = Structure([11, 17], [[0, 0, 0], [a / 2, a / 2, a / 2]], cell=primitive, pbc=(True, True, True))
    cn, nn = coordination_info(s)
    np.testing.assert_array_equal(cn, [6, 6])
    np.testing.assert_allclose(nn, [a / 2, a / 2])


def test_coordination_molecule_and_subset():
    cn, nn = coordination_info(water(), indices=[2, 0])
    np.testing.assert_array_equal(cn, [1, 2])
    np.testing.assert_allclose(nn[0], np.hypot(0.757, 0.584), rtol=1e-6)


def test_isolated_atom_has_nan_distance():
    s = Structure([26, 8], [[0, 0, 0], [50, 0, 0]])
    cn, nn = coordination_info(s)
    np.testing.assert_array_equal(cn, [0, 0])
    assert np.isnan(nn).all()


def test_coordination_is_fast_for_5000_atoms():
    # A 5,324-atom NaCl-like supercell (11 x 11 x 11 conventional cells).
    a = 5.64
    basis = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    grid = np.stack(np.meshgrid(*[np.arange(11)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    na = (grid + basis).reshape(-1, 3)
    frac = np.concatenate([na, na + [0.5, 0, 0]]) / 11
    cell = 11 * a * np.eye(3)
    s = Structure([11] * len(na) + [17] * len(na), frac @ cell, cell=cell, pbc=(True, True, True))
    assert s.n_atoms > 5000
    cn, nn = coordination_info(s)  # how fast: benchmarks/graph_build.py
    assert (cn == 6).all()
    np.testing.assert_allclose(nn, a / 2)


@pytest.mark.parametrize("name, expected", [("NaCl", {"Na": 6, "Cl": 6}), ("Cu2O", {"Cu": 2, "O": 4}),
                                            ("CuO", {"Cu": 4, "O": 4}), ("Fe2O3", {"Fe": 6, "O": 4})])
def test_first_shell_coordination_of_shipped_examples(name, expected):
    from importlib import resources

    from model_core.io import read_structure

    path = resources.files("xanes_resources") / "structures" / f"{name}.cif"
    structure = read_structure(str(path))
    cn, _ = coordination_info(structure)
    assert {el: int(cn[structure.indices_of(el)].min()) for el in expected} == expected
    assert {el: int(cn[structure.indices_of(el)].max()) for el in expected} == expected
