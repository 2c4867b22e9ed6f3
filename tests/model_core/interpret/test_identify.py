"""Ranking candidates: the true candidate first on a synthetic case; the prediction cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_core.interpret.calibration import Calibration, metal_structure
from model_core.interpret.identify import rank_candidates, scores
from model_core.interpret.library import CACHE_DIR, expand_paths, member_predictors, predict_candidate
from model_core.io.convert import to_ase
from tests.model_core.interpret.conftest import synthetic_measured

STRUCTURES = Path(__file__).resolve().parents[3] / "resources" / "structures"


def test_scores_are_mean_normalized_ranks() -> None:
    s = scores(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.9, 0.1]))
    assert s.tolist() == pytest.approx([0.75, 0.75, 0.0])
    assert scores(np.array([1.0]), np.array([0.2])).tolist() == [1.0]


def test_expand_paths_takes_structure_files_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / CACHE_DIR).mkdir()
    for name in ("a.cif", "sub/POSCAR", "notes.txt", f"{CACHE_DIR}/x.cif", ".hidden.cif"):
        (tmp_path / name).write_text("x")
    assert expand_paths([str(tmp_path), "missing.cif"]) == [str(tmp_path / "a.cif"),
                                                             str(tmp_path / "sub" / "POSCAR"), "missing.cif"]


@pytest.fixture(scope="module")
def candidates(cu_model, tmp_path_factory):
    from ase.io import write

    folder = tmp_path_factory.mktemp("candidates")
    metal = folder / "Cu.cif"
    write(metal, to_ase(metal_structure("Cu")))
    members = member_predictors(cu_model)
    paths = [str(STRUCTURES / "CuO.cif"), str(STRUCTURES / "Cu2O.cif"), str(metal)]
    return [predict_candidate(cu_model, p, "Cu", members=members) for p in paths]


def test_only_the_first_member_carries_the_domain_index(cu_model, candidates) -> None:
    # The index was fitted on the first spectrum member's readout; the shipped ensemble's
    # members differ in width, so another member's readout cannot be scored by it.
    from model_core.interpret.library import member_predictors

    members = member_predictors(cu_model)
    assert members[0].domain_index is not None
    assert all(m.domain_index is None for m in members[1:])
    structure_score = candidates[0].domain_score
    assert structure_score is not None and np.all(np.isfinite(structure_score))


def test_members_reproduce_the_ensemble(cu_model, candidates) -> None:
    from model_core.io import read_structure
    from model_core.sites import select_sites

    from model_core.checkpoint import load_checkpoint, member_roles

    # Exactly the shipped checkpoint's spectrum members (its dedicated E0 members excluded).
    n = len(member_roles(load_checkpoint(cu_model.info.path).model_configs)[0])
    assert cu_model.info.n_members == n and n >= 2
    members = candidates[0].members
    assert members.shape == (n, len(candidates[0].spectrum.energy_ev))
    structure = read_structure(candidates[0].path)
    ensemble = cu_model.predict(structure, select_sites(structure, element="Cu")).average_spectrum()
    assert np.allclose(candidates[0].spectrum.mu, ensemble.mu, atol=1e-5)
    assert candidates[0].spectrum.e0_ev == pytest.approx(ensemble.e0_ev, abs=1e-3)
    assert not np.allclose(members[0], members[1], atol=1e-4)
    # The shipped ensemble weights its members: each candidate carries those weights.
    assert np.allclose(candidates[0].member_weights, cu_model.spectrum_weights)


def test_members_count_in_the_confidence_as_the_ensemble_weights_them() -> None:
    import dataclasses

    from model_core.interpret.identify import _variant_weights
    from model_core.interpret.library import Candidate

    plain = Candidate(path="a", name="a", spectrum=None, members=np.zeros((3, 4)),
                      site_indices=np.zeros(1, int), weights=np.ones(1))
    assert np.array_equal(_variant_weights([plain], 3), np.ones(4))
    weighted = dataclasses.replace(plain, member_weights=np.array([0.5, 0.25, 0.25]))
    assert np.allclose(_variant_weights([weighted], 3), [1.0, 1.5, 0.75, 0.75])


def test_cached_candidates_keep_their_member_weights(tmp_path: Path) -> None:
    from model_core.interpret.library import Candidate, _load_cached, _save_cached
    from model_core.types import Spectrum

    spectrum = Spectrum(np.linspace(-10, 40, 6), np.linspace(0, 1, 6), label="x", energy_reference="edge",
                        e0_ev=8985.0)
    candidate = Candidate(path="x.cif", name="x", spectrum=spectrum, members=np.ones((2, 6)),
                          site_indices=np.array([0]), weights=np.ones(1), member_weights=np.array([0.75, 0.25]))
    _save_cached(tmp_path / "x.npz", candidate)
    loaded = _load_cached(tmp_path / "x.npz", "x.cif", "x")
    assert loaded.cached and np.array_equal(loaded.member_weights, [0.75, 0.25])


def test_true_candidate_ranks_first_with_the_shared_calibration(candidates) -> None:
    calibration = Calibration("Cu", shift_ev=-6.0, source="reference")
    true = candidates[0]  # CuO
    energy, mu = synthetic_measured(true.spectrum.energy_ev, true.spectrum.mu, true.spectrum.e0_ev,
                                    shift_ev=-6.3, gaussian_ev=2.0, lorentzian_ev=1.0, scale=1.05, noise=0.004)
    ranking = rank_candidates(energy, mu, candidates, calibration, element="Cu")
    assert [row.rank for row in ranking] == [1, 2, 3]
    assert ranking[0].candidate.path == true.path
    assert ranking[0].score == 1.0 and ranking[0].confidence > 0.9
    assert sum(row.confidence for row in ranking) == pytest.approx(1.0)
    # The shift stays within the tolerance of the calibration for every candidate.
    assert all(-7.0 - 1e-9 <= row.fit.shift_ev <= -5.0 + 1e-9 for row in ranking)
    assert ranking[0].fit.shift_ev == pytest.approx(-6.3, abs=0.1)
    row = ranking[0].to_dict()
    assert set(row) >= {"rank", "structure", "score", "confidence", "shift_ev", "broaden_fwhm_ev", "scale",
                        "metrics"}


def test_confidence_is_defined_when_candidates_overlap_the_measurement_differently(candidates) -> None:
    import dataclasses

    # Measured over a wider range than the model grid; candidates' predicted E0 differ by
    # eV, so each fit covers a slightly different window of the measurement.
    true = candidates[0]
    energy, mu = synthetic_measured(true.spectrum.energy_ev, true.spectrum.mu, true.spectrum.e0_ev,
                                    shift_ev=-6.0, gaussian_ev=2.0, lorentzian_ev=1.0, scale=1.0, noise=0.004)
    step = float(energy[1] - energy[0])
    wide = np.arange(energy[0] - 40.0, energy[-1] + 40.0, step)
    energy, mu = wide, np.interp(wide, energy, mu)  # flat continuation, as a long scan would have
    moved = [dataclasses.replace(c, spectrum=c.spectrum.replace(e0_ev=c.spectrum.e0_ev + 3.0 * k))
             for k, c in enumerate(candidates)]
    ranking = rank_candidates(energy, mu, moved, Calibration("Cu", shift_ev=-6.0, source="reference"),
                              element="Cu", window=(float(energy[0]), float(energy[-1])))
    assert len({round(float(row.fit.energy_ev[0]), 3) for row in ranking}) > 1  # the fits' windows differ
    confidences = [row.confidence for row in ranking]
    assert all(np.isfinite(confidences)) and sum(confidences) == pytest.approx(1.0)


def test_library_cache_is_written_and_read(cu_model, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    path = library / "Cu2O.cif"
    path.write_bytes((STRUCTURES / "Cu2O.cif").read_bytes())
    first = predict_candidate(cu_model, str(path), "Cu", cache_dir=library / CACHE_DIR)
    assert not first.cached and len(list((library / CACHE_DIR).glob("*.npz"))) == 1
    second = predict_candidate(cu_model, str(path), "Cu", cache_dir=library / CACHE_DIR)
    assert second.cached
    assert np.allclose(second.spectrum.mu, first.spectrum.mu) and second.spectrum.e0_ev == first.spectrum.e0_ev
    # A changed file is a different entry.
    path.write_text(path.read_text() + "\n")
    assert not predict_candidate(cu_model, str(path), "Cu", cache_dir=library / CACHE_DIR).cached
