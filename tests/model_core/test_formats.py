"""The format registry: names, content sniffing, lazily imported readers, dialog filters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from model_core import formats
from model_core.io import SUPPORTED_FORMATS, detect_format
from tests.model_core.spectra.beamline_files import write_bl9a
from tests.model_core.spectra.synthetic_spectra import athena_project_text, edge_energy, edge_mu, transmission_file

CIF = """data_Cu
_cell_length_a 3.615
_cell_length_b 3.615
_cell_length_c 3.615
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Cu1 Cu 0 0 0
"""
XYZ = "3\nwater\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n"
POSCAR = "Cu\n1.0\n3.6 0 0\n0 3.6 0\n0 0 3.6\nCu\n1\nDirect\n0 0 0\n"
FEFF_INP = "TITLE x\nPOTENTIALS\n 0 29 Cu\n 1 8 O\nATOMS\n 0 0 0 0 Cu\n 1.9 0 0 1 O\nEND\n"
XDI = "# XDI/1.0\n# Column.1: energy eV\n# Column.2: mutrans\n# ///\n#---\n# energy mutrans\n" + "".join(
    f"{e:.2f} {m:.5f}\n" for e, m in zip(edge_energy(), edge_mu(edge_energy())))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text, kind", [
    ("CuO.cif", CIF, "structure"),
    ("POSCAR", POSCAR, "structure"),
    ("water.xyz", XYZ, "structure"),
    ("feff.inp", FEFF_INP, "structure"),
    ("cu_metal_rt.xdi", XDI, "spectrum"),
    ("xmu.dat", "# omega e k mu mu0 chi\n8979 0 0 1 1 0\n", "spectrum"),
    ("scan.xmu", "1 2\n", "spectrum"),
    ("notes.pdf", "%PDF-1.4", None),
])
def test_classify_by_name(tmp_path, name, text, kind) -> None:
    assert formats.classify(write(tmp_path / name, text)) == kind


def test_classify_by_name_alone_for_missing_files(tmp_path) -> None:
    assert formats.classify(tmp_path / "absent.cif") == "structure"
    assert formats.classify(tmp_path / "absent.xdi") == "spectrum"
    assert formats.classify(tmp_path / "absent") is None


@pytest.mark.parametrize("name, text, kind", [
    ("structure.dat", CIF, "structure"),        # a misnamed CIF
    ("molecule.txt", XYZ, "structure"),
    ("cluster", FEFF_INP, "structure"),         # no extension
    ("CONTCAR_relaxed_copy", POSCAR, "structure"),
    ("cell", POSCAR, "structure"),
    ("spectrum.txt", XDI, "spectrum"),
    ("scan001", XDI, "spectrum"),
    ("input.inp", XDI, "spectrum"),             # .inp is FEFF only when its cards say so
])
def test_classify_by_content(tmp_path, name, text, kind) -> None:
    assert formats.classify(write(tmp_path / name, text)) == kind


def test_classify_tables_and_beamline_files_without_telling_names(tmp_path) -> None:
    table = transmission_file(tmp_path / "x.csv", sep=" ")
    renamed = tmp_path / "run_0042"
    renamed.write_text(table.read_text())
    assert formats.classify(renamed) == "spectrum"
    # A three-column table with a header line looks like a POSCAR to a lenient sniffer.
    rows = "".join(f"{e:.1f} {1e5:.1f} {5e4:.1f}\n" for e in edge_energy(8900, 9000, 40))
    assert formats.classify(write(tmp_path / "i0it", "# E I0 It\n" + rows)) == "spectrum"
    write_bl9a(tmp_path / "CU_FOIL.001")
    assert formats.classify(tmp_path / "CU_FOIL.001") == "spectrum"
    assert formats.spectrum_format(tmp_path / "CU_FOIL.001") == "pf9809"


def test_athena_projects_are_sniffed_through_gzip(tmp_path) -> None:
    import gzip

    text = athena_project_text([("g1", True, edge_energy(), edge_mu(edge_energy()))])
    path = tmp_path / "project"
    path.write_bytes(gzip.compress(text.encode()))
    assert formats.spectrum_format(path) == "athena"
    assert formats.classify(path) == "spectrum"


def test_structure_table_is_the_one_model_core_io_uses(tmp_path) -> None:
    assert [name for name, _, _ in SUPPORTED_FORMATS] == list(formats.STRUCTURE_FORMATS)
    assert detect_format(write(tmp_path / "thing.txt", CIF)) == formats.structure_format(tmp_path / "thing.txt")


def test_every_reader_is_importable() -> None:
    for table in (formats.STRUCTURE_FORMATS, formats.SPECTRUM_FORMATS):
        for entry in table.values():
            assert callable(formats.load_reader(entry)), entry.name


def test_file_filters_come_from_the_tables() -> None:
    spectra = formats.file_filter("spectrum")
    first = spectra.split(";;")[0]
    assert first.startswith("Spectra (") and "*.xdi" in first and "*.prj" in first and "xmu.dat" in first
    assert "XDI (*.xdi)" in spectra and spectra.endswith("All files (*)")
    assert "KEK-PF" not in spectra  # content-only formats have no pattern to offer
    assert formats.file_filter("structure").startswith("Structures (*.cif *.mcif POSCAR*")


def test_classifying_imports_no_reader(tmp_path) -> None:
    files = [write(tmp_path / "a.cif", CIF), write(tmp_path / "b.xdi", XDI), write(tmp_path / "c", POSCAR),
             write(tmp_path / "d.dat", XDI)]
    code = ("import sys; from model_core import formats; "
            f"kinds = [formats.classify(p) for p in {[str(f) for f in files]!r}]; "
            f"names = [formats.spectrum_format(p) for p in {[str(f) for f in files[1:]]!r}]; "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'larch', 'ase', 'pymatgen', "
            "'scipy', 'e3nn'}); print(kinds, heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "['structure', 'spectrum', 'structure', 'spectrum']" in result.stdout
