"""Cluster sets from a FEFF source, and a tiny diffusion training run with resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core.config import EnergyGrid, GraphConfig
from model_core.inverse.checkpoint import load_diffusion
from model_core.inverse.clusters import ClusterSet
from model_core.inverse.shells import first_shell
from tests.trainer.data.synthetic import write_feff_material
from trainer.inverse.data import build_cluster_set
from trainer.inverse.train import load_config, train

GRID = EnergyGrid(-10.0, 100.0, 221)


@pytest.fixture()
def feff_source(tmp_path) -> Path:
    root = tmp_path / "feff"
    write_feff_material(root, "mp-1", sites=(0, 1))
    write_feff_material(root, "mp-2", sites=(2,))
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("mp-1_000\nmp-1_001\n")
    (root / "splits" / "val.txt").write_text("mp-2_002\n")
    return root


def test_clusters_are_absorber_centred_crops_with_the_forward_targets(feff_source, tmp_path):
    from trainer.data.dataset import prepare_dataset

    clusters = build_cluster_set(feff_source, ["mp-2_002", "mp-1_000"], GRID, 3.0, cache_dir=tmp_path / "cache")
    assert list(clusters.ids) == ["mp-2_002", "mp-1_000"] and clusters.radius_a == 3.0
    np.testing.assert_array_equal(clusters.pos[:, 0], 0.0)
    shell = first_shell(clusters.z[1], clusters.pos[1])
    assert shell.coordination_number == 12 and shell.distance_a == pytest.approx(3.61 / np.sqrt(2), abs=1e-4)
    assert dict(shell.neighbours) == {"Cu": 12} and clusters.n_atoms[1] == 13  # fcc: 12 at 2.55 Å, next at 3.61
    forward, _ = prepare_dataset(feff_source, GRID, GraphConfig(), normalization="feff", element="Cu")
    np.testing.assert_allclose(clusters.mu[1], forward.mu[list(forward.ids).index("mp-1_000")])
    assert isinstance(clusters.crop(2.0), ClusterSet) and clusters.crop(2.0).n_atoms.max() == 1


def test_training_writes_checkpoints_library_and_resumes(feff_source, tmp_path):
    config_path = tmp_path / "inverse.yaml"
    config_path.write_text(json.dumps({
        "name": "tiny", "output_dir": str(tmp_path / "runs"),
        "data": {"source": str(feff_source), "cache_dir": str(tmp_path / "cache"), "library_radius_a": 6.0},
        "model": {"radius_a": 3.0, "hidden": 8, "num_layers": 1, "num_rbf": 2, "cond_dim": 8, "timesteps": 20,
                  "sample_steps": 4, "max_neighbors": 12},
        "optim": {"epochs": 1, "batch_size": 2, "time_limit_min": 5}}))
    run = train(load_config(config_path), log=lambda *_: None)
    assert {"best.pt", "last.pt", "library.npz", "log.jsonl"} <= {p.name for p in run.iterdir()}
    library = ClusterSet.load(run / "library.npz")
    assert list(library.ids) == ["mp-1_000", "mp-1_001"] and library.radius_a == 6.0
    model, data = load_diffusion(run / "best.pt")
    assert model.config.species == (29,) and model.config.max_neighbors == 12 and data["metrics"]["epoch"] == 1
    config = load_config(config_path, ["optim.epochs=2"])
    train(config, resume=True, log=lambda *_: None)
    epochs = [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_config_cross_checks(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {library_radius_a: 2.0}\nmodel: {radius_a: 3.0}\n")
    with pytest.raises(ValueError, match="library_radius_a"):
        load_config(path)
    with pytest.raises(ValueError, match="unknown"):
        load_config(path, ["model.no_such_switch=1"])
    with pytest.raises(ValueError, match="select_on"):
        load_config(path, ["data.library_radius_a=6.0", "optim.select_on=best"])


def test_the_shipped_preset_loads():
    config = load_config(Path(__file__).resolve().parents[3] / "configs" / "cu-k-inverse-cpu.yaml")
    assert config.model.radius_a <= config.data.library_radius_a and config.data.forward_model == "cu-k-feff"


@pytest.mark.shared
def test_the_shipped_library_holds_exactly_the_training_split(shared_dir):
    from trainer.data.sources import read_splits

    library = ClusterSet.load(Path(__file__).resolve().parents[3] / "resources" / "models" / "cu-k-inverse"
                              / "library.npz")
    splits = read_splits(shared_dir / "data" / "cu-k-feff.tar.xz")
    assert list(library.ids) == splits["train"] and not set(library.ids) & set(splits["val"])
    assert library.radius_a == 6.0 and library.mu.shape == (3340, 221)
