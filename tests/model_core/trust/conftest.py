"""A tiny two-member ensemble calibrated on synthetic cuprite-like data."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.checkpoint import add_entries, load_checkpoint, make_ensemble, save_checkpoint
from model_core.graph import build_graphs
from model_core.inference import load_model
from model_core.trust.calibration import fit_calibration
from model_core.trust.domain import fit_domain_index
from tests.model_core.helpers import cuprite, tiny_checkpoint


def cuprite_variants(n: int, seed: int) -> list:
    """Cu2O with the lattice scaled by ±5% and the atoms rattled by 0.05 Å."""
    rng = np.random.default_rng(seed)
    base = cuprite()
    out = []
    for _ in range(n):
        scale = rng.uniform(0.95, 1.05)
        positions = base.positions * scale + rng.normal(0, 0.05, base.positions.shape)
        out.append(base.replace(positions=positions, cell=base.cell * scale))
    return out


@pytest.fixture(scope="session")
def tiny_ensemble(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-ensemble")
    members = [load_checkpoint(tiny_checkpoint(folder / f"m{k}.pt", seed=k)) for k in range(2)]
    return save_checkpoint(make_ensemble(members), folder / "ensemble.pt")


@pytest.fixture(scope="session")
def calibrated(tiny_ensemble):
    """(path of the calibrated tiny ensemble, its predictor)."""
    predictor = load_model(str(tiny_ensemble), device="cpu")
    config = predictor.checkpoint.graph_config

    def outputs(structures):
        graphs = [build_graphs(s, [0], config)[0] for s in structures]
        return predictor.graph_outputs(graphs)

    train, val = outputs(cuprite_variants(40, seed=0)), outputs(cuprite_variants(60, seed=1))
    rng = np.random.default_rng(0)
    true = val.mu + 3 * val.spread * rng.standard_normal(val.mu.shape)
    entries = {"spread_calibration": fit_calibration(true, val.mu, val.spread).to_dict(),
               "domain_index": fit_domain_index(train.embedding, val.embedding, k=3).to_dict()}
    path = add_entries(tiny_ensemble, tiny_ensemble.with_name("calibrated.pt"), entries)
    return path, load_model(str(path), device="cpu")
