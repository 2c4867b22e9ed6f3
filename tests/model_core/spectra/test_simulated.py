"""Parsers of simulated spectra: FEFF xmu.dat and the FDMNES layouts."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.spectra.simulated import (energies_are_absolute, parse_fdmnes_header, read_fdmnes,
                                          read_feff_xmu, read_feff_xmu_table)

XMU = """# synthetic FEFF 9.9.1
#  xsedge+ 50, used to normalize mu           2.4327E-04
# -----------------------------------------------------------------------
#  omega    e    k    mu    mu0     chi     @#
    8984.506    -11.906  -1.000  4.58134E-02  6.20585E-02 -1.62451E-02
    8984.805    -11.607  -0.960  4.84682E-02  6.67721E-02 -1.83039E-02
    8985.091    -11.321  -0.920  5.13421E-02  7.20211E-02 -2.06790E-02
    9125.475    129.063   6.000  1.01829E+00  1.00410E+00  1.41893E-02
"""

RAW_2022 = """# FDMNES program, Revision 20th of January 2022
#    Date = 21 01 2022
 20000.000   42  1  1     0.00000   -19.30749    -5.01332  1  1    19831.401  0.011948392     0.00000 = E_edge, Z, n_edge, j_edge, Abs_before_edge, VO_interstitial, E_Fermi, ninitl, ninit1, Epsii, Atom_density, f0_forward
    Energy    <xanes>
   -25.000  1.1943264E-04
   -24.800  1.1800454E-04
   -24.600  1.1667137E-04
"""

CONV_2022 = """# FDMNES program, Revision 20th of January 2022
#        20000.0          1.25          15.0           0.0 = E_edge, Gamma_hole, Gamma_max, E_cut
#       0.69430           0.0 = Shift
    Energy    <xanes>
   -40.000  1.7372707E-03
   -39.500  1.7532836E-03
   -39.000  1.7751748E-03
"""

XANESNET_SPECTRUM = """    FDMNES
    energy     <xanes>
   7097.00  4.6876331E-03
   7097.33  4.7878949E-03
   7097.67  4.8878949E-03
"""

XANESNET_RAW = """  7112.000   26  1  1  8.9911222E-02 -5.8307339E+00 -2.4594958E+00  1  1  7.2664734E+03  0.0000000E+00  0.0000000E+00  1.9905120E+00  1.0000000E+00  0.0000000E+00 = E_edge, Z, n_edge, j_edge, Abs_before_edge, VO_interstitial, E_cut, ninitl, ninit1, Epsii, UnitCell_Volume, Surface_ref, f0_forward, natomsym_f, abs_u_i
    Energy    <xanes>
   7097.00  2.4424380E-05
   7097.20  2.3714061E-05
   7097.40  2.3222055E-05
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_feff_xmu(tmp_path):
    path = _write(tmp_path, "xmu.dat", XMU)
    spectrum = read_feff_xmu(path)
    assert spectrum.energy_reference == "absolute"
    assert spectrum.energy_ev[0] == pytest.approx(8984.506)
    assert spectrum.e0_ev == pytest.approx(8996.412, abs=2e-3)
    assert spectrum.metadata["energy_rel_ev"][0] == pytest.approx(-11.906)
    assert spectrum.metadata["xsedge50"] == pytest.approx(2.4327e-4)
    assert spectrum.mu[-1] == pytest.approx(1.01829)
    table = read_feff_xmu_table(path)
    assert set(table) >= {"omega", "e", "k", "mu", "mu0", "chi"}
    assert table["chi"].shape == (4,)


def test_feff_xmu_table_accepts_fortran_exponents_extra_columns_and_few_rows(tmp_path):
    # What a finished run must have beyond this (rows, order, non-zero mu) is checked by
    # model_core.feff.xmu.validate_xmu, on top of this reader.
    text = XMU.replace("4.58134E-02", "4.58134D-02").replace("-1.62451E-02", "-1.62451E-02  7.0")
    table = read_feff_xmu_table(_write(tmp_path, "xmu.dat", text))
    assert table["mu"][0] == pytest.approx(0.0458134) and table["chi"][0] == pytest.approx(-0.0162451)
    assert len(table["omega"]) == 4


@pytest.mark.parametrize("text, problem", [
    ("# only comments\n", "no data rows"),
    (XMU.replace("4.84682E-02", "abc"), "line 6"),
    (XMU.replace("4.84682E-02", "******"), "line 6 is not a row of 6 numbers"),
    (XMU.replace("4.84682E-02", "nan"), "NaN or infinite"),
    (XMU.replace("  6.000  1.01829E+00", "  6.000"), "line 8 is not a row of 6 numbers"),
    (XMU.replace("    -11.607", "    -15.607"), "omega - e is not constant"),
])
def test_feff_xmu_errors_name_file(tmp_path, text, problem):
    path = _write(tmp_path, "bad_xmu.dat", text)
    with pytest.raises(ValueError, match=problem) as info:
        read_feff_xmu(path)
    assert "bad_xmu.dat" in str(info.value)


def test_fdmnes_raw_2022_relative(tmp_path):
    spectrum = read_fdmnes(_write(tmp_path, "out.dat", RAW_2022))
    assert spectrum.energy_reference == "edge"
    assert spectrum.e0_ev == 20000.0
    assert spectrum.metadata["layout"] == "raw"
    assert spectrum.metadata["fermi_rel_ev"] == pytest.approx(-5.01332)
    assert spectrum.metadata["header"]["Z"] == 42.0
    assert spectrum.energy_ev.tolist() == [-25.0, -24.8, -24.6]


def test_fdmnes_conv_2022(tmp_path):
    spectrum = read_fdmnes(_write(tmp_path, "out_conv.dat", CONV_2022))
    assert spectrum.energy_reference == "edge"
    assert spectrum.metadata["layout"] == "conv"
    header = spectrum.metadata["header"]
    assert header["Gamma_hole"] == 1.25 and header["E_cut"] == 0.0
    assert header["Shift"] == (0.6943, 0.0)
    assert spectrum.metadata["fermi_rel_ev"] is None


def test_fdmnes_xanesnet_spectrum_absolute(tmp_path):
    spectrum = read_fdmnes(_write(tmp_path, "A(1+).txt", XANESNET_SPECTRUM))
    assert spectrum.energy_reference == "absolute"
    assert spectrum.e0_ev is None
    assert spectrum.metadata["layout"] == "xanesnet"
    assert len(spectrum.mu) == 3


def test_fdmnes_xanesnet_raw_absolute(tmp_path):
    spectrum = read_fdmnes(_write(tmp_path, "raw.txt", XANESNET_RAW))
    assert spectrum.energy_reference == "absolute"
    assert spectrum.e0_ev == 7112.0
    assert spectrum.metadata["fermi_rel_ev"] == pytest.approx(-2.4594958)
    assert spectrum.metadata["header"]["Z"] == 26.0


@pytest.mark.parametrize("text, problem", [
    ("    FDMNES\n", "no 'Energy <xanes>' column header"),
    ("    Energy <xanes>\n 1.0 2.0\n 2.0\n", "columns"),
    ("    Energy <xanes>\n 1.0 nan\n 2.0 1.0\n", "not numeric|NaN"),
    ("garbage here\n", "unexpected header line"),
])
def test_fdmnes_errors_name_file(tmp_path, text, problem):
    path = _write(tmp_path, "broken.txt", text)
    with pytest.raises(ValueError, match=problem) as info:
        read_fdmnes(path)
    assert "broken.txt" in str(info.value)


def test_missing_file_is_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        read_fdmnes(tmp_path / "nope.txt")


def test_header_parsing_and_energy_rule():
    assert parse_fdmnes_header("no equals sign") == {}
    assert parse_fdmnes_header("# 1.0 2.0 = a, b, c") == {"a": 1.0, "b": 2.0}
    assert energies_are_absolute(np.array([7097.0, 7172.0]), 7112.0)
    assert not energies_are_absolute(np.array([-15.0, 60.0]), 7112.0)
    assert energies_are_absolute(np.array([7097.0, 7172.0]), None)
    assert not energies_are_absolute(np.array([-40.0, 120.0]), None)


def test_shared_format_examples(shared_dir):
    formats = shared_dir / "data" / "formats"
    raw = read_fdmnes(formats / "FDMNES_2022_Mo2C_out.dat")
    conv = read_fdmnes(formats / "FDMNES_2022_Mo2C_out_conv.dat")
    assert raw.energy_reference == conv.energy_reference == "edge"
    assert raw.e0_ev == conv.e0_ev == 20000.0
    assert np.all(np.diff(conv.energy_ev) > 0)
