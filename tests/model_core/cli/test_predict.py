import csv
import io

import numpy as np
import pytest

from model_core.cli.predict import run

from tests.model_core.helpers import CUPRITE_CIF, TINY_MODEL, tiny_checkpoint


@pytest.fixture()
def files(tmp_path):
    model = tiny_checkpoint(tmp_path / "cu.pt")
    cif = tmp_path / "Cu2O.cif"
    cif.write_text(CUPRITE_CIF)
    return model, cif, tmp_path


def _parse(text):
    meta = [line for line in text.splitlines() if line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#")))))
    return meta, rows


def test_wide_csv_for_one_input(files, capsys):
    model, cif, _ = files
    assert run([str(cif), "--model", str(model), "--device", "cpu"]) == 0
    meta, rows = _parse(capsys.readouterr().out)
    assert rows[0] == ["energy_ev", "site_0", "site_1", "site_2", "site_3", "average"]
    assert len(rows) - 1 == TINY_MODEL.grid.n_points
    assert any("trained" in m for m in meta) and any("energy_reference" in m for m in meta)
    assert any("device: cpu" in m for m in meta)
    values = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(values[:, 0], TINY_MODEL.grid.energy_ev, atol=1e-4)
    np.testing.assert_allclose(values[:, -1], values[:, 1:5].mean(axis=1), atol=1e-5)


def test_sites_option_and_out_file(files):
    model, cif, tmp = files
    out = tmp / "pred.csv"
    assert run([str(cif), "--model", str(model), "--sites", "1,2", "--out", str(out)]) == 0
    _, rows = _parse(out.read_text())
    assert rows[0] == ["energy_ev", "site_1", "site_2", "average"]


def test_tidy_csv_and_one_bad_file(files, capsys):
    model, cif, tmp = files
    bad = tmp / "broken.cif"
    bad.write_text("this is not a CIF")
    code = run([str(cif), str(bad), str(cif), "--model", str(model)])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "broken.cif" in errors[0]
    assert "Traceback" not in captured.err
    _, rows = _parse(captured.out)
    assert rows[0] == ["source", "site", "element", "energy_ev", "mu"]
    assert {r[0] for r in rows[1:]} == {str(cif)}
    assert {r[1] for r in rows[1:]} == {"0", "1", "2", "3", "average"}


def test_sites_with_several_inputs_is_refused(files):
    model, cif, _ = files
    with pytest.raises(SystemExit) as exit_info:
        run([str(cif), str(cif), "--sites", "0", "--model", str(model)])
    assert exit_info.value.code == 2


def test_missing_and_empty_files(files, capsys):
    model, _, tmp = files
    empty = tmp / "empty.cif"
    empty.write_text("")
    assert run([str(empty), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty.cif" in err[0]
    assert run([str(tmp / "nope.cif"), "--model", str(model)]) == 2
    assert "nope.cif" in capsys.readouterr().err


def test_element_without_atoms(files, capsys):
    model, cif, _ = files
    assert run([str(cif), "--model", str(model), "--element", "Fe"]) == 2
    assert "Fe" in capsys.readouterr().err


def test_ensemble_model_adds_a_spread_column(files, capsys):
    from model_core.checkpoint import load_checkpoint, make_ensemble, save_checkpoint

    model, cif, tmp_path = files
    other = tiny_checkpoint(tmp_path / "cu2.pt", seed=1)
    ensemble = save_checkpoint(make_ensemble([load_checkpoint(model), load_checkpoint(other)]),
                               tmp_path / "ens.pt")
    assert run([str(cif), "--model", str(ensemble), "--device", "cpu"]) == 0
    meta, rows = _parse(capsys.readouterr().out)
    assert rows[0][-2:] == ["average", "spread"]
    assert any("ensemble_members: 2" in m for m in meta)
    spread = np.array([r[-1] for r in rows[1:]], dtype=float)
    assert (spread >= 0).all() and spread.max() > 0


def test_errors_name_paths_as_given_and_spectra_get_a_hint(files, capsys, monkeypatch):
    model, cif, tmp = files
    monkeypatch.chdir(tmp)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "broken.cif").write_text("this is not a CIF")
    (tmp / "cu.xdi").write_text("# XDI/1.0\n# Column.1: energy eV\n# ///\n8979 1\n")
    assert run(["./sub/broken.cif", "cu.xdi", "missing.cif", "--model", str(model)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    # The missing file is reported first, before anything is read or imported.
    assert errors[0] == "error: missing.cif: file not found"
    assert errors[1].startswith("error: ./sub/broken.cif: ")
    assert errors[2].startswith("error: cu.xdi: ") and "measured spectrum" in errors[2]


def test_missing_input_fails_fast_without_importing_torch(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom model_core.cli.predict import run\ncode = run(['nowhere/CuO.cif'])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'larch', 'pymatgen', 'ase'})\n"
            "print(heavy)\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 2
    assert result.stderr.strip() == "error: nowhere/CuO.cif: file not found"
    assert result.stdout.strip() == "[]"


def _meta_value(meta, key):
    return next(line.split(":", 1)[1].strip() for line in meta if line.startswith(f"# {key}:"))


def test_absolute_energy_wide_csv_averages_on_one_absolute_grid(files, capsys):
    from model_core.inference import load_model
    from model_core.io import read_structure
    from model_core.sites import select_sites
    from model_core.spectra.absolute import on_absolute_grid

    model, _, tmp = files
    # Two Cu in different environments, so their predicted E0 differ.
    xyz = tmp / "two-cu.xyz"
    xyz.write_text("6\ntwo Cu\nCu 0 0 0\nO 1.85 0 0\nO -1.85 0 0\nCu 6 0 0\nO 6 2.0 0\nS 6 0 2.3\n")
    assert run([str(xyz), "--model", str(model), "--element", "Cu", "--energy", "absolute"]) == 0
    meta, rows = _parse(capsys.readouterr().out)
    assert _meta_value(meta, "energy_reference").startswith("absolute eV, each site at its own predicted E0")
    assert rows[0] == ["energy_ev", "site_0", "site_3", "average"]
    values = np.array(rows[1:], dtype=float)
    structure = read_structure(str(xyz))
    pred = load_model(str(model), device="cpu").predict(structure, select_sites(structure, sites=[0, 3]))
    assert abs(pred.e0_ev[0] - pred.e0_ev[1]) > 1e-3  # the two sites' grids really differ
    placed = on_absolute_grid(pred)
    np.testing.assert_allclose(values[:, 0], placed.energy_ev, atol=1e-4)
    np.testing.assert_allclose(values[:, 1:3], placed.mu.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values[:, 3], np.average(values[:, 1:3], axis=1, weights=pred.weights),
                               rtol=1e-5, atol=1e-6)
    assert values[0, 0] > 1000  # absolute, not E - E0


def test_absolute_energy_tidy_csv_puts_each_site_at_its_e0(files, capsys):
    model, cif, _ = files
    assert run([str(cif), str(cif), "--model", str(model)]) == 0
    _, relative = _parse(capsys.readouterr().out)
    assert run([str(cif), str(cif), "--model", str(model), "--energy", "absolute"]) == 0
    meta, rows = _parse(capsys.readouterr().out)
    assert rows[0] == ["source", "site", "element", "energy_ev", "mu"]
    assert _meta_value(meta, "energy_reference").startswith("absolute eV")
    rel = {(r[1], i): float(r[3]) for i, r in enumerate(relative[1:]) if r[1] != "average"}
    shifts = {site: float(r[3]) - rel[(site, i)] for i, r in enumerate(rows[1:]) if (site := r[1]) != "average"}
    assert min(shifts.values()) > 8000  # every site row moved by its own (positive) E0
    site_rows = [r for r in rows[1:] if r[1] != "average"]
    np.testing.assert_allclose([float(r[4]) for r in site_rows],
                               [float(r[4]) for r in relative[1:] if r[1] != "average"])
    assert all(float(r[3]) > 8000 for r in rows[1:] if r[1] == "average")


def test_absolute_energy_without_an_e0_head_exits_2_naming_the_model(files, capsys):
    import dataclasses

    from tests.model_core.helpers import TINY_MODEL

    _, cif, tmp = files
    model = tiny_checkpoint(tmp / "no-e0.pt", model_config=dataclasses.replace(TINY_MODEL, e0_head=False))
    with pytest.raises(SystemExit) as exit_info:
        run([str(cif), "--model", str(model), "--energy", "absolute"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-e0" in err[0] and "E0" in err[0]
    assert run([str(cif), "--model", str(model)]) == 0  # relative energies still work
