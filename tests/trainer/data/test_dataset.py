"""prepare_dataset: graphs, spectra, cache round trip, subsets, torch view."""

from __future__ import annotations

import numpy as np
import pytest

import trainer.data.dataset as dataset_module
from model_core.config import EnergyGrid, GraphConfig
from model_core.graph import build_graph
from model_core.spectra.normalize import TargetNormalization
from trainer.data import PreparedDataset, prepare_dataset
from tests.trainer.data.synthetic import write_feff_material, write_xanesnet_complex

CU_GRID = EnergyGrid(-10.0, 100.0, 221)
FE_GRID = EnergyGrid(-15.0, 60.0, 226)
GRAPHS = GraphConfig(r_crop=4.0, r_max=3.0)


@pytest.fixture()
def feff_source(tmp_path):
    root = tmp_path / "cu-set"
    write_feff_material(root, "mp-1", sites=(0, 1))
    write_feff_material(root, "mp-2", sites=(2,))
    (root / "mp-2" / "FEFF-XANES" / "002_Cu" / "xmu.dat").write_text("broken\n")
    write_feff_material(root, "mp-3", sites=(3,))
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("mp-1_000\nmp-1_001\n")
    (root / "splits" / "val.txt").write_text("mp-3_003\nmp-2_002\n")
    return root


def test_prepare_feff_and_cache_round_trip(feff_source, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first, report = prepare_dataset(feff_source, CU_GRID, GRAPHS, "post_mean", cache_dir=cache, progress=False)
    assert first.ids.tolist() == ["mp-1_000", "mp-1_001", "mp-3_003"]
    assert first.group_ids.tolist() == ["mp-1", "mp-1", "mp-3"]
    assert first.mu.shape == (3, 221) and first.mu.dtype == np.float32
    np.testing.assert_allclose(first.e0_abs, [8990.0, 8991.0, 8993.0], atol=1e-3)
    assert first.meta["grid_origin_ev"] is None  # FEFF: each site's energies are against its own E0
    assert [p[0] for p in report.problems] == ["mp-2_002"]
    assert report.normalization_methods == {"post_mean": 3}
    assert len(list(cache.glob("*.npz"))) == 1 and len(list(cache.glob("*-report.csv"))) == 1

    # Stored graphs equal freshly built ones.
    graph = first.graph(1)
    from model_core.io import read_structure

    fresh = build_graph(read_structure(feff_source / "mp-1" / "POSCAR"), 1, GRAPHS)
    assert graph.n_nodes == fresh.n_nodes and graph.site_index == 1
    np.testing.assert_array_equal(graph.atomic_numbers, fresh.atomic_numbers)
    np.testing.assert_allclose(graph.positions, fresh.positions)
    np.testing.assert_array_equal(graph.edge_index, fresh.edge_index)
    np.testing.assert_allclose(graph.edge_vectors, fresh.edge_vectors, atol=1e-12)
    assert graph.absorber_mask[0] and not graph.absorber_mask[1:].any()

    # The second call must come from the cache: building anything would fail.
    def boom(*args, **kwargs):
        raise AssertionError("rebuilt instead of loading the cache")

    monkeypatch.setattr(dataset_module, "build_graphs", boom)
    monkeypatch.setattr(dataset_module, "open_source", boom)
    second, report2 = prepare_dataset(feff_source, CU_GRID, GRAPHS, "post_mean", cache_dir=cache, progress=False)
    for name, value in first.to_arrays().items():
        np.testing.assert_array_equal(second.to_arrays()[name], value, err_msg=name)
    assert second.splits == first.splits == {"train": ["mp-1_000", "mp-1_001"], "val": ["mp-3_003", "mp-2_002"]}
    assert report2.problems == report.problems and report2.n_loaded == report.n_loaded

    # Another normalization is another cache entry.
    monkeypatch.undo()
    other, _ = prepare_dataset(feff_source, CU_GRID, GRAPHS, TargetNormalization(mode="feff"), cache_dir=cache,
                               progress=False)
    assert len(list(cache.glob("*.npz"))) == 2
    assert not np.array_equal(other.mu, first.mu)


def test_subset_and_graphs(feff_source):
    data, _ = prepare_dataset(feff_source, CU_GRID, GRAPHS, "feff", progress=False)
    val = data.subset(data.splits["val"])
    assert val.ids.tolist() == ["mp-3_003"]  # mp-2_002 was unreadable
    with pytest.raises(KeyError):
        data.subset(["mp-2_002"], strict=True)
    sub = data.subset(["mp-3_003", "mp-1_000"])
    assert sub.ids.tolist() == ["mp-3_003", "mp-1_000"]
    rows = {rid: k for k, rid in enumerate(data.ids.tolist())}
    for k, rid in enumerate(sub.ids):
        row = rows[rid]
        np.testing.assert_array_equal(sub.mu[k], data.mu[row])
        np.testing.assert_array_equal(sub.graph(k).edge_index, data.graph(row).edge_index)
    assert len(data.graphs) == 3 and data.graphs[-1].site_index == 3


def test_training_examples_carry_targets(feff_source):
    from model_core.batching import collate
    from trainer.splits import training_examples

    data, _ = prepare_dataset(feff_source, CU_GRID, GRAPHS, "feff", progress=False)
    split = training_examples(data, np.arange(len(data)), e0_mean=8980.0, e0_std=5.0)
    item = split.data[0]
    assert tuple(item.y.shape) == (1, 221)
    assert float(item.e0) == pytest.approx((8990.0 - 8980.0) / 5.0, abs=1e-3)
    assert item.edge_vec.shape[0] == item.edge_index.shape[1]
    batch = collate(list(split.data))
    assert tuple(batch.y.shape) == (3, 221) and batch.num_graphs == 3



def test_prepare_xanesnet_with_screening(tmp_path):
    root = tmp_path / "fe-set"
    for name in ("A", "B", "C"):
        write_xanesnet_complex(root, name)
    # C gets a runaway tail; D has no raw header (E0 unknown -> NaN).
    text = (root / "spectra" / "C.txt").read_text().splitlines()
    rows = [line.split() for line in text[2:]]
    rows = [f"{e} {float(m) + max(0.0, float(e) - 7150.0) * 0.5:.6E}" for e, m in rows]
    (root / "spectra" / "C.txt").write_text("\n".join(text[:2] + rows) + "\n")
    write_xanesnet_complex(root, "D", raw=False)
    data, report = prepare_dataset(root, FE_GRID, GRAPHS, "edge_step", progress=False)
    assert data.ids.tolist() == ["A", "B", "D"]
    # The tail either fails screening or wrecks the post-edge fit; both are reported.
    assert [d[0] for d in report.dropped] == ["C"]
    assert "runaway tail" in report.dropped[0][1] or "edge step" in report.dropped[0][1]
    assert np.isnan(data.e0_abs[2]) and data.e0_abs[0] == pytest.approx(7110.5)
    # FDMNES: energies against the tabulated edge, E0 the Fermi level: the grid's zero is 7112 eV.
    assert data.meta["grid_origin_ev"] == pytest.approx(7112.0)
    post = data.mu[:, FE_GRID.energy_ev > 30]
    assert np.abs(post.mean(axis=1) - 1.0).max() < 0.1
    unscreened, report = prepare_dataset(root, FE_GRID, GRAPHS, "none", screen=False, progress=False)
    assert len(unscreened) == 4 and not report.dropped


def test_save_load_without_report(tmp_path, feff_source):
    data, _ = prepare_dataset(feff_source, CU_GRID, GRAPHS, "feff", progress=False)
    path = data.save(tmp_path / "d.npz")
    loaded, report = PreparedDataset.load(path)
    assert report is None and loaded.ids.tolist() == data.ids.tolist()
    assert loaded.meta["normalization"]["mode"] == "feff"


def test_prepared_npz_is_a_source(feff_source, tmp_path):
    """A cache file copied elsewhere trains without the raw data, but only with the
    preparation it was made for."""
    cache = tmp_path / "cache"
    first, _ = prepare_dataset(feff_source, CU_GRID, GRAPHS, "post_mean", cache_dir=cache, progress=False)
    npz = next(cache.glob("*.npz"))
    again, report = prepare_dataset(npz, CU_GRID, GRAPHS, "post_mean", progress=False)
    np.testing.assert_array_equal(again.mu, first.mu)
    assert again.splits == first.splits and [p[0] for p in report.problems] == ["mp-2_002"]
    only, _ = prepare_dataset(npz, CU_GRID, GRAPHS, "post_mean", ids=["mp-3_003"], progress=False)
    assert only.ids.tolist() == ["mp-3_003"]
    with pytest.raises(ValueError, match="grid"):
        prepare_dataset(npz, FE_GRID, GRAPHS, "post_mean", progress=False)
    with pytest.raises(ValueError, match="normalization"):
        prepare_dataset(npz, CU_GRID, GRAPHS, "feff", progress=False)
    with pytest.raises(ValueError, match="no such prepared dataset"):
        prepare_dataset(tmp_path / "missing.npz", CU_GRID, GRAPHS, "post_mean", progress=False)
