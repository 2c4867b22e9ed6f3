"""Reading records from folders and archives in the FEFF and XANESNET layouts."""

from __future__ import annotations

import tarfile
import zipfile

import numpy as np
import pytest

from model_core.types import Structure
from trainer.data.records import SpectrumRecord
from trainer.data.fdmnes_source import fdmnes_e0, k_edge_energy
from trainer.data.sources import load_records, read_splits
from tests.trainer.data.synthetic import (CLUSTER_FEFF_INP, write_feff_material, write_xanesnet_complex,
                                          write_xmu)


def _feff_tree(root):
    write_feff_material(root / "cu-set", "mp-1", sites=(0, 1))
    write_feff_material(root / "cu-set", "mp-2", sites=(2,))
    splits = root / "cu-set" / "splits"
    splits.mkdir()
    (splits / "train.txt").write_text("mp-1_000\nmp-1_001\n")
    (splits / "val.txt").write_text("mp-2_002\n")
    return root / "cu-set"


def test_feff_layout_from_folder(tmp_path):
    source = _feff_tree(tmp_path)
    records, report = load_records(source)
    assert not report.problems
    assert [r.record_id for r in records] == ["mp-1_000", "mp-1_001", "mp-2_002"]
    first = records[0]
    assert first.group_id == "mp-1" and first.site_index == 0
    assert first.structure.n_atoms == 4 and first.structure.is_periodic
    assert first.absorber_z == 29
    assert first.energy_rel_ev[0] == pytest.approx(-15.0)
    assert first.e0_abs_ev == pytest.approx(8990.0, abs=1e-3)
    assert records[2].e0_abs_ev == pytest.approx(8992.0, abs=1e-3)
    # Sites of one material share the structure object (one graph search per material).
    assert records[0].structure is records[1].structure
    assert read_splits(source) == {"train": ["mp-1_000", "mp-1_001"], "val": ["mp-2_002"]}


def test_feff_falls_back_to_feff_inp_without_poscar(tmp_path):
    source = _feff_tree(tmp_path)
    (source / "mp-2" / "POSCAR").unlink()
    records, report = load_records(source, ids=["mp-2_002"])
    assert not report.problems
    (record,) = records
    assert record.metadata["structure_from"] == "feff.inp"
    assert not record.structure.is_periodic and record.site_index == 0


def test_bare_feff_run_folder(tmp_path):
    run = tmp_path / "my-run"
    run.mkdir()
    (run / "feff.inp").write_text(CLUSTER_FEFF_INP)
    write_xmu(run / "xmu.dat", e0=8995.0)
    records, report = load_records(run)
    assert not report.problems
    (record,) = records
    assert record.record_id == "my-run" and record.site_index == 0
    assert record.e0_abs_ev == pytest.approx(8995.0, abs=1e-3)


def test_unreadable_records_are_reported_not_silently_skipped(tmp_path):
    source = _feff_tree(tmp_path)
    (source / "mp-1" / "FEFF-XANES" / "001_Cu" / "xmu.dat").write_text("# nothing\n")
    # Site 3 of the POSCAR exists but the folder claims an O absorber.
    bad = source / "mp-1" / "FEFF-XANES" / "003_O"
    bad.mkdir()
    write_xmu(bad / "xmu.dat")
    records, report = load_records(source)
    assert [r.record_id for r in records] == ["mp-1_000", "mp-2_002"]
    problems = dict(report.problems)
    assert "no data rows" in problems["mp-1_001"] and "xmu.dat" in problems["mp-1_001"]
    assert "the folder says O" in problems["mp-1_003"]
    csv_path = report.write_csv(tmp_path / "report.csv")
    assert "mp-1_001" in csv_path.read_text()


def test_xanesnet_layout(tmp_path):
    root = tmp_path / "fe-set"
    write_xanesnet_complex(root, "AAA_C1Fe(1+)", raw=True, e_cut=-1.5)
    write_xanesnet_complex(root, "BBB_C2Fe", raw=False)
    write_xanesnet_complex(root, "CCC_Fe", raw=True, e_cut=0.0)
    # A structure without a spectrum and a broken spectrum are both reported.
    (root / "xyz" / "DDD.xyz").write_text((root / "xyz" / "BBB_C2Fe.xyz").read_text())
    write_xanesnet_complex(root, "EEE", raw=False)
    (root / "spectra" / "EEE.txt").write_text("FDMNES\nenergy <xanes>\n7097.0 x\n")
    records, report = load_records(root)
    by_id = {r.record_id: r for r in records}
    assert set(by_id) == {"AAA_C1Fe(1+)", "BBB_C2Fe", "CCC_Fe"}
    assert {p[0] for p in report.problems} == {"DDD", "EEE"}
    first = by_id["AAA_C1Fe(1+)"]
    assert first.group_id == "AAA_C1Fe(1+)"
    assert first.site_index == 0 and first.absorber_z == 26
    assert first.energy_rel_ev[0] == pytest.approx(-15.0) and first.energy_rel_ev[-1] == pytest.approx(60.0)
    assert first.e0_abs_ev == pytest.approx(7112.0 - 1.5)
    # No raw header: tabulated Fe K edge, E0 unknown; E_cut exactly 0: E0 unknown.
    assert by_id["BBB_C2Fe"].energy_rel_ev[0] == pytest.approx(-15.0)
    assert by_id["BBB_C2Fe"].e0_abs_ev is None
    assert by_id["CCC_Fe"].e0_abs_ev is None


def test_xanesnet_absorber_element_argument(tmp_path):
    root = tmp_path / "fe-set"
    write_xanesnet_complex(root, "AAA", raw=False)
    (record,), _ = load_records(root, element="N")
    assert record.site_index == 5


def _archive(source_dir, path, kind):
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(source_dir.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(source_dir.parent).as_posix())
    else:
        with tarfile.open(path, "w:gz") as archive:
            archive.add(source_dir, arcname=source_dir.name)
    return path


@pytest.mark.parametrize("kind, name", [("tar", "set.tar.gz"), ("tar", "set.tgz"), ("zip", "set.zip")])
def test_archives_give_the_same_records(tmp_path, kind, name):
    source = _feff_tree(tmp_path / "src")
    write_xanesnet_complex(source, "AAA_C1Fe(1+)")
    archive = _archive(source, tmp_path / name, kind)
    from_dir, _ = load_records(source)
    from_archive, report = load_records(archive)
    assert not report.problems
    assert [r.record_id for r in from_archive] == [r.record_id for r in from_dir]
    for a, b in zip(from_archive, from_dir):
        np.testing.assert_allclose(a.mu_raw, b.mu_raw)
        np.testing.assert_allclose(a.structure.positions, b.structure.positions)
        assert "::" in a.source
    assert read_splits(archive)["val"] == ["mp-2_002"]


def test_bad_sources(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_records(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no FEFF"):
        load_records(tmp_path / "empty")
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="cannot read the archive"):
        load_records(tmp_path / "junk.tar.gz")


def test_edge_table_and_e0_rule():
    assert k_edge_energy("Fe") == pytest.approx(7112.0)
    assert k_edge_energy(29) == pytest.approx(8979.0)
    assert fdmnes_e0(7112.0, -2.0) == pytest.approx(7110.0)
    assert fdmnes_e0(7112.0, 0.0) is None
    assert fdmnes_e0(None, -1.0) is None


def test_record_validation():
    structure = Structure(atomic_numbers=[29], positions=[[0, 0, 0]])
    with pytest.raises(ValueError, match="site index"):
        SpectrumRecord("x", "x", structure, 3, np.zeros(3), np.zeros(3), None, "")
    with pytest.raises(ValueError, match="equal length"):
        SpectrumRecord("x", "x", structure, 0, np.zeros(3), np.zeros(2), None, "")
