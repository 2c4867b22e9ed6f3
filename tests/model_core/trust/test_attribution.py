"""Occlusion attribution and attention relative to uniform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_core.inference import load_model
from model_core.io import read_structure
from model_core.trust.attribution import first_shell, relative_attention, site_attribution
from model_core.types import SiteAttention, Structure

STRUCTURES = Path(__file__).resolve().parents[3] / "resources" / "structures"
MODELS = STRUCTURES.parent / "models"  # this checkout's, by path


def test_atoms_beyond_the_crop_radius_have_zero_attribution(calibrated):
    _, predictor = calibrated
    r_crop = predictor.checkpoint.graph_config.r_crop
    molecule = Structure(np.array([29, 8, 8, 17, 1]),
                         np.array([[0, 0, 0], [1.9, 0, 0], [0, 2.0, 0], [0, 0, 2.3], [r_crop + 3.0, 0, 0]]))
    result = site_attribution(predictor, molecule, 0)
    per_atom = result.per_atom(molecule.n_atoms)
    assert per_atom[4] == 0 and per_atom[0] == 0
    assert np.all(per_atom[1:4] > 0)
    assert result.window_ev == (float(predictor.info.energy_ev[0]), float(predictor.info.energy_ev[-1]))
    window = site_attribution(predictor, molecule, 0, window_ev=(0.0, 10.0))
    assert window.window_ev == (0.0, 10.0)
    with pytest.raises(ValueError, match="no point"):
        site_attribution(predictor, molecule, 0, window_ev=(500.0, 600.0))


def test_relative_attention_and_first_shell_under_uniform_weights():
    distance = np.array([0.0, 1.9, 1.95, 2.5, 3.0])
    attention = SiteAttention(np.arange(5), np.zeros((5, 3)), distance, np.array([0, 0.25, 0.25, 0.25, 0.25]))
    np.testing.assert_allclose(relative_attention(attention), [0, 1, 1, 1, 1])
    shell = first_shell(attention)  # within 1.15 x 1.9 = 2.185 Å
    assert shell.n_atoms == 2 and shell.uniform_share == 0.5 and shell.relative == pytest.approx(1.0)
    skewed = SiteAttention(np.arange(5), np.zeros((5, 3)), distance, np.array([0, 0.05, 0.05, 0.4, 0.5]))
    assert first_shell(skewed).relative == pytest.approx(0.2)


def test_shipped_crystal_model_ranks_the_first_shell_of_cuprite_above_distant_atoms():
    predictor = load_model(str(MODELS / "cu-k-feff"), device="cpu")
    structure = read_structure(STRUCTURES / "Cu2O.cif")
    result = site_attribution(predictor, structure, int(structure.indices_of("Cu")[0]))
    first = result.distance < 1.15 * result.distance.min()
    assert first.sum() == 2  # linear O-Cu-O
    assert result.attribution[first].min() > result.attribution[result.distance > 4.0].max()
