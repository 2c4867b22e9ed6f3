"""First shell, retrieval, round-trip fit, cluster sets and spectrum input of the inverse tools."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.inverse.clusters import ClusterSet, cluster_structure
from model_core.inverse.retrieval import RetrievalLibrary, load_library
from model_core.inverse.roundtrip import fit_roundtrip
from model_core.inverse.shells import FIRST_SHELL_FACTOR, first_shell
from model_core.inverse.spectrum import read_spectrum_on_grid, to_grid
from tests.model_core.inverse.helpers import GRID_EV, TETRAHEDRAL, planted_clusters, planted_spectrum


def test_first_shell_uses_1_15_times_the_nearest_distance():
    pos = np.array([[0, 0, 0], [1.9, 0, 0], [0, 1.95, 0], [0, 0, 2.18], [-2.19, 0, 0], [0, 0, 0]], float)
    shell = first_shell(np.array([29, 8, 8, 8, 8, 0]), pos)  # the last row is padding
    assert FIRST_SHELL_FACTOR == 1.15
    assert shell.coordination_number == 3  # 2.18 < 1.15 * 1.9 = 2.185 < 2.19
    assert shell.distance_a == pytest.approx((1.9 + 1.95 + 2.18) / 3)
    assert dict(shell.neighbours) == {"O": 3}
    empty = first_shell(np.array([29]), np.zeros((1, 3)))
    assert empty.coordination_number == 0 and np.isnan(empty.distance_a)


def test_cluster_set_crop_save_and_structure(tmp_path):
    clusters = planted_clusters(6)
    cropped = clusters.crop(1.95)
    assert list(cropped.n_atoms) == [3, 1, 3, 1, 3, 1]  # 1.9 Å kept, 2.0 Å cut
    with pytest.raises(ValueError, match="larger"):
        clusters.crop(5.0)
    clusters.save(tmp_path / "c.npz", half=True)
    back = ClusterSet.load(tmp_path / "c.npz")
    np.testing.assert_allclose(back.pos, clusters.pos, atol=2e-3)
    assert back.pos.dtype == np.float32 and back.radius_a == 4.5
    structure = back.structure(1)
    assert structure.absorber_index == 0 and structure.cell is None and structure.symbols == ("Cu",) + ("O",) * 4
    assert cluster_structure([29, 8], [[0, 0, 0], [2, 0, 0]]).n_atoms == 2


def test_retrieval_finds_the_spectrum_itself_and_its_cluster(tmp_path):
    clusters = planted_clusters(8)
    clusters.save(tmp_path / "lib.npz")
    library = load_library(tmp_path / "lib.npz")
    rows, distance = library.nearest(planted_spectrum(1), 3)
    assert distance[0] == pytest.approx(0.0, abs=1e-5) and np.all(np.diff(distance) >= 0)
    assert all(int(r) % 2 == 1 for r in rows)  # all CN-4 clusters
    assert library.derivative_weight > 0
    # Max of dmu/dE of the planted spectra sits at the steepest point of the edge.
    assert -1.0 < library.edge_offset_ev < 6.0
    with pytest.raises(ValueError, match="not a retrieval library"):
        load_library(tmp_path / "missing.npz")
    assert isinstance(RetrievalLibrary.from_clusters(clusters), RetrievalLibrary)


def test_roundtrip_fit_recovers_shift_and_scale():
    predicted = planted_spectrum(0)
    target = 1.1 * np.interp(GRID_EV - 1.5, GRID_EV, predicted)
    fit = fit_roundtrip(GRID_EV, target, predicted)
    assert fit.shift_ev == pytest.approx(1.5, abs=1e-9) and fit.scale == pytest.approx(1.1, rel=1e-6)
    assert fit.mse < 1e-12
    far = fit_roundtrip(GRID_EV, np.interp(GRID_EV - 5.0, GRID_EV, predicted), predicted)
    assert far.shift_ev == pytest.approx(3.0) and far.mse > 1e-4  # the shift is bounded to +-3 eV
    fixed = fit_roundtrip(GRID_EV, target, predicted, max_shift_ev=0.0)
    assert fixed.shift_ev == 0.0


def _write_xmu(path, e0=8979.0):
    rel = np.arange(-20.0, 130.0, 0.5)
    mu = np.interp(rel, GRID_EV, planted_spectrum(1))
    rows = "\n".join(f"{e0 + e:10.3f} {e:9.3f} {np.sqrt(abs(e) / 3.81):7.3f} {m:.6E} {m:.6E} 0.0" for e, m in zip(rel, mu))
    path.write_text("# synthetic FEFF\n#  omega    e    k    mu    mu0     chi     @#\n" + rows + "\n")
    return path


def test_feff_xmu_goes_on_the_grid_unchanged(tmp_path):
    spectrum = read_spectrum_on_grid(_write_xmu(tmp_path / "xmu.dat"), GRID_EV)
    np.testing.assert_allclose(spectrum.mu, planted_spectrum(1), atol=2e-3)
    assert spectrum.e0_ev == pytest.approx(8979.0) and "FEFF edge" in spectrum.alignment


def test_measured_columns_are_normalized_and_placed_at_the_offset(tmp_path):
    energy = np.arange(8900.0, 9200.0, 0.5)
    mu = 0.3 + 2.0 * (1 / (1 + np.exp(-(energy - 8990.0) / 1.5)))  # edge step 2 at 8990 eV
    path = tmp_path / "cu.txt"
    path.write_text("# energy mu\n" + "\n".join(f"{e:.2f} {m:.6f}" for e, m in zip(energy, mu)) + "\n")
    spectrum = read_spectrum_on_grid(path, GRID_EV, edge_offset_ev=1.5)
    assert spectrum.e0_ev == pytest.approx(8990.0 - 1.5, abs=0.6)
    assert spectrum.mu[-1] == pytest.approx(1.0, abs=0.05) and abs(spectrum.mu[0]) < 0.05


def test_a_spectrum_too_short_for_the_grid_is_refused():
    with pytest.raises(ValueError, match="needs -10..100 eV"):
        to_grid(np.linspace(-5, 50, 100), np.ones(100), GRID_EV, "short.dat")


def test_tetrahedron_helper_is_a_first_shell_of_four():
    assert first_shell(np.r_[29, [8] * 4], np.vstack([[0, 0, 0], TETRAHEDRAL])).coordination_number == 4
