"""FEFF input generation: the reference preset against the Cu dataset, molecules, L3, presets."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from model_core.types import Structure
from tests.conftest import shared_root
from model_core.feff.inputs import EDGES, PRESETS, build_site_input, get_preset, site_dir_name

# ---------------------------------------------------------------- parsing helpers

_NUMBER = re.compile(r"^[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?$")


def control_cards(text: str) -> list[str]:
    """Card lines between the header and POTENTIALS (whitespace-normalized)."""
    head = text.split("\nPOTENTIALS", 1)[0]
    return [" ".join(line.split()) for line in head.splitlines()
            if line.strip() and not line.lstrip().startswith(("*", "TITLE"))]


def potential_rows(text: str) -> list[tuple[int, int, str, float]]:
    block = text.split("\nPOTENTIALS", 1)[1].split("\nATOMS", 1)[0]
    rows = []
    for line in block.splitlines():
        tokens = line.split()
        if len(tokens) >= 7 and tokens[0].isdigit():
            rows.append((int(tokens[0]), int(tokens[1]), tokens[2], float(tokens[5])))
    return rows


def atom_rows(text: str) -> list[tuple[np.ndarray, int, str, float]]:
    block = text.split("\nATOMS", 1)[1].split("\nEND", 1)[0]
    rows = []
    for line in block.splitlines():
        tokens = line.split()
        if len(tokens) >= 6 and all(_NUMBER.match(t) for t in tokens[:4]):
            rows.append((np.array([float(t) for t in tokens[:3]]), int(tokens[3]), tokens[4], float(tokens[5])))
    return rows


def distances_by_element(rows) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {}
    for _, _, symbol, dist in rows:
        out.setdefault(symbol, []).append(dist)
    return {k: np.sort(v) for k, v in out.items()}


# ---------------------------------------------------------------- dataset comparison

_N_MATERIALS = 6


@pytest.fixture(scope="module")
def dataset_sites(tmp_path_factory) -> list[tuple[Path, int, Path]]:
    """(POSCAR, site, feff.inp) for every site of the first materials in the archive."""
    root = shared_root()
    archive = None if root is None else root / "data" / "cu-k-feff.tar.xz"
    if archive is None or not archive.is_file():
        pytest.skip("../shared/data/cu-k-feff.tar.xz is not present (set XANES_SHARED to run data tests)")
    destination = tmp_path_factory.mktemp("cu-k-feff")
    materials: list[str] = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) < 3:
                continue
            if parts[1] not in materials:
                if len(materials) == _N_MATERIALS:
                    break  # the archive is grouped by material
                materials.append(parts[1])
            if member.isfile() and (parts[-1] == "POSCAR" or parts[-1] == "feff.inp"):
                tar.extract(member, destination, filter="data")
    sites = []
    for material in materials:
        folder = destination / "cu-k-feff" / material
        for inp in sorted(folder.glob("FEFF-XANES/*_Cu/feff.inp")):
            sites.append((folder / "POSCAR", int(inp.parent.name.split("_")[0]), inp))
    assert len(sites) >= _N_MATERIALS
    return sites


@pytest.mark.shared
def test_reference_preset_reproduces_dataset_inputs(dataset_sites):
    from model_core.io import read_structure

    for poscar, site, inp in dataset_sites:
        theirs = inp.read_text()
        structure = read_structure(poscar)
        generated = build_site_input(structure, site, "reference")
        mine = generated.text
        label = f"{poscar.parent.name} site {site}"
        assert inp.parent.name == site_dir_name(site, generated.element), label
        assert control_cards(mine) == control_cards(theirs), label
        assert potential_rows(mine) == potential_rows(theirs), label
        their_atoms, my_atoms = atom_rows(theirs), atom_rows(mine)
        assert len(my_atoms) == len(their_atoms), label
        assert my_atoms[0][1:] == (0, "Cu", 0.0) and np.allclose(my_atoms[0][0], 0.0), label
        mine_d, theirs_d = distances_by_element(my_atoms), distances_by_element(their_atoms)
        assert mine_d.keys() == theirs_d.keys(), label
        for symbol in mine_d:
            np.testing.assert_allclose(mine_d[symbol], theirs_d[symbol], atol=2e-3, err_msg=f"{label} {symbol}")
        # Same ipot for each element (the absorber's element again for the other Cu atoms).
        assert {(s, p) for _, p, s, _ in my_atoms} == {(s, p) for _, p, s, _ in their_atoms}, label
        # Each atom's vector has the listed distance.
        for xyz, _, _, dist in my_atoms:
            assert abs(np.linalg.norm(xyz) - dist) < 1e-4


# ---------------------------------------------------------------- synthetic structures


def copper_fcc(conventional: bool = False) -> Structure:
    a = 3.615
    if conventional:
        frac = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
        return Structure([29] * 4, frac * a, cell=np.eye(3) * a, pbc=(True, True, True), name="Cu-fcc")
    cell = np.array([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    return Structure([29], [[0, 0, 0]], cell=cell, pbc=(True, True, True), name="Cu")


def cuprite() -> Structure:
    a = 4.2685
    frac = np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75],
                     [0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure([29, 29, 29, 29, 8, 8], frac * a, cell=np.eye(3) * a, pbc=(True, True, True), name="Cu2O")


def square_planar_cuo4(extra_far_atom: bool = False) -> Structure:
    """A CuO4 unit (Cu-O 1.95 Å) with optional far-away H beyond every preset radius."""
    d = 1.95
    positions = [[0, 0, 0], [d, 0, 0], [-d, 0, 0], [0, d, 0], [0, -d, 0]]
    numbers = [29, 8, 8, 8, 8]
    if extra_far_atom:
        positions.append([0, 0, 20.0])
        numbers.append(1)
    return Structure(numbers, positions, name="CuO4")


def test_presets_are_ordered_by_cost_and_keep_the_dataset_grid():
    reference, medium, fast = (get_preset(n) for n in ("reference", "medium", "fast"))
    assert fast.expected_seconds_per_site < medium.expected_seconds_per_site < reference.expected_seconds_per_site
    assert fast.radius <= medium.radius <= reference.radius == 9.0
    assert "SCF" not in fast.tags and reference.tags["SCF"] == "7.0 0 100 0.2 3"
    for preset in PRESETS.values():
        assert preset.tags["EGRID"] == reference.tags["EGRID"]
        assert preset.tags["XANES"] == reference.tags["XANES"]
    with pytest.raises(ValueError, match="unknown FEFF preset"):
        get_preset("ultra")
    with pytest.raises(TypeError):
        reference.tags["FMS"] = "1.0 0"  # read-only


def test_molecule_gives_cluster_of_the_molecule_within_radius():
    molecule = square_planar_cuo4(extra_far_atom=True)
    generated = build_site_input(molecule, 0, "fast")
    assert generated.cluster_symbols == ("Cu", "O", "O", "O", "O")  # the H at 20 Å is outside 6 Å
    np.testing.assert_allclose(generated.cluster_distances[1:], 1.95)
    # A single Cu: it is only the absorber (ipot 0); FEFF rejects potentials without atoms.
    assert [(r[0], r[2]) for r in generated.potentials] == [(0, "Cu"), (1, "O")]
    assert "EDGE K" in control_cards(generated.text)
    # Absorber on an O site: Cu becomes an ordinary potential, O appears as ipot 0 and again.
    oxygen = build_site_input(molecule, 1, "fast")
    assert [(r[0], r[2]) for r in oxygen.potentials] == [(0, "O"), (1, "Cu"), (2, "O")]
    assert oxygen.cluster_symbols[0] == "O"


def test_l3_edge_and_other_elements():
    generated = build_site_input(cuprite(), 4, "medium", edge="l3")  # an O absorber, L3 edge
    cards = control_cards(generated.text)
    assert "EDGE L3" in cards and "EDGE K" not in cards
    assert generated.element == "O" and generated.edge == "L3"
    assert generated.potentials[0][:3] == (0, 8, "O")
    assert "SCF 4.5 0 30 0.2 1" in cards and "FMS 7.0 0" in cards
    assert set(EDGES) >= {"K", "L3"}
    with pytest.raises(ValueError, match="unsupported edge"):
        build_site_input(cuprite(), 0, "fast", edge="Q")
    with pytest.raises(ValueError, match="out of range"):
        build_site_input(cuprite(), 6, "fast")


def test_with_changes_overrides_cards_and_radius():
    tiny = get_preset("fast").with_changes(radius=3.0, FMS="2.6 0", COREHOLE=None)
    generated = build_site_input(copper_fcc(), 0, tiny)
    cards = control_cards(generated.text)
    assert "FMS 2.6 0" in cards and not any(c.startswith("COREHOLE") for c in cards)
    assert len(generated.cluster_symbols) == 13  # absorber + 12 nearest neighbours
    # The absorber's element is listed again for the neighbours.
    assert [(r[0], r[2]) for r in generated.potentials] == [(0, "Cu"), (1, "Cu")]


def test_generated_inputs_pass_feff10_validation():
    feff10 = pytest.importorskip("feff10")
    for structure, site, preset, edge in ((cuprite(), 0, "reference", "K"), (square_planar_cuo4(), 0, "fast", "L3"),
                                          (copper_fcc(), 0, "medium", "K")):
        feff10.validate(build_site_input(structure, site, preset, edge).text)
