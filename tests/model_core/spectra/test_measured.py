"""Reading measured spectra: real files from ../shared and synthetic bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_core.spectra.measured import athena as athena_module
from model_core.spectra.measured import (ChannelChoice, MeasuredReadError, detect_measured_format,
                                         list_athena_groups, read_measured)
from model_core.spectra.normalize import NormalizationError, normalize
from tests.conftest import shared_root
from tests.model_core.spectra.synthetic_spectra import (athena_project_text, edge_energy, edge_mu,
                                                        transmission_file, write_columns)

# K-edge energies (eV) of the elements in ../shared/data/measured.
K_EDGES = {"Cu": 8979.0, "Fe": 7112.0, "Mn": 6539.0, "Ni": 8333.0, "V": 5465.0, "Zn": 9659.0}


def _measured_dir() -> Path | None:
    root = shared_root()
    return None if root is None else root / "data" / "measured"


def _element_xdi_files() -> list:
    folder = _measured_dir()
    if folder is None or not folder.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared is not present"))]
    files = sorted(p for element in K_EDGES for p in (folder / element).glob("*.xdi"))
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


@pytest.fixture(scope="module")
def measured_dir(shared_dir: Path) -> Path:
    folder = shared_dir / "data" / "measured"
    if not folder.is_dir():
        pytest.skip("no measured data in ../shared")
    return folder


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------

@pytest.mark.shared
@pytest.mark.parametrize("path", _element_xdi_files())
def test_every_shared_xdi_reads_and_normalizes(path: Path) -> None:
    data = read_measured(path)
    assert data.energy_ev.ndim == 1 and len(data.energy_ev) >= 50
    assert np.all(np.diff(data.energy_ev) > 0)
    assert np.all(np.isfinite(data.mu))
    assert data.channel
    result = normalize(data.energy_ev, data.mu)
    assert result.edge_step > 0
    edge = K_EDGES[path.parent.name]
    # Oxides sit up to ~15 eV above the metal's edge.
    assert edge - 5.0 <= result.e0 <= edge + 25.0, (path.name, result.e0)
    post = result.flat[data.energy_ev > result.e0 + 40]
    assert abs(float(np.median(post)) - 1.0) < 0.15


@pytest.mark.shared
@pytest.mark.parametrize("relative, edge", [("Cu/Cu_Foil_rt_2016Foils.xdi", 8979.0),
                                            ("Fe/Fe_Foil_rt_2016Foils.xdi", 7112.0),
                                            ("Fe/Hansel2001_Fe_foil_xanes_001.xdi", 7112.0)])
def test_foil_e0(measured_dir: Path, relative: str, edge: float) -> None:
    data = read_measured(measured_dir / relative)
    assert data.format == "xdi"
    assert data.element == relative.split("/")[0]
    assert data.edge == "K"
    assert data.channel == "transmission -ln(itrans/i0)"
    assert {"energy", "itrans", "i0"} <= set(data.column_names)
    assert abs(normalize(data.energy_ev, data.mu).e0 - edge) <= 5.0


@pytest.mark.shared
def test_xdi_with_mutrans_column_uses_it(measured_dir: Path) -> None:
    data = read_measured(measured_dir / "Cu" / "cu_metal_rt.xdi")
    assert data.format == "xdi"
    assert data.channel == "mutrans"
    np.testing.assert_allclose(data.mu, data.columns["mutrans"])


@pytest.mark.shared
def test_athena_project_lists_and_reads_groups(measured_dir: Path) -> None:
    path = measured_dir / "larch-examples" / "cu.prj"  # gzip-compressed project
    names = list_athena_groups(path)
    assert names == ["cu010k.dat", "cu050k.dat", "cu150k.dat"]
    data = read_measured(path, group="cu050k.dat")
    assert data.format == "athena" and data.group == "cu050k.dat"
    assert data.element == "Cu"
    assert len(data.energy_ev) > 500
    assert abs(normalize(data.energy_ev, data.mu).e0 - 8979.0) < 5.0
    # The larch key works as well as Athena's label.
    assert read_measured(path, group="cu050k_dat").label == "cu050k.dat"
    with pytest.raises(MeasuredReadError, match="no Athena group 'nope'.*cu010k.dat"):
        read_measured(path, group="nope")


@pytest.mark.shared
def test_plain_text_athena_project(measured_dir: Path) -> None:
    data = read_measured(measured_dir / "larch-examples" / "FeS2.prj")
    assert data.label == "fes2_rt01_mar02.xmu"
    assert abs(normalize(data.energy_ev, data.mu).e0 - 7112.0) < 10.0


@pytest.mark.shared
def test_xmu_column_file(measured_dir: Path) -> None:
    data = read_measured(measured_dir / "larch-examples" / "cu_rt01.xmu")
    assert data.format == "columns"
    assert data.channel == "mu"
    assert data.element == "Cu" and data.edge == "K"
    assert set(data.column_names) == {"energy", "mu", "i0"}
    assert abs(normalize(data.energy_ev, data.mu).e0 - 8979.0) < 5.0


@pytest.mark.shared
def test_scan_that_stops_below_the_edge_cannot_be_normalized(measured_dir: Path) -> None:
    # fe_xanes_8ch.xdi ends at 7108.6 eV, below the Fe K edge.
    data = read_measured(measured_dir / "larch-examples" / "fe_xanes_8ch.xdi")
    assert data.channel == "transmission -ln(IT/I0)"
    assert "Fe_Ka_mca1" in data.column_names
    with pytest.raises(NormalizationError):
        normalize(data.energy_ev, data.mu)
    fluorescence = read_measured(measured_dir / "larch-examples" / "fe_xanes_8ch.xdi",
                                 columns=ChannelChoice(numerator="Fe_Ka_mca1", denominator="I0",
                                                       mode="fluorescence"))
    assert fluorescence.channel == "fluorescence Fe_Ka_mca1/I0"


@pytest.mark.shared
def test_athena_project_without_usable_group_from_real_text(measured_dir: Path, tmp_path: Path) -> None:
    text = (measured_dir / "larch-examples" / "FeS2.prj").read_text(encoding="utf-8", errors="replace")
    assert "'is_chi',0" in text
    path = tmp_path / "chi_only.prj"
    path.write_text(text.replace("'is_chi',0", "'is_chi',1"), encoding="utf-8")
    with pytest.raises(MeasuredReadError, match="no usable group"):
        list_athena_groups(path)


# ---------------------------------------------------------------------------
# Synthetic files: formats and channel choice
# ---------------------------------------------------------------------------

def test_csv_with_bare_header_and_mu(tmp_path: Path) -> None:
    energy = edge_energy()
    path = write_columns(tmp_path / "s.csv", ["energy", "mu"], [energy, edge_mu(energy)], sep=",",
                         comment_header=False)
    data = read_measured(path)
    assert data.format == "columns" and data.channel == "mu" and data.warnings == ()
    np.testing.assert_allclose(data.energy_ev, energy)
    np.testing.assert_allclose(data.mu, edge_mu(energy), atol=1e-6)
    assert not data.energy_ev.flags.writeable and not data.mu.flags.writeable
    assert data.to_spectrum().energy_reference == "absolute"


def test_transmission_from_i0_and_itrans(tmp_path: Path) -> None:
    data = read_measured(transmission_file(tmp_path / "t.csv"))
    assert data.channel == "transmission -ln(itrans/i0)"
    assert data.choice == ChannelChoice("energy", "itrans", "i0", "transmission")
    np.testing.assert_allclose(data.mu, edge_mu(data.energy_ev), atol=1e-5)


def test_tab_separated_fluorescence_with_comment_header(tmp_path: Path) -> None:
    energy = edge_energy()
    i0 = np.linspace(1e5, 0.9e5, len(energy))
    ifluor = i0 * edge_mu(energy)
    path = write_columns(tmp_path / "f.txt", ["energy", "i0", "ifluor"], [energy, i0, ifluor], sep="\t",
                         preamble="# fluorescence scan\n# sample: test")
    data = read_measured(path)
    assert data.channel == "fluorescence ifluor/i0"
    np.testing.assert_allclose(data.mu, edge_mu(energy), rtol=1e-5)


def test_explicit_channel_choice(tmp_path: Path) -> None:
    path = transmission_file(tmp_path / "t.csv")
    data = read_measured(path, columns=ChannelChoice(energy="energy", numerator="itrans",
                                                     denominator="i0", mode="fluorescence"))
    assert data.channel == "fluorescence itrans/i0"
    np.testing.assert_allclose(data.mu, np.exp(-edge_mu(data.energy_ev)), rtol=1e-5)
    with pytest.raises(MeasuredReadError, match=r"t\.csv: no column 'ifluor'"):
        read_measured(path, columns=ChannelChoice(numerator="ifluor", mode="fluorescence"))
    with pytest.raises(ValueError, match="channel mode"):
        ChannelChoice(mode="absorbance")


def test_energy_column_found_by_values_when_unnamed(tmp_path: Path) -> None:
    energy = edge_energy()
    path = write_columns(tmp_path / "plain.dat", None, [energy, edge_mu(energy)])
    data = read_measured(path)
    np.testing.assert_allclose(data.energy_ev, energy)
    assert any("mu" in w for w in data.warnings)


def test_feff_and_fdmnes_outputs(tmp_path: Path) -> None:
    rel = np.linspace(-15, 60, 151)
    feff = tmp_path / "xmu.dat"
    rows = "\n".join(f"{8979 + r:10.3f} {r:10.3f} 0.0 {m:.5e} {m:.5e} 0.0"
                     for r, m in zip(rel, edge_mu(8979 + rel)))
    feff.write_text("# synthetic FEFF\n#  omega    e    k    mu    mu0     chi     @#\n" + rows + "\n")
    data = read_measured(feff)
    assert data.format == "feff"
    np.testing.assert_allclose(data.energy_ev, 8979 + rel, atol=1e-3)

    fdmnes = tmp_path / "out_conv.dat"
    body = "\n".join(f"{r:9.3f} {m:.7e}" for r, m in zip(rel, edge_mu(8979 + rel)))
    fdmnes.write_text("# FDMNES program, synthetic\n"
                      "#        8979.0          1.25          15.0           0.0 = E_edge, Gamma_hole, "
                      "Gamma_max, E_cut\n    Energy    <xanes>\n" + body + "\n")
    assert detect_measured_format(fdmnes) == "fdmnes"
    data = read_measured(fdmnes)
    assert data.format == "fdmnes"
    np.testing.assert_allclose(data.energy_ev, 8979 + rel, atol=1e-3)
    assert any("relative to the edge" in w for w in data.warnings)


def test_synthetic_athena_project(tmp_path: Path) -> None:
    k = np.linspace(0, 12, 50)
    energy = edge_energy()
    path = tmp_path / "p.prj"
    path.write_text(athena_project_text([("chi data", True, k, np.sin(k)),
                                         ("sample one", False, energy, edge_mu(energy))]))
    assert list_athena_groups(path) == ["sample one"]
    data = read_measured(path)
    assert data.group == "sample one" and data.element == "Cu"
    np.testing.assert_allclose(data.mu, edge_mu(energy), atol=1e-5)


# ---------------------------------------------------------------------------
# Repairs and bad input
# ---------------------------------------------------------------------------

def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(MeasuredReadError, match="file not found") as exc:
        read_measured(tmp_path / "absent.xdi")
    _one_line(exc, tmp_path / "absent.xdi")
    empty = tmp_path / "empty.dat"
    empty.write_text("")
    with pytest.raises(MeasuredReadError, match="empty") as exc:
        read_measured(empty)
    _one_line(exc, empty)
    comments = tmp_path / "comments.dat"
    comments.write_text("# energy mu\n# nothing here\n")
    with pytest.raises(MeasuredReadError, match="no numeric data"):
        read_measured(comments)


def test_no_energy_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = write_columns(tmp_path / "noenergy.dat", ["a", "b", "c"], [rng.random(50) for _ in range(3)])
    with pytest.raises(MeasuredReadError, match="no energy column") as exc:
        read_measured(path)
    _one_line(exc, path)


def test_wrong_columns(tmp_path: Path) -> None:
    energy = edge_energy()
    path = write_columns(tmp_path / "odd.dat", ["energy", "foo", "bar"], [energy, energy * 0 + 1, energy * 0 + 2])
    with pytest.raises(MeasuredReadError, match="no mu column") as exc:
        read_measured(path)
    _one_line(exc, path)


def test_non_monotonic_points_are_sorted(tmp_path: Path) -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    order = np.arange(len(energy))
    order[[100, 101]] = order[[101, 100]]
    order[[300, 301]] = order[[301, 300]]
    path = write_columns(tmp_path / "swap.dat", ["energy", "mu"], [energy[order], mu[order]])
    data = read_measured(path)
    assert "sorted 2 non-monotonic points" in data.warnings
    np.testing.assert_allclose(data.energy_ev, energy)
    np.testing.assert_allclose(data.mu, mu, atol=1e-6)


def test_descending_scan_is_reversed(tmp_path: Path) -> None:
    energy = edge_energy()
    path = write_columns(tmp_path / "down.dat", ["energy", "mu"], [energy[::-1], edge_mu(energy)[::-1]])
    data = read_measured(path)
    assert any("reversed" in w for w in data.warnings)
    np.testing.assert_allclose(data.energy_ev, energy)


def test_badly_scrambled_energies_are_refused(tmp_path: Path) -> None:
    energy = edge_energy()
    order = np.random.default_rng(2).permutation(len(energy))
    path = write_columns(tmp_path / "scrambled.dat", ["energy", "mu"], [energy[order], edge_mu(energy)[order]])
    with pytest.raises(MeasuredReadError, match="out of order") as exc:
        read_measured(path)
    _one_line(exc, path)


def test_duplicated_energies_are_averaged(tmp_path: Path) -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    energy_d = np.insert(energy, [200, 400], [energy[199], energy[399]])
    mu_d = np.insert(mu, [200, 400], [mu[199] + 0.2, mu[399] - 0.2])
    path = write_columns(tmp_path / "dup.dat", ["energy", "mu"], [energy_d, mu_d])
    data = read_measured(path)
    assert any(w.startswith("removed 2 duplicated energies") for w in data.warnings)
    np.testing.assert_allclose(data.energy_ev, energy)
    assert data.mu[199] == pytest.approx(mu[199] + 0.1, abs=1e-5)
    assert data.mu[399] == pytest.approx(mu[399] - 0.1, abs=1e-5)


def test_nan_rows_are_dropped(tmp_path: Path) -> None:
    energy = edge_energy()
    mu = edge_mu(energy)
    mu[[10, 20, 30]] = np.nan
    path = write_columns(tmp_path / "nan.dat", ["energy", "mu"], [energy, mu])
    data = read_measured(path)
    assert "dropped 3 rows with NaN, infinite or invalid values" in data.warnings
    assert len(data.energy_ev) == len(energy) - 3


def test_kev_energies_are_converted(tmp_path: Path) -> None:
    energy = edge_energy()
    path = write_columns(tmp_path / "kev.dat", ["energy", "mu"], [energy / 1000.0, edge_mu(energy)])
    data = read_measured(path)
    assert "energy given in keV, converted to eV" in data.warnings
    np.testing.assert_allclose(data.energy_ev, energy, atol=1e-3)


def test_too_few_points(tmp_path: Path) -> None:
    energy = edge_energy(8970, 8990, 5)
    path = write_columns(tmp_path / "few.dat", ["energy", "mu"], [energy, edge_mu(energy)])
    with pytest.raises(MeasuredReadError, match="only 5 usable data points") as exc:
        read_measured(path)
    _one_line(exc, path)


def test_too_short_range_cannot_be_normalized(tmp_path: Path) -> None:
    energy = edge_energy(8970, 8984, 30)
    data = read_measured(write_columns(tmp_path / "short.dat", ["energy", "mu"], [energy, edge_mu(energy)]))
    with pytest.raises(NormalizationError, match="range too short"):
        normalize(data.energy_ev, data.mu)


def test_group_only_for_athena(tmp_path: Path) -> None:
    path = transmission_file(tmp_path / "t.csv")
    with pytest.raises(MeasuredReadError, match="only be chosen in an Athena project"):
        read_measured(path, group="x")


def test_athena_project_with_no_usable_group(tmp_path: Path) -> None:
    k = np.linspace(0, 12, 50)
    path = tmp_path / "chi.prj"
    path.write_text(athena_project_text([("chi only", True, k, np.sin(k))]))
    with pytest.raises(MeasuredReadError, match="no usable group") as exc:
        read_measured(path)
    _one_line(exc, path)
    with pytest.raises(MeasuredReadError, match="no usable group"):
        list_athena_groups(path)


def test_athena_no_usable_group_with_mocked_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Empty:
        label = "empty"

    path = tmp_path / "mock.prj"
    path.write_text("# Athena project file -- mocked\n")
    monkeypatch.setattr(athena_module, "_load_athena", lambda p: {"empty": Empty()})
    with pytest.raises(MeasuredReadError, match="no usable group"):
        read_measured(path)


def test_garbage_athena_project(tmp_path: Path) -> None:
    path = tmp_path / "garbage.prj"
    path.write_text("this is not a project\n1 2 3\n")
    with pytest.raises(MeasuredReadError, match="Athena project") as exc:
        read_measured(path)
    _one_line(exc, path)


def test_list_columns_of_a_file_without_mu(tmp_path):
    from model_core.spectra.measured import list_columns

    path = tmp_path / "scan.dat"
    energy = np.linspace(8900, 9100, 60)
    rows = "\n".join(f"{e:.2f} {1e5:.1f} {5e4:.1f}" for e in energy)
    path.write_text("# energy i0 it\n" + rows + "\n")
    assert list_columns(path) == ["energy", "i0", "it"]
