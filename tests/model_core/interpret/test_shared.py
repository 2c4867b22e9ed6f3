"""Real measured spectra from ../shared, end to end (skipped without it; no winner asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from model_core.cli import compare, identify, refine

pytestmark = pytest.mark.shared
STRUCTURES = Path(__file__).resolve().parents[3] / "resources" / "structures"


@pytest.fixture(scope="module")
def cu(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "measured" / "Cu"
    if not (folder / "Cu_Foil_rt_2016Foils.xdi").is_file():
        pytest.skip("the measured Cu spectra are not in ../shared")
    return folder


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_identify_with_a_foil_reference(cu: Path, capsys) -> None:
    code = identify.main([str(cu / "Cu_azurite_13K_01.xdi"), "--candidates", str(STRUCTURES / "CuO.cif"),
                          str(STRUCTURES / "Cu2O.cif"), "--reference", str(cu / "Cu_Foil_rt_2016Foils.xdi"),
                          "--lcf", "2", "--json", "--device", "cpu"])
    assert code == 0
    summary = _json(capsys)
    assert summary["calibration"]["source"] == "reference"
    assert math.isfinite(summary["calibration"]["shift_ev"])
    assert len(summary["ranking"]) == 2 and summary["lcf"]
    shift = summary["calibration"]["shift_ev"]
    assert all(abs(row["shift_ev"] - shift) <= 1.0 + 1e-6 for row in summary["ranking"])


def test_refine_and_compare_fit_on_a_measured_spectrum(cu: Path, capsys) -> None:
    code = refine.main([str(STRUCTURES / "CuO.cif"), "--measured", str(cu / "Cu_azurite_13K_01.xdi"),
                        "--reference", str(cu / "Cu_Foil_rt_2016Foils.xdi"), "--json", "--shells", "1",
                        "--max-iterations", "8"])
    assert code == 0
    summary = _json(capsys)
    assert math.isfinite(summary["first_shell"]["distance_a"])
    assert summary["metrics_end"]["mse"] <= summary["metrics_start"]["mse"] * 1.01
    code = compare.main([str(STRUCTURES / "CuO.cif"), "--measured", str(cu / "Cu_azurite_13K_01.xdi"),
                         "--fit", "--json", "--device", "cpu"])
    assert code == 0
    summary = _json(capsys)
    assert summary["fit"]["alignment"] == "free alignment"
    assert summary["fit"]["metrics_after"]["mse"] <= summary["mse"]
