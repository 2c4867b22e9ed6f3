"""Tests of absorber-centred graph construction (model_core.graph).

The invariance tests compare graphs built from physically equivalent inputs:
rotations, translations, atom permutations, other unit cells of the same
crystal, other periodic images of the same atom. Completeness of the periodic
search is checked against ASE's independent neighbour list.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from scipy.spatial.transform import Rotation

from model_core.config import GraphConfig
from model_core.graph import AbsorberGraph, build_graph, build_graphs, graph_summary
from model_core.types import SiteSelection, Structure

TOL = 1e-9
CONFIG = GraphConfig(r_crop=6.0, r_max=5.0)


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------

def structure_from_ase(atoms: Atoms) -> Structure:
    """A Structure from ASE Atoms (own helper so these tests depend only on graph.py)."""
    pbc = tuple(bool(p) for p in atoms.pbc)
    cell = np.array(atoms.cell[:], dtype=float) if any(pbc) else None
    return Structure(atoms.numbers, atoms.positions, cell=cell, pbc=pbc)


def triclinic_crystal(seed: int = 0) -> Structure:
    """A low-symmetry crystal with random positions, so no two nodes are equidistant."""
    rng = np.random.default_rng(seed)
    cell = np.array([[4.1, 0.0, 0.0], [0.9, 3.7, 0.0], [-0.6, 1.1, 4.4]])
    frac = rng.random((5, 3))
    numbers = np.array([26, 8, 8, 8, 14])
    return Structure(numbers, frac @ cell, cell=cell, pbc=(True, True, True))


def molecule(seed: int = 1) -> Structure:
    """A random 'cluster' of 30 atoms in a 9 Å box (no cell)."""
    rng = np.random.default_rng(seed)
    positions = rng.random((30, 3)) * 9.0
    numbers = rng.choice([1, 6, 7, 8, 26], size=30)
    return Structure(numbers, positions)


def rotated(structure: Structure, rotation: np.ndarray, translation: np.ndarray) -> Structure:
    """Rotate (and translate) positions and cell together."""
    cell = None if structure.cell is None else structure.cell @ rotation.T
    return structure.replace(positions=structure.positions @ rotation.T + translation, cell=cell)


def distances(graph: AbsorberGraph) -> np.ndarray:
    return np.linalg.norm(graph.positions, axis=1)


def edge_lengths(graph: AbsorberGraph) -> np.ndarray:
    return np.sort(np.linalg.norm(graph.edge_vectors, axis=1))


def assert_same_graph(a: AbsorberGraph, b: AbsorberGraph, *, positions: bool = True,
                      tol: float = TOL) -> None:
    """Node-by-node equality of two graphs (atom_index/image may differ)."""
    assert a.n_nodes == b.n_nodes
    assert a.n_edges == b.n_edges
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    np.testing.assert_allclose(distances(a), distances(b), atol=tol, rtol=0)
    np.testing.assert_allclose(edge_lengths(a), edge_lengths(b), atol=tol, rtol=0)
    np.testing.assert_array_equal(a.absorber_mask, b.absorber_mask)
    if positions:
        np.testing.assert_allclose(a.positions, b.positions, atol=tol, rtol=0)
        np.testing.assert_array_equal(a.edge_index, b.edge_index)
        np.testing.assert_allclose(a.edge_vectors, b.edge_vectors, atol=tol, rtol=0)


def assert_same_up_to_order(a: AbsorberGraph, b: AbsorberGraph, tol: float = TOL) -> None:
    """Same multiset of (Z, distance) nodes and of edge lengths."""
    assert a.n_nodes == b.n_nodes
    assert a.n_edges == b.n_edges
    for z in np.unique(a.atomic_numbers):
        np.testing.assert_allclose(np.sort(distances(a)[a.atomic_numbers == z]),
                                   np.sort(distances(b)[b.atomic_numbers == z]), atol=tol, rtol=0)
    np.testing.assert_allclose(edge_lengths(a), edge_lengths(b), atol=tol, rtol=0)


def node_keys(graph: AbsorberGraph) -> list[tuple[int, int, int, int]]:
    return [(int(i), *map(int, s)) for i, s in zip(graph.atom_index, graph.image)]


def ase_reference(structure: Structure, site: int, cutoff: float) -> set[tuple[int, int, int, int]]:
    """(atom, image) of every neighbour of ``site`` from ASE's neighbour list."""
    atoms = Atoms(numbers=structure.atomic_numbers, positions=structure.positions,
                  cell=structure.cell, pbc=structure.pbc)
    i, j, shift = neighbor_list("ijS", atoms, cutoff)
    return {(int(jj), *map(int, s)) for ii, jj, s in zip(i, j, shift) if ii == site}


# ---------------------------------------------------------------------------
# Basic contract
# ---------------------------------------------------------------------------

def test_contract_fields_dtypes_and_shapes():
    structure = triclinic_crystal()
    graph = build_graph(structure, 0, CONFIG)
    n, e = graph.n_nodes, graph.n_edges
    assert graph.atomic_numbers.shape == (n,) and graph.atomic_numbers.dtype == np.int64
    assert graph.positions.shape == (n, 3) and graph.positions.dtype == np.float64
    assert graph.edge_index.shape == (2, e) and graph.edge_index.dtype == np.int64
    assert graph.edge_vectors.shape == (e, 3) and graph.edge_vectors.dtype == np.float64
    assert graph.absorber_mask.dtype == bool and graph.absorber_mask.tolist() == [True] + [False] * (n - 1)
    assert graph.atom_index.dtype == np.int64 and graph.image.shape == (n, 3)
    assert graph.image.dtype == np.int64
    assert graph.site_index == 0 and graph.atom_index[0] == 0
    np.testing.assert_array_equal(graph.positions[0], 0.0)
    np.testing.assert_array_equal(graph.image[0], 0)
    # Positions are the true displacements: input position + image @ cell - absorber.
    expected = (structure.positions[graph.atom_index] + graph.image @ structure.cell
                - structure.positions[0])
    np.testing.assert_allclose(graph.positions, expected, atol=TOL)
    np.testing.assert_array_equal(graph.atomic_numbers, structure.atomic_numbers[graph.atom_index])


def test_nodes_within_crop_and_sorted():
    graph = build_graph(triclinic_crystal(), 2, CONFIG)
    d = distances(graph)
    assert np.all(d[1:] > 0)
    assert np.all(d < CONFIG.r_crop + 1e-8)
    assert np.all(np.diff(np.round(d[1:], 6)) >= 0)


@pytest.mark.parametrize("make", [triclinic_crystal, molecule])
def test_edges_complete_symmetric_without_self_loops(make):
    graph = build_graph(make(), 0, CONFIG)
    src, dst = graph.edge_index
    assert np.all(src != dst)
    lengths = np.linalg.norm(graph.edge_vectors, axis=1)
    assert np.all(lengths < CONFIG.r_max + 1e-8)
    np.testing.assert_allclose(graph.edge_vectors, graph.positions[dst] - graph.positions[src], atol=0)
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert len(pairs) == graph.n_edges  # no duplicates
    assert pairs == {(j, i) for i, j in pairs}
    # Complete: brute force over all pairs.
    diff = graph.positions[None, :, :] - graph.positions[:, None, :]
    full = np.linalg.norm(diff, axis=-1) < CONFIG.r_max
    np.fill_diagonal(full, False)
    assert pairs == set(zip(*map(lambda a: a.tolist(), np.nonzero(full))))


def test_edge_index_sorted_by_source_then_target():
    graph = build_graph(triclinic_crystal(), 1, CONFIG)
    src, dst = graph.edge_index
    order = np.lexsort((dst, src))
    np.testing.assert_array_equal(order, np.arange(graph.n_edges))


def test_site_out_of_range_raises_index_error():
    structure = triclinic_crystal()
    with pytest.raises(IndexError, match="out of range"):
        build_graph(structure, structure.n_atoms, CONFIG)
    with pytest.raises(IndexError, match="out of range"):
        build_graph(structure, -1, CONFIG)
    with pytest.raises(IndexError):
        build_graphs(structure, [0, 99], CONFIG)


def test_invalid_arguments():
    structure = molecule()
    with pytest.raises(TypeError):
        build_graph(structure, 1.5, CONFIG)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_graph(structure, 0, GraphConfig(r_crop=0.0))
    with pytest.raises(ValueError):
        build_graph(structure, 0, GraphConfig(max_neighbors=-1))


def test_build_graphs_matches_build_graph_and_accepts_selection():
    structure = triclinic_crystal()
    sites = [4, 0, 2, 0]
    graphs = build_graphs(structure, sites, CONFIG)
    assert [g.site_index for g in graphs] == sites
    for site, graph in zip(sites, graphs):
        single = build_graph(structure, site, CONFIG)
        assert_same_graph(graph, single, tol=0.0)
        np.testing.assert_array_equal(graph.atom_index, single.atom_index)
        np.testing.assert_array_equal(graph.image, single.image)
    from_selection = build_graphs(structure, SiteSelection(np.array([4, 0])), CONFIG)
    assert [g.site_index for g in from_selection] == [4, 0]
    assert build_graphs(structure, [], CONFIG) == []


def test_single_atom_and_isolated_absorber():
    lone = Structure([26], [[0.0, 0.0, 0.0]])
    graph = build_graph(lone, 0, CONFIG)
    assert graph.n_nodes == 1 and graph.n_edges == 0
    far = Structure([26, 8], [[0.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    graph = build_graph(far, 0, CONFIG)
    assert graph.n_nodes == 1 and graph.edge_index.shape == (2, 0)
    assert graph.edge_vectors.shape == (0, 3)


def test_max_neighbors_keeps_nearest():
    structure = triclinic_crystal()
    full = build_graph(structure, 0, CONFIG)
    limited = build_graph(structure, 0, GraphConfig(r_crop=6.0, r_max=5.0, max_neighbors=10))
    assert limited.n_nodes == 11
    np.testing.assert_allclose(limited.positions, full.positions[:11], atol=0)
    np.testing.assert_array_equal(limited.atom_index, full.atom_index[:11])
    assert np.all(np.linalg.norm(limited.edge_vectors, axis=1) < 5.0 + 1e-8)


def test_graph_summary():
    graph = build_graph(triclinic_crystal(), 0, CONFIG)
    summary = graph_summary(graph)
    assert summary["n_nodes"] == graph.n_nodes
    assert summary["n_edges"] == graph.n_edges
    assert summary["mean_degree"] == pytest.approx(graph.n_edges / graph.n_nodes)
    assert summary["site_index"] == 0
    assert summary["max_distance"] <= CONFIG.r_crop + 1e-8


# ---------------------------------------------------------------------------
# Completeness of the periodic search (vs ASE)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("site", [0, 1, 4])
def test_crystal_matches_ase_neighbor_list(site):
    structure = triclinic_crystal()
    graph = build_graph(structure, site, CONFIG)
    expected = ase_reference(structure, site, CONFIG.r_crop)
    assert set(node_keys(graph)[1:]) == expected
    assert len(node_keys(graph)) == len(set(node_keys(graph)))


def test_tiny_cell_includes_absorber_images():
    # bcc Fe primitive cell: |a| = 2.49 Å, so r_crop = 6 spans ~2.5 cell lengths.
    structure = structure_from_ase(bulk("Fe", "bcc", a=2.87))
    graph = build_graph(structure, 0, CONFIG)
    assert set(node_keys(graph)[1:]) == ase_reference(structure, 0, CONFIG.r_crop)
    # All nodes but the absorber are its own periodic images at lattice distances.
    assert np.all(graph.atom_index == 0)
    assert np.all(np.any(graph.image[1:] != 0, axis=1))
    assert graph.n_nodes - 1 == len(set(node_keys(graph))) - 1
    d = distances(graph)
    assert d[1] == pytest.approx(2.87 * np.sqrt(3) / 2, abs=TOL)  # 8 nearest neighbours
    assert np.sum(np.isclose(d, d[1], atol=1e-6)) == 8


def test_slab_has_no_images_along_non_periodic_axis():
    rng = np.random.default_rng(3)
    cell = np.array([[5.0, 0.0, 0.0], [1.5, 4.6, 0.0], [0.0, 0.0, 12.0]])
    # Atoms near both z faces of the cell: with (wrong) z periodicity they would be ~1 Å apart.
    frac = np.column_stack([rng.random(6), rng.random(6), [0.02, 0.05, 0.1, 0.9, 0.95, 0.98]])
    structure = Structure([26, 8, 8, 26, 8, 8], frac @ cell, cell=cell, pbc=(True, True, False))
    for site in range(structure.n_atoms):
        graph = build_graph(structure, site, CONFIG)
        assert np.all(graph.image[:, 2] == 0)
        assert set(node_keys(graph)[1:]) == ase_reference(structure, site, CONFIG.r_crop)
        # Nothing closer than the real z separation across the vacuum.
        z_abs = structure.positions[graph.atom_index, 2]
        np.testing.assert_allclose(graph.positions[:, 2], z_abs - z_abs[0], atol=TOL)


def test_molecule_without_cell_equals_non_periodic_cell():
    base = molecule()
    boxed = base.replace(cell=np.eye(3) * 3.0, pbc=(False, False, False))
    for site in (0, 7):
        a, b = build_graph(base, site, CONFIG), build_graph(boxed, site, CONFIG)
        assert_same_graph(a, b, tol=0.0)
        assert np.all(a.image == 0) and np.all(b.image == 0)
        np.testing.assert_array_equal(a.atom_index, b.atom_index)


def test_molecule_nodes_match_brute_force():
    structure = molecule()
    graph = build_graph(structure, 3, CONFIG)
    d = np.linalg.norm(structure.positions - structure.positions[3], axis=1)
    expected = set(np.flatnonzero(d < CONFIG.r_crop).tolist()) - {3}
    assert set(graph.atom_index[1:].tolist()) == expected


# ---------------------------------------------------------------------------
# Invariances
# ---------------------------------------------------------------------------

ROTATION = Rotation.from_euler("zyx", [37.0, -71.0, 123.0], degrees=True).as_matrix()
SHIFT = np.array([13.1, -7.7, 2.9])


@pytest.mark.parametrize("make", [molecule, triclinic_crystal])
def test_rotation_and_translation(make):
    structure = make()
    moved = rotated(structure, ROTATION, SHIFT)
    for site in (0, 3):
        a, b = build_graph(structure, site, CONFIG), build_graph(moved, site, CONFIG)
        assert_same_up_to_order(a, b)
        # Match nodes through (atom, image), which a rigid motion leaves unchanged,
        # then every position and edge vector must be the rotated one.
        index_b = {key: k for k, key in enumerate(node_keys(b))}
        perm = np.array([index_b[key] for key in node_keys(a)])
        np.testing.assert_allclose(b.positions[perm], a.positions @ ROTATION.T, atol=TOL)
        edges_b = {(int(s), int(t)): k for k, (s, t) in enumerate(b.edge_index.T)}
        for k, (s, t) in enumerate(a.edge_index.T):
            kb = edges_b[(int(perm[s]), int(perm[t]))]
            np.testing.assert_allclose(b.edge_vectors[kb], ROTATION @ a.edge_vectors[k], atol=TOL)


@pytest.mark.parametrize("make", [molecule, triclinic_crystal])
def test_atom_reordering(make):
    structure = make()
    perm = np.random.default_rng(5).permutation(structure.n_atoms)
    shuffled = structure.replace(atomic_numbers=structure.atomic_numbers[perm],
                                 positions=structure.positions[perm])
    inverse = np.argsort(perm)
    for site in range(structure.n_atoms if structure.n_atoms < 10 else 10):
        a = build_graph(structure, site, CONFIG)
        b = build_graph(shuffled, int(inverse[site]), CONFIG)
        assert_same_graph(a, b)
        np.testing.assert_array_equal(perm[b.atom_index], a.atom_index)
        np.testing.assert_array_equal(a.image, b.image)


def test_integer_shift_of_atoms_gives_same_graph():
    structure = triclinic_crystal()
    moves = np.array([[2, -1, 3], [0, 0, 0], [-4, 1, 0], [1, 1, 1], [0, -2, 5]])
    wrapped = structure.replace(positions=structure.positions + moves @ structure.cell)
    for site in range(structure.n_atoms):
        a, b = build_graph(structure, site, CONFIG), build_graph(wrapped, site, CONFIG)
        assert_same_graph(a, b)
        np.testing.assert_array_equal(a.atom_index, b.atom_index)
        # The images absorb the moves: same true displacement.
        np.testing.assert_array_equal(b.image, a.image - moves[b.atom_index] + moves[site])


def test_skewed_cell_gives_same_graph():
    structure = triclinic_crystal()
    a_, b_, c_ = structure.cell
    skewed_cell = np.array([a_, a_ + b_, a_ + b_ + c_ + 2 * b_])  # unimodular, very unreduced
    assert abs(np.linalg.det(skewed_cell)) == pytest.approx(abs(np.linalg.det(structure.cell)))
    skewed = structure.replace(cell=skewed_cell)
    for site in range(structure.n_atoms):
        assert_same_graph(build_graph(structure, site, CONFIG), build_graph(skewed, site, CONFIG))


def test_nacl_primitive_supercell_and_conventional_cells_agree():
    primitive = bulk("NaCl", "rocksalt", a=5.64)
    cells = {
        "primitive": primitive,
        "supercell": primitive.repeat((2, 2, 2)),
        "conventional": bulk("NaCl", "rocksalt", a=5.64, cubic=True),
    }
    graphs = {}
    for name, atoms in cells.items():
        structure = structure_from_ase(atoms)
        # The Na atom at the origin (all three ASE cells share the Cartesian frame).
        na = [i for i in structure.indices_of("Na") if np.allclose(structure.positions[i], 0.0)]
        assert len(na) == 1
        graphs[name] = build_graph(structure, int(na[0]), CONFIG)
    ref = graphs["primitive"]
    # Rocksalt shells: 6 Cl at a/2, 12 Na at a/sqrt(2), 8 Cl at a*sqrt(3)/2, ...
    d = distances(ref)
    assert np.sum(np.isclose(d, 2.82, atol=1e-9)) == 6
    assert np.all(ref.atomic_numbers[1:7] == 17)
    for name in ("supercell", "conventional"):
        assert_same_graph(ref, graphs[name])


def test_equivalent_sites_of_supercell_agree():
    # Every Na in a supercell is equivalent by pure translation: identical graphs.
    structure = structure_from_ase(bulk("NaCl", "rocksalt", a=5.64).repeat((2, 2, 2)))
    na = structure.indices_of("Na")
    graphs = build_graphs(structure, na, CONFIG)
    for graph in graphs[1:]:
        assert_same_graph(graphs[0], graph)
