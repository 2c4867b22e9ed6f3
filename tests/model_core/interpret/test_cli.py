"""xanes-identify and xanes-refine contracts (tiny checkpoint; no shared data needed)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from model_core.cli import compare, identify, refine
from tests.model_core.helpers import CUPRITE_CIF, tiny_checkpoint
from tests.model_core.spectra.synthetic_spectra import transmission_file

STRUCTURES = Path(__file__).resolve().parents[3] / "resources" / "structures"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    candidates = folder / "candidates"
    candidates.mkdir()
    (candidates / "Cu2O.cif").write_text(CUPRITE_CIF)
    (candidates / "CuO.cif").write_bytes((STRUCTURES / "CuO.cif").read_bytes())
    return {"model": tiny_checkpoint(folder / "tiny.pt"), "measured": transmission_file(folder / "cu.csv"),
            "foil": transmission_file(folder / "foil.csv", e0=8979.5), "candidates": candidates,
            "nacl": STRUCTURES / "NaCl.cif", "broken": _write(folder / "broken.cif", "data_x\nnonsense\n"),
            "folder": folder}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _identify(files, *extra: str, more: tuple[str, ...] = ()) -> list[str]:
    return [str(files["measured"]), "--candidates", str(files["candidates"]), *more, "--model", str(files["model"]),
            "--device", "cpu", *extra]


def test_identify_json_contract(files, capsys) -> None:
    code = identify.main(_identify(files, "--json", "--reference", str(files["foil"]), "--lcf", "2"))
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    assert set(summary) >= {"measured", "element", "calibration", "ranking", "lcf"}
    assert summary["element"] == "Cu" and summary["calibration"]["source"] == "reference"
    assert [row["rank"] for row in summary["ranking"]] == [1, 2]
    assert {row["structure"] for row in summary["ranking"]} == {str(files["candidates"] / "Cu2O.cif"),
                                                                 str(files["candidates"] / "CuO.cif")}
    for row in summary["ranking"]:
        assert set(row) >= {"rank", "structure", "score", "confidence", "shift_ev", "broaden_fwhm_ev", "scale",
                            "metrics"}
        assert set(row["metrics"]) >= {"mse", "pearson_r", "pearson_r_deriv", "cosine"}
    entry = summary["lcf"][0]
    assert set(entry) >= {"components", "metrics"}
    assert sum(c["fraction"] for c in entry["components"]) == pytest.approx(1.0)
    assert set(entry["components"][0]) == {"structure", "fraction", "stderr"}


def test_identify_csv_and_skipped_candidates(files, capsys, tmp_path: Path) -> None:
    out = tmp_path / "ranking.csv"
    code = identify.main(_identify(files, "--out", str(out), more=(str(files["nacl"]), str(files["broken"]))))
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and str(files["nacl"]) in errors[0] and str(files["broken"]) in errors[1]
    text = out.read_text()
    assert "# calibration_source: tabulated" in text
    rows = list(csv.reader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#")))))
    assert rows[0] == ["rank", "structure", "score", "confidence", "shift_ev", "broaden_fwhm_ev", "scale",
                       "mse", "pearson_r", "pearson_r_deriv", "cosine"]
    assert len(rows) == 3


@pytest.mark.parametrize("argv", [
    ["missing.xdi", "--candidates", "x.cif"],
    ["{measured}", "--model", "{model}"],
    ["{measured}", "--candidates", "{nacl}", "--model", "{model}"],
    ["{measured}", "--candidates", "{candidates}", "--model", "{model}", "--reference-structure", "{nacl}"],
])
def test_identify_bad_input_exits_2_with_one_line(files, capsys, argv) -> None:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    with pytest.raises(SystemExit) as info:
        identify.main(argv + ["--device", "cpu"])
    assert info.value.code == 2
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert len(lines) >= 1 and "Traceback" not in lines[-1]


def test_refine_json_contract_and_out(files, capsys, tmp_path: Path) -> None:
    out = tmp_path / "refined.xyz"
    code = refine.main([str(files["candidates"] / "Cu2O.cif"), "--measured", str(files["measured"]), "--model",
                        str(files["model"]), "--json", "--out", str(out), "--max-iterations", "3"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) >= {"first_shell", "parameters", "metrics_start", "metrics_end"}
    assert set(summary["first_shell"]) >= {"distance_a", "start_a", "stderr_a"}
    assert summary["first_shell"]["start_a"] == pytest.approx(1.848, abs=0.01)
    assert {"shell_1_scale", "strain", "shift_ev", "scale"} <= set(summary["parameters"])
    assert all({"value", "stderr"} <= set(p) for p in summary["parameters"].values())
    from ase.io import read

    atoms = read(out)
    assert atoms.get_chemical_symbols()[0] == "Cu" and len(atoms) > 10


@pytest.mark.parametrize("argv", [
    ["{cu2o}", "--measured", "missing.csv"],
    ["{nacl}", "--measured", "{measured}", "--element", "Cu"],
    ["{molecule}", "--measured", "{measured}", "--params", "strain"],
])
def test_refine_bad_input_exits_2(files, capsys, argv) -> None:
    molecule = _write(files["folder"] / "mol.xyz", "2\nCuO\nCu 0 0 0\nO 1.9 0 0\n")
    names = {**{k: str(v) for k, v in files.items()}, "cu2o": str(files["candidates"] / "Cu2O.cif"),
             "molecule": str(molecule)}
    with pytest.raises(SystemExit) as info:
        refine.main([a.format(**names) for a in argv] + ["--model", str(files["model"])])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_compare_fit_adds_a_fit_object(files, capsys) -> None:
    code = compare.main([str(files["candidates"] / "Cu2O.cif"), "--measured", str(files["measured"]), "--model",
                         str(files["model"]), "--fit", "--json", "--device", "cpu"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fit = summary["fit"]
    assert fit["alignment"] == "free alignment"
    assert {"shift_ev", "gaussian_fwhm_ev", "lorentzian_fwhm_ev", "scale"} <= set(fit["parameters"])
    assert all({"value", "stderr"} == set(p) for p in fit["parameters"].values())
    assert fit["metrics_before"]["n_points"] == fit["metrics_after"]["n_points"]
    assert fit["metrics_after"]["mse"] <= fit["metrics_before"]["mse"]
    # Without --fit the JSON has no "fit" (the contract of xanes-compare is unchanged).
    compare.main([str(files["candidates"] / "Cu2O.cif"), "--measured", str(files["measured"]), "--model",
                  str(files["model"]), "--json", "--device", "cpu"])
    assert "fit" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_identify_accepts_a_negative_window_as_a_separate_word(files, capsys) -> None:
    code = identify.main(_identify(files, "--json", "--window", "-20,80"))
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ranking"]


def test_identify_json_carries_each_candidates_domain_score(shared_dir, capsys) -> None:
    # The shipped model has a domain index: every ranked candidate reports its sites' scores.
    root = Path(__file__).resolve().parents[3]
    measured = shared_dir / "data" / "measured" / "Cu" / "cu_metal_rt.xdi"
    code = identify.main([str(measured), "--candidates", str(root / "resources" / "structures" / "Cu.cif"),
                          str(root / "resources" / "structures" / "Cu2O.cif"), "--json", "--device", "cpu"])
    assert code == 0
    ranking = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ranking"]
    assert all(isinstance(row["domain_score"], list) and row["domain_score"] for row in ranking)
