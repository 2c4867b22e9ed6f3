"""Beamline files: KEK-PF 9809 (BL9A) angles to energy, counter channels, previews and --columns specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_core import formats
from model_core.spectra.measured import (HC_EV_ANGSTROM, ChannelChoice, MeasuredReadError, bragg_energy_ev,
                                         choice_from_spec, detect_measured_format, inspect_columns,
                                         parse_column_spec, read_measured)
from tests.model_core.spectra.beamline_files import D_SI111, write_bl9a

pytest.importorskip("larch")


def test_bragg_energy_of_a_known_angle() -> None:
    # Cu K edge on Si(111): 8979 eV is at 12.720270 deg (E = hc / 2d sin θ; about 690 eV per degree here).
    assert bragg_energy_ev(np.array([12.720270]), D_SI111)[0] == pytest.approx(8979.0, abs=0.01)
    assert HC_EV_ANGSTROM == pytest.approx(12398.4198, abs=1e-4)
    # Worked by hand: 15 deg on Si(111) is 12398.4198 / (2 * 3.13551 * 0.2588190) = 7638.92 eV.
    assert bragg_energy_ev(np.array([15.0]), D_SI111)[0] == pytest.approx(7638.92, abs=0.01)
    assert np.isnan(bragg_energy_ev(np.array([0.0, 90.0, -3.0]), D_SI111)).all()


def test_bl9a_fluorescence_file_is_read_from_the_observed_angle(tmp_path: Path) -> None:
    truth = write_bl9a(tmp_path / "cuo_fl.dat")
    assert formats.classify(tmp_path / "cuo_fl.dat") == "spectrum"
    assert detect_measured_format(tmp_path / "cuo_fl.dat") == "pf9809"
    data = read_measured(tmp_path / "cuo_fl.dat")
    assert data.format == "pf9809" and data.metadata["d_spacing_a"] == pytest.approx(D_SI111)
    assert data.choice == ChannelChoice("Angle(o)", "SCA1+SCA2+SCA3", "I0", "fluorescence", D_SI111)
    assert data.channel == "fluorescence SCA1+SCA2+SCA3/I0"
    # Energies from Angle(o), sorted ascending (the scan ran downwards), within 0.01 eV.
    np.testing.assert_allclose(data.energy_ev, truth["energy"][::-1], atol=0.01)
    np.testing.assert_allclose(data.mu, (truth["fluor"] / truth["i0"])[::-1], rtol=2e-4)  # 0.1-count rounding
    notes = " | ".join(data.warnings)
    assert "summed 3 fluorescence channels" in notes
    assert "monochromator angle 'Angle(o)'" in notes and "d = 3.13551" in notes
    assert "decreasing order; reversed" in notes
    assert {"Angle(c)", "Angle(o)", "Time", "I0", "I1", "SCA1", "aux1"} <= set(data.columns)


def test_bl9a_transmission_and_named_channels(tmp_path: Path) -> None:
    truth = write_bl9a(tmp_path / "cu_foil.dat", mode="transmission")
    data = read_measured(tmp_path / "cu_foil.dat")
    assert data.channel == "transmission -ln(I1/I0)"
    np.testing.assert_allclose(data.mu, truth["mu"][::-1], rtol=1e-4)
    write_bl9a(tmp_path / "named.dat", named=True)
    named = read_measured(tmp_path / "named.dat")
    assert named.channel == "fluorescence SCA1+SCA2+SCA3/I0"
    np.testing.assert_allclose(named.energy_ev, data.energy_ev, atol=1e-6)


def test_bl9a_explicit_choice_of_the_calculated_angle(tmp_path: Path) -> None:
    truth = write_bl9a(tmp_path / "scan.dat", mode="transmission")
    data = read_measured(tmp_path / "scan.dat", columns=ChannelChoice("Angle(c)", "I1", "I0", "transmission"))
    expected = bragg_energy_ev(truth["angle_c"], D_SI111)[::-1]
    # The file holds angles to 1e-5 degrees (about 0.007 eV).
    np.testing.assert_allclose(data.energy_ev, expected, atol=0.01)
    # The encoder's 0.0004 degree offset is about 0.28 eV: the two angles really differ.
    assert np.mean(data.energy_ev - truth["energy"][::-1]) == pytest.approx(0.28, abs=0.03)


def test_angles_without_d_spacing_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    write_bl9a(tmp_path / "nod.dat", mono_line=False)
    with pytest.raises(MeasuredReadError, match="d-spacing") as exc:
        read_measured(tmp_path / "nod.dat")
    assert str(tmp_path / "nod.dat") in str(exc.value) and "\n" not in str(exc.value)
    preview = inspect_columns(tmp_path / "nod.dat")
    assert preview.guess is None and "d-spacing" in preview.problem
    data = read_measured(tmp_path / "nod.dat", columns=ChannelChoice("Angle(o)", "SCA1", "I0", "fluorescence",
                                                                     d_spacing_a=D_SI111))
    assert data.energy_ev[0] > 8800


def test_plain_column_file_with_an_angle_column_and_a_d_spacing_line(tmp_path: Path) -> None:
    truth = write_bl9a(tmp_path / "src.dat", mode="transmission")
    path = tmp_path / "angles.txt"
    rows = [f"{a:.6f} {b:.3f} {c:.3f}" for a, b, c in zip(truth["angle_o"], truth["i0"], truth["i1"])]
    path.write_text("# Mono : Si(111) D= 3.13551 A\n# theta I0 It\n" + "\n".join(rows) + "\n")
    assert detect_measured_format(path) == "columns"
    data = read_measured(path)
    assert data.channel == "transmission -ln(it/i0)"  # larch lower-cases labels
    np.testing.assert_allclose(data.energy_ev, truth["energy"][::-1], atol=0.01)


def test_inspect_columns_gives_names_raw_columns_and_the_guess(tmp_path: Path) -> None:
    write_bl9a(tmp_path / "fl.dat")
    preview = inspect_columns(tmp_path / "fl.dat")
    assert preview.format == "pf9809" and not preview.fixed and preview.problem is None
    assert preview.names[:5] == ("Angle(c)", "Angle(o)", "Time", "I0", "I1")
    assert preview.columns["Angle(o)"][0] > 12  # raw angles, not energies
    assert preview.guess.mode == "fluorescence"
    again = read_measured(tmp_path / "fl.dat", columns=preview.guess)
    assert again.channel == "fluorescence SCA1+SCA2+SCA3/I0"


@pytest.mark.parametrize("text, expected", [
    ("energy=1,mu=3", {"energy": ("1",), "mu": ("3",)}),
    ("energy=Angle(o),i0=I0,ifluor=SCA1+SCA2", {"energy": ("Angle(o)",), "i0": ("I0",), "if": ("SCA1", "SCA2")}),
    ("i0 = mon, it = det", {"i0": ("mon",), "it": ("det",)}),
    ("energy=theta,i0=2,if=4,d=3.1356", {"energy": ("theta",), "i0": ("2",), "if": ("4",), "d": 3.1356}),
])
def test_parse_column_spec(text, expected) -> None:
    assert parse_column_spec(text) == expected


@pytest.mark.parametrize("text, needle", [
    ("energy=1", "exactly one of"), ("mu=2,it=3", "exactly one of"), ("mu=2,i0=1", "not with mu"),
    ("energy=1+2,mu=3", "one column"), ("colour=1,mu=2", "ROLE=COLUMN"), ("mu=", "ROLE=COLUMN"),
    ("mu=2,d=-1", "positive"), ("mu=2,mu=3", "twice"),
])
def test_parse_column_spec_refuses(text, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_column_spec(text)


def test_choice_from_spec_resolves_numbers_and_keeps_names() -> None:
    names = ["Angle(c)", "Angle(o)", "Time", "I0", "I1", "SCA1", "SCA2"]
    choice = choice_from_spec(parse_column_spec("energy=2,i0=I0,if=6+SCA2"), names, "f.dat")
    assert choice == ChannelChoice("Angle(o)", "SCA1+SCA2", "I0", "fluorescence")
    assert choice_from_spec(parse_column_spec("energy=1,mu=3"), ["e", "x", "mu"], "f.dat") == \
        ChannelChoice("e", "mu", None, "mu")
    with pytest.raises(MeasuredReadError, match="column 9 does not exist"):
        choice_from_spec(parse_column_spec("mu=9"), names, "f.dat")


def test_bl9a_rows_with_appended_values_and_an_aborted_last_point(tmp_path: Path) -> None:
    write_bl9a(tmp_path / "scan.dat", mode="transmission")
    lines = (tmp_path / "scan.dat").read_text().splitlines()
    first_data = next(i for i, line in enumerate(lines) if line.strip().startswith("Offset")) + 1
    lines = lines[:first_data] + [line + "   8.97900  12.72000" for line in lines[first_data:]]
    lines[-1] = "  12.00000  12.00040"  # the scan was stopped while writing this point
    (tmp_path / "long.dat").write_text("\n".join(lines + ["", " scan aborted by user"]) + "\n")
    data = read_measured(tmp_path / "long.dat")
    assert data.channel == "transmission -ln(I1/I0)"
    assert data.column_names[-2:] == ("extra1", "extra2")
    assert len(data.energy_ev) == 300
    assert "skipped 1 data row of unusual length" in data.warnings


def test_an_explicit_choice_reports_only_its_own_guesses(tmp_path: Path) -> None:
    write_bl9a(tmp_path / "fl.dat")
    data = read_measured(tmp_path / "fl.dat", columns=ChannelChoice("Angle(o)", "SCA1+SCA2+SCA3", "I0",
                                                                    "fluorescence"))
    assert not any("summed" in w for w in data.warnings)
    assert any("monochromator angle" in w for w in data.warnings)
