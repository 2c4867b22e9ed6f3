"""Domain scores: training-like sites score low, foreign structures high."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.inference import load_model
from model_core.io import read_structure
from model_core.trust.domain import DomainIndex, fit_domain_index
from tests.model_core.helpers import cuprite
from tests.model_core.trust.conftest import cuprite_variants
from tests.model_core.trust.structures import cu_hexaaqua, cu_tetrachloride

# This checkout's models by path (the registry may resolve names to another installed copy).
RESOURCES = Path(__file__).resolve().parents[3] / "resources"
MODELS = RESOURCES / "models"


def test_synthetic_index_scales_validation_to_one_and_flags_far_points(tmp_path):
    rng = np.random.default_rng(0)
    train, val = rng.normal(size=(500, 48)), rng.normal(size=(400, 48))
    index = fit_domain_index(train, val, k=5, n_components=16)
    assert np.mean(index.score(val) <= 1) == pytest.approx(0.95, abs=0.01)
    assert np.all(index.score(rng.normal(size=(20, 48)) + 4.0) > 1)
    torch.save({"domain_index": index.to_dict()}, tmp_path / "d.pt")
    back = DomainIndex.from_dict(torch.load(tmp_path / "d.pt", weights_only=True)["domain_index"])
    assert back.train.dtype == np.float16 and back.train.shape == (500, 16)
    np.testing.assert_allclose(back.score(val), index.score(val), rtol=2e-3)


def test_tiny_model_scores_training_like_sites_below_foreign_ones(calibrated):
    _, predictor = calibrated
    near = [predictor.predict(s, [0]).domain_score[0] for s in cuprite_variants(5, seed=7)]
    foreign = predictor.predict(cu_hexaaqua(), [0]).domain_score[0]
    assert max(near) < foreign and foreign > 1


def test_old_checkpoints_have_no_domain_score_and_no_band(tiny_ensemble):
    prediction = load_model(str(tiny_ensemble), device="cpu").predict(cuprite(), [0, 1])
    assert prediction.domain_score is None and prediction.mu_lo is None and prediction.band is None
    assert prediction.mu_spread is not None  # raw spread is still there, uncalibrated


@pytest.mark.parametrize("model,structure,sites", [
    ("fe-k-fdmnes", lambda: read_structure(RESOURCES / "structures" / "Fe2O3.cif"), "Fe"),
    ("cu-k-feff", cu_tetrachloride, "Cu"),
    ("cu-k-feff", cu_hexaaqua, "Cu"),
])
def test_shipped_models_flag_the_other_kind_of_structure(model, structure, sites):
    predictor = load_model(str(MODELS / model), device="cpu")
    if predictor.domain_index is None:
        pytest.skip(f"{model} ships no domain index")
    s = structure()
    score = predictor.predict(s, s.indices_of(sites)[:2]).domain_score
    assert np.all(score > 1), score


def test_shipped_crystal_model_finds_cuprite_in_its_domain():
    predictor = load_model(str(MODELS / "cu-k-feff"), device="cpu")
    if predictor.domain_index is None:
        pytest.skip("cu-k-feff ships no domain index")
    s = read_structure(RESOURCES / "structures" / "Cu2O.cif")
    assert np.all(predictor.predict(s, s.indices_of("Cu")[:1]).domain_score <= 1)
