"""Real files from the shared data archives (skipped when ../shared is absent).

Members are extracted one at a time with tarfile into tmp_path; nothing from
the archives is copied into the repository.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from model_core.io import read_structure

pytestmark = pytest.mark.shared


def shared_data_dir() -> Path | None:
    """The shared ``data`` folder: $XANES_SHARED/data, else ../shared/data beside the repo."""
    env = os.environ.get("XANES_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared"
    data = root / "data"
    return data if data.is_dir() else None


def extract_first(archive: str, wanted, destination: Path, limit: int = 20000) -> dict[str, Path]:
    """Extract the first member of ``archive`` for each predicate in ``wanted``.

    Args:
        archive: file name inside the shared data folder.
        wanted: mapping key -> predicate(member name) -> bool.
        destination: folder to extract into (the member's path is kept).
        limit: stop after this many members (the archives are streamed, so
            scanning is cheap but not free).

    Returns:
        key -> extracted path, for the keys found.
    """
    data = shared_data_dir()
    if data is None or not (data / archive).is_file():
        pytest.skip(f"../shared/data/{archive} is not present (set XANES_SHARED to run data tests)")
    found: dict[str, Path] = {}
    with tarfile.open(data / archive, "r:xz") as tar:
        for k, member in enumerate(tar):
            if k >= limit or len(found) == len(wanted):
                break
            if not member.isfile():
                continue
            for key, predicate in wanted.items():
                if key not in found and predicate(member.name):
                    try:
                        tar.extract(member, destination, filter="data")
                    except TypeError:  # Python < 3.11.4 has no extraction filters
                        tar.extract(member, destination)
                    found[key] = destination / member.name
    return found


def test_cu_feff_poscar_and_feff_inp(tmp_path):
    files = extract_first("cu-k-feff.tar.xz", {
        "poscar": lambda n: n.endswith("/POSCAR"),
        "feff": lambda n: n.endswith("/feff.inp"),
    }, tmp_path)
    assert set(files) == {"poscar", "feff"}
    crystal = read_structure(files["poscar"])
    assert crystal.is_periodic and "Cu" in crystal.elements
    assert crystal.name == files["poscar"].parent.name  # the material id
    cluster = read_structure(files["feff"])
    assert not cluster.is_periodic and cluster.absorber_index is not None
    assert cluster.symbols[cluster.absorber_index] == "Cu"
    # The absorber sits at the origin of the FEFF cluster.
    np.testing.assert_allclose(cluster.positions[cluster.absorber_index], 0.0, atol=1e-6)
    assert cluster.info["edge"] == "K"
    # pymatgen-written inputs list the whole cell as "* i El x y z" comments.
    assert len(cluster.info["feff_cell_sites"]) >= 1
    assert "/" in cluster.name and "FEFF" not in cluster.name


def test_fe_fdmnes_xyz_with_atomic_numbers(tmp_path):
    files = extract_first("fe-k-fdmnes.tar.xz", {
        "xyz": lambda n: n.endswith(".xyz") and "(" in Path(n).name,
    }, tmp_path)
    if "xyz" not in files:
        files = extract_first("fe-k-fdmnes.tar.xz", {"xyz": lambda n: n.endswith(".xyz")}, tmp_path)
    assert "xyz" in files
    path = files["xyz"]
    molecule = read_structure(path)
    assert not molecule.is_periodic and molecule.cell is None
    assert "Fe" in molecule.elements
    assert molecule.name == path.stem
    header = int(path.read_text().split()[0])
    assert molecule.n_atoms == header
