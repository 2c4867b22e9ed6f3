"""A few real records from the shared archives (skipped without ../shared)."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.config import EnergyGrid, GraphConfig
from trainer.data import prepare_dataset
from trainer.data.sources import LoadReport, iter_records, open_source, read_splits

N = 20


@pytest.fixture(scope="module")
def cu_tree(shared_dir):
    path = shared_dir / "data" / "cu-k-feff.tar.xz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with open_source(path) as tree:
        yield tree


@pytest.fixture(scope="module")
def fe_tree(shared_dir):
    path = shared_dir / "data" / "fe-k-fdmnes.tar.xz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with open_source(path) as tree:
        yield tree


def test_cu_feff_archive(cu_tree):
    splits = read_splits(cu_tree)
    assert {"train", "val", "unscreened"} <= set(splits)
    assert len(splits["train"]) == 3340 and len(splits["val"]) == 416
    wanted = splits["val"][:N]
    report = LoadReport(source=str(cu_tree.root))
    records = list(iter_records(cu_tree, report, ids=wanted))
    assert not report.problems
    assert sorted(r.record_id for r in records) == sorted(wanted)
    for record in records:
        assert record.absorber_z == 29 and record.structure.is_periodic
        assert record.record_id.startswith(record.group_id + "_")
        assert record.energy_rel_ev[0] < -7 and record.energy_rel_ev[-1] > 100
        assert 8970 < record.e0_abs_ev < 9020
        assert 0.5 < record.mu_raw[-20:].mean() < 1.5  # FEFF normalized at edge + 50 eV


def test_fe_fdmnes_archive(fe_tree):
    names = sorted(p.rsplit("/", 1)[1][:-4] for p in fe_tree.paths if "/spectra/" in p)
    assert len(names) == 4079
    report = LoadReport(source=str(fe_tree.root))
    records = list(iter_records(fe_tree, report, ids=names[:N]))
    assert not report.problems and len(records) == N
    for record in records:
        assert record.absorber_z == 26 and not record.structure.is_periodic
        assert record.energy_rel_ev[0] == pytest.approx(-15.0, abs=0.01)
        assert record.energy_rel_ev[-1] == pytest.approx(60.0, abs=0.01)
        assert record.metadata["e_edge_ev"] == 7112.0
        assert record.e0_abs_ev is None or 7100 < record.e0_abs_ev < 7113


@pytest.mark.parametrize("archive, grid, ids_from", [
    ("cu-k-feff.tar.xz", EnergyGrid(-10.0, 100.0, 221), "val"),
    ("fe-k-fdmnes.tar.xz", EnergyGrid(-15.0, 60.0, 226), None),
])
def test_prepare_real_subset(shared_dir, tmp_path, archive, grid, ids_from):
    path = shared_dir / "data" / archive
    if not path.exists():
        pytest.skip(f"{path} not present")
    with open_source(path) as tree:
        if ids_from:
            ids = read_splits(tree)[ids_from][:N]
        else:
            ids = sorted(p.rsplit("/", 1)[1][:-4] for p in tree.paths if "/spectra/" in p)[:N]
    norm = "post_mean" if ids_from else "edge_step"
    data, report = prepare_dataset(path, grid, GraphConfig(r_crop=6.0, r_max=5.0), norm, ids=ids,
                                   cache_dir=tmp_path, progress=False)
    assert len(data) + len(report) == N and len(data) >= N - 2
    assert np.all(np.isfinite(data.mu)) and data.mu.shape[1] == grid.n_points
    assert np.all(np.diff(data.node_offsets) > 1)
    again, _ = prepare_dataset(path, grid, GraphConfig(r_crop=6.0, r_max=5.0), norm, ids=ids,
                               cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.mu, data.mu)
