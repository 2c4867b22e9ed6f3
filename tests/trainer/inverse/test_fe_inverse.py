"""Fe (FDMNES complexes): the inverse data follow the forward trainer's grouped carve-out; the
shipped Fe preset and library are consistent with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core.config import EnergyGrid
from model_core.inverse.clusters import ClusterSet
from tests.trainer.data.synthetic import write_xanesnet_complex
from trainer.inverse.data import build_cluster_set, carve_out_cluster_sets, source_splits
from trainer.inverse.train import load_config

ROOT = Path(__file__).resolve().parents[3]
FE_GRID = EnergyGrid(-15.0, 60.0, 226)  # the fe-k-fdmnes grid
FE_BUNDLE = ROOT / "resources" / "models" / "fe-k-inverse"
# Screened out by the forward preparation (runaway tail): the carve-out is over the other 4,074.
DROPPED = {"BEDLIG_C48H78FeN8O4", "JOWYEC_C20H36B2FeO12", "LILYIQ_C27H19BrFeN5O2(1+)", "QEXZUP_C30H58FeO12",
           "WAPNEI_C54H50B2FeN18"}


@pytest.fixture()
def fdmnes_source(tmp_path) -> Path:
    root = tmp_path / "fe"
    for k in range(12):
        write_xanesnet_complex(root, f"CPLX{k:02d}_C2FeO4", raw=False)
    return root


def test_the_carve_out_is_the_forward_trainers(fdmnes_source, tmp_path):
    from trainer.config import DataConfig, TrainConfig
    from trainer.data.dataset import prepare_dataset
    from trainer.splits import split_indices

    train, val = carve_out_cluster_sets(fdmnes_source, FE_GRID, 6.0, val_fraction=0.25, split_seed=0,
                                        element="Fe", cache_dir=tmp_path / "cache")
    forward, _ = prepare_dataset(fdmnes_source, FE_GRID, normalization="edge_step", element="Fe", progress=False)
    forward_config = TrainConfig(data=DataConfig(source=str(fdmnes_source), element="Fe", val_fraction=0.25,
                                                 split_seed=0))
    train_rows, val_rows = split_indices(forward_config, forward.ids, forward.group_ids)
    assert list(train.ids) == list(forward.ids[train_rows]) and list(val.ids) == list(forward.ids[val_rows])
    assert len(val) == 3 and len(train) == 9
    np.testing.assert_allclose(val.mu, forward.mu[val_rows], atol=1e-6)
    assert (train.z[:, 0] == 26).all() and train.n_atoms.max() == 7 and train.radius_a == 6.0
    np.testing.assert_array_equal(train.pos[:, 0], 0.0)
    # Another seed, another carve-out.
    _train, other = carve_out_cluster_sets(fdmnes_source, FE_GRID, 6.0, val_fraction=0.25, split_seed=1,
                                           element="Fe", cache_dir=tmp_path / "cache")
    assert set(other.ids) != set(val.ids)


def test_a_prepared_npz_is_read_with_its_own_graph_config(fdmnes_source, tmp_path):
    from model_core.config import GraphConfig
    from trainer.data.dataset import prepare_dataset

    (fdmnes_source / "splits").mkdir()
    (fdmnes_source / "splits" / "val.txt").write_text("CPLX01_C2FeO4\nCPLX05_C2FeO4\n")
    cache = tmp_path / "cache"
    prepare_dataset(fdmnes_source, FE_GRID, GraphConfig(r_crop=6.0, r_max=5.0), normalization="edge_step",
                    element="Fe", cache_dir=cache, progress=False)
    (npz,) = cache.glob("*.npz")
    ids = ["CPLX03_C2FeO4", "CPLX01_C2FeO4"]
    clusters = build_cluster_set(npz, ids, FE_GRID, 2.5, normalization="edge_step", element="Fe")
    assert list(clusters.ids) == ids and clusters.radius_a == 2.5 and clusters.n_atoms.max() == 7
    with pytest.raises(ValueError, match="crop"):
        build_cluster_set(npz, ids, FE_GRID, 7.0, normalization="edge_step", element="Fe")
    assert source_splits(npz) == source_splits(fdmnes_source) == {"val": ["CPLX01_C2FeO4", "CPLX05_C2FeO4"]}


def test_the_fe_preset_is_the_forward_models_data():
    from trainer.config import load_train_config

    config = load_config(ROOT / "configs" / "fe-k-inverse-cpu.yaml")
    fe = load_train_config(ROOT / "configs" / "fe-k-fdmnes-cpu.yaml")
    assert config.data.forward_model == "fe-k-fdmnes" and config.data.element == fe.data.element == "Fe"
    assert config.data.normalization == fe.data.normalization and not config.data.val_ids
    assert (config.data.val_fraction, config.data.split_seed) == (fe.data.val_fraction, fe.data.split_seed)
    assert config.data.library_radius_a == fe.graph.r_crop and config.model.radius_a <= config.data.library_radius_a


def test_the_shipped_fe_library_is_consistent():
    meta = json.loads((FE_BUNDLE / "inverse.json").read_text())
    assert meta["element"] == "Fe" and meta["forward_model"] == "fe-k-fdmnes" and meta["kind"] == "inverse"
    library = ClusterSet.load(FE_BUNDLE / "library.npz")
    assert library.mu.shape == (3667, 226) and library.radius_a == 6.0 and (library.z[:, 0] == 26).all()
    np.testing.assert_allclose(library.energy_ev, np.linspace(-15.0, 60.0, 226))
    assert len(set(library.ids)) == len(library) and np.isfinite(library.mu).all()
    assert (FE_BUNDLE / "library.npz").stat().st_size < 4e6


@pytest.mark.shared
def test_the_shipped_fe_library_is_exactly_the_training_part(shared_dir):
    import tarfile

    from trainer.config import DataConfig, TrainConfig
    from trainer.splits import split_indices

    with tarfile.open(shared_dir / "data" / "fe-k-fdmnes.tar.xz") as archive:
        names = sorted(Path(m.name).stem for m in archive.getmembers()
                       if m.isfile() and Path(m.name).parent.name == "spectra")
    kept = [n for n in names if n not in DROPPED]
    assert len(kept) == 4074
    config = load_config(ROOT / "configs" / "fe-k-inverse-cpu.yaml")
    carve = TrainConfig(data=DataConfig(val_fraction=config.data.val_fraction, split_seed=config.data.split_seed))
    train_rows, val_rows = split_indices(carve, kept, kept)  # one Fe site per complex: group = complex
    library = ClusterSet.load(FE_BUNDLE / "library.npz")
    assert set(library.ids) == {kept[i] for i in train_rows}
    assert not set(library.ids) & {kept[i] for i in val_rows}
