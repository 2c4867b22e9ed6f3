"""Structure-to-spectrum invariance in float64: the whole chain (graph + model) must not
depend on orientation, handedness, origin, atom order, cell choice or periodic image."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from model_core.batching import collate
from model_core.graph import build_graphs
from model_core.nn.model import XANE3
from model_core.types import Structure

from tests.model_core.helpers import TINY_GRAPH, TINY_MODEL

TOL = 1e-6


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return XANE3(TINY_MODEL).double().eval()


def spectra(model, structure, sites):
    graphs = build_graphs(structure, sites, TINY_GRAPH)
    with torch.no_grad():
        return model(collate(graphs, dtype=torch.float64))["mu"].numpy()


def distorted_crystal() -> Structure:
    """A low-symmetry 3-element crystal so that accidental symmetry cannot hide errors."""
    rng = np.random.default_rng(3)
    cell = np.array([[4.1, 0.2, 0.0], [0.3, 3.9, 0.1], [0.2, -0.1, 4.4]])
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.1], [0.5, 0.0, 0.5], [0.0, 0.5, 0.55], [0.25, 0.7, 0.3]])
    frac = frac + rng.normal(scale=0.02, size=frac.shape)
    return Structure(atomic_numbers=[29, 8, 8, 26, 29], positions=frac @ cell, cell=cell,
                     pbc=(True, True, True))


def test_rotation_reflection_translation(model):
    crystal = distorted_crystal()
    reference = spectra(model, crystal, [0, 4])
    for seed in range(3):
        rot = Rotation.random(random_state=seed).as_matrix()
        for matrix in (rot, -rot):  # -rot is an improper rotation (includes inversion)
            shift = np.array([1.3, -2.1, 0.7]) * seed
            moved = crystal.replace(positions=crystal.positions @ matrix.T + shift, cell=crystal.cell @ matrix.T)
            np.testing.assert_allclose(spectra(model, moved, [0, 4]), reference, atol=TOL)


def test_atom_reordering(model):
    crystal = distorted_crystal()
    order = np.array([3, 4, 1, 0, 2])
    shuffled = crystal.replace(atomic_numbers=crystal.atomic_numbers[order], positions=crystal.positions[order])
    new_index = {int(old): new for new, old in enumerate(order)}
    np.testing.assert_allclose(spectra(model, shuffled, [new_index[0], new_index[4]]),
                               spectra(model, crystal, [0, 4]), atol=TOL)


def test_supercell_and_periodic_image(model):
    crystal = distorted_crystal()
    reference = spectra(model, crystal, [0])
    # 2x1x2 supercell: atom 0 and its copies are all the same physical site.
    shifts = np.array([[i, 0, k] for i in range(2) for k in range(2)])
    positions = np.concatenate([crystal.positions + s @ crystal.cell for s in shifts])
    numbers = np.tile(crystal.atomic_numbers, len(shifts))
    supercell = Structure(numbers, positions, np.diag([2, 1, 2]) @ crystal.cell, (True, True, True))
    copies = [k * crystal.n_atoms for k in range(len(shifts))]
    for out in spectra(model, supercell, copies):
        np.testing.assert_allclose(out, reference[0], atol=TOL)
    # Wrapping an atom into another periodic image changes nothing.
    moved = crystal.positions.copy()
    moved[2] += np.array([1, -1, 2]) @ crystal.cell
    moved[0] -= np.array([0, 1, 0]) @ crystal.cell
    np.testing.assert_allclose(spectra(model, crystal.replace(positions=moved), [0]), reference, atol=TOL)


def test_skewed_cell_choice(model):
    crystal = distorted_crystal()
    a, b, c = crystal.cell
    skewed = crystal.replace(cell=np.array([a, a + b, a + b + c]))
    np.testing.assert_allclose(spectra(model, skewed, [0, 4]), spectra(model, crystal, [0, 4]), atol=TOL)


def test_molecule_rotation(model):
    rng = np.random.default_rng(0)
    positions = rng.normal(scale=1.5, size=(9, 3))
    positions[0] = 0.0
    molecule = Structure([26, 7, 7, 8, 6, 6, 1, 1, 17], positions)
    rot = Rotation.random(random_state=7).as_matrix()
    turned = molecule.replace(positions=-(positions @ rot.T) + 4.0)
    np.testing.assert_allclose(spectra(model, turned, [0]), spectra(model, molecule, [0]), atol=TOL)
