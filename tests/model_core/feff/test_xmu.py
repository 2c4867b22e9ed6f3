"""Checks of a run's xmu.dat, on top of the one xmu.dat reader (model_core.spectra.simulated)."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.feff.errors import InvalidXmuError
from model_core.feff.xmu import MIN_XMU_ROWS, is_valid_xmu, validate_xmu
from model_core.spectra.simulated import read_feff_xmu, read_feff_xmu_table
from tests.model_core.feff.fake_tasks import write_fake_xmu


def test_a_valid_result_is_the_readers_table(tmp_path):
    good = tmp_path / "xmu.dat"
    write_fake_xmu(good)
    table = validate_xmu(good)
    assert len(table["omega"]) == 120 and is_valid_xmu(good)
    reader = read_feff_xmu_table(good)
    for column in ("omega", "e", "k", "mu", "mu0", "chi"):
        np.testing.assert_array_equal(table[column], reader[column])
    spectrum = read_feff_xmu(good)
    assert spectrum.e0_ev == pytest.approx(8979.0)


@pytest.mark.parametrize("damage, problem", [
    (None, "was not written"),
    (lambda text: text.replace("0.000000\n", "nan\n", 1), "NaN or infinite"),
    (lambda text: text + "8999.0 20.0 2.0 ****** 1.0 0.0\n", "not a row of 6 numbers"),
    (lambda text: text.replace(" 0.000000\n", "\n", 1), "not a row of 6 numbers"),
    (lambda text: "\n".join(text.splitlines()[:12]) + "\n", f"10 data rows, expected at least {MIN_XMU_ROWS}"),
])
def test_unusable_files_are_rejected_with_one_line(tmp_path, damage, problem):
    good = tmp_path / "good.dat"
    write_fake_xmu(good)
    bad = tmp_path / "xmu.dat"
    if damage is not None:
        bad.write_text(damage(good.read_text()))
    with pytest.raises(InvalidXmuError, match=problem) as info:
        validate_xmu(bad)
    assert "xmu.dat" in str(info.value) and "\n" not in str(info.value)
    assert not is_valid_xmu(bad)


def test_what_the_reader_accepts_and_a_finished_run_may_not_have(tmp_path):
    # A short, unordered file or one with mu zero everywhere is a readable spectrum, not a finished run.
    good = tmp_path / "good.dat"
    write_fake_xmu(good)
    header, rows = good.read_text().splitlines()[:2], good.read_text().splitlines()[2:]
    cases = {
        "short.dat": (header + rows[:10], "10 data rows"),
        "unordered.dat": (header + rows[1:2] + rows[:1] + rows[2:], "not strictly increasing"),
        "zero.dat": (header + [" ".join(r.split()[:3] + ["0.0", "0.0", "0.0"]) for r in rows], "mu is zero"),
    }
    for name, (lines, problem) in cases.items():
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        assert len(read_feff_xmu(path).energy_ev) >= 10
        with pytest.raises(InvalidXmuError, match=problem):
            validate_xmu(path)
    assert is_valid_xmu(tmp_path / "short.dat", min_rows=10)


def test_the_readers_column_check_applies_to_runs(tmp_path):
    # omega - e not constant: the reader refuses the file, so a run may not leave it either.
    good = tmp_path / "good.dat"
    write_fake_xmu(good)
    lines = good.read_text().splitlines()
    tokens = lines[5].split()
    tokens[1] = f"{float(tokens[1]) + 7.0:.6f}"
    lines[5] = " ".join(tokens)
    bad = tmp_path / "xmu.dat"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="omega - e is not constant"):
        read_feff_xmu(bad)
    with pytest.raises(InvalidXmuError, match="omega - e is not constant"):
        validate_xmu(bad)
