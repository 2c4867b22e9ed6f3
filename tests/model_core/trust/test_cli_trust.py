"""xanes-predict's trust columns and --attribution, xanes-calibrate's pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_core.cli.predict import run
from model_core.types import Prediction
from tests.model_core.helpers import CUPRITE_CIF
from tests.model_core.trust.conftest import cuprite_variants


def _cif(tmp_path, name="Cu2O.cif"):
    path = tmp_path / name
    path.write_text(CUPRITE_CIF)
    return str(path)


def _table(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    meta = [line for line in text.splitlines() if line.startswith("#")]
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    return rows[0], rows[1:], meta


def test_wide_csv_appends_lo_hi_and_domain_lines(calibrated, tmp_path):
    path, _ = calibrated
    out = tmp_path / "wide.csv"
    assert run([_cif(tmp_path), "--model", str(path), "--out", str(out)]) == 0
    header, rows, meta = _table(out.read_text())
    assert header[-4:] == ["average", "spread", "lo", "hi"] and header[0] == "energy_ev"
    values = np.array(rows, dtype=float)
    average, lo, hi = values[:, -4], values[:, -2], values[:, -1]
    assert np.all(lo <= average) and np.all(average <= hi) and np.any(hi > lo)
    assert any(line.startswith("# domain_score: ") for line in meta)
    assert any("90% band" in line for line in meta)


def test_tidy_csv_gains_band_and_domain_columns(calibrated, tmp_path):
    path, _ = calibrated
    out = tmp_path / "tidy.csv"
    assert run([_cif(tmp_path, "a.cif"), _cif(tmp_path, "b.cif"), "--model", str(path), "--out", str(out)]) == 0
    header, rows, _ = _table(out.read_text())
    assert header == ["source", "site", "element", "energy_ev", "mu", "mu_lo", "mu_hi", "domain_score"]
    site_rows = [r for r in rows if r[1] != "average"]
    scores = {(r[0], r[1]): r[7] for r in site_rows}
    assert all(float(v) >= 0 for v in scores.values())
    for r in site_rows:
        assert float(r[5]) <= float(r[4]) <= float(r[6]) and r[7] == scores[(r[0], r[1])]
    assert all(r[7] == "" and r[5] for r in rows if r[1] == "average")


def test_old_checkpoint_csv_is_unchanged(tiny_ensemble, tmp_path):
    out = tmp_path / "old.csv"
    assert run([_cif(tmp_path), "--model", str(tiny_ensemble), "--out", str(out)]) == 0
    header, _, meta = _table(out.read_text())
    assert header[-2:] == ["average", "spread"]
    assert not any(line.startswith("# domain_score") for line in meta)
    assert any("uncalibrated" in line for line in meta)


def test_warning_line_when_a_site_is_outside_the_domain(calibrated, tmp_path):
    path, _ = calibrated
    xyz = tmp_path / "cu_h2o.xyz"
    xyz.write_text("4\nCu aqua fragment\nCu 0 0 0\nO 1.97 0 0\nH 2.56 0.76 0\nH 2.56 -0.76 0\n")
    out = tmp_path / "far.csv"
    assert run([str(xyz), "--model", str(path), "--out", str(out)]) == 0
    _, _, meta = _table(out.read_text())
    assert any(line.startswith("# warning: ") and "domain" in line for line in meta)


def test_attribution_json_lists_every_atom_of_every_site(calibrated, tmp_path):
    path, _ = calibrated
    out = tmp_path / "attr.json"
    assert run([_cif(tmp_path), "--model", str(path), "--out", str(tmp_path / "p.csv"),
                "--attribution", str(out), "--window-ev", "0,20"]) == 0
    data = json.loads(out.read_text())
    site = data["inputs"][0]["sites"][0]
    assert site["window_ev"] == [0.0, 20.0] and site["element"] == "Cu"
    atom = site["atoms"][0]
    assert set(atom) >= {"atom_index", "element", "distance_ang", "attribution", "attention_relative"}
    assert atom["element"] == "O" and site["first_shell"]["n_atoms"] == 2
    distances = [a["distance_ang"] for a in site["atoms"]]
    assert distances == sorted(distances)


def test_combine_and_split_keep_the_band_and_scores(calibrated):
    _, predictor = calibrated
    structure = cuprite_variants(1, seed=3)[0]
    whole = predictor.predict(structure, [0, 1])
    parts = whole.split()
    assert parts[0].band == whole.band and parts[0].domain_score.shape == (1,)
    again = Prediction.combine(parts, whole.weights)
    np.testing.assert_allclose(again.mu_lo, whole.mu_lo)
    np.testing.assert_allclose(again.domain_score, whole.domain_score)
    lo, hi = again.average_band
    assert np.all(lo <= again.average) and np.all(again.average <= hi)


def test_compare_json_reports_the_domain_score(calibrated, tmp_path, shared_dir, capsys):
    from model_core.cli.compare import main

    measured = shared_dir / "data" / "measured" / "Cu" / "cu_metal_rt.xdi"
    if not measured.is_file():
        pytest.skip(f"{measured} is not present")
    path, _ = calibrated
    assert main([_cif(tmp_path), "--measured", str(measured), "--model", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["domain_score"]) == len(summary["sites"])
