"""Readers delegated to ASE: VASP POSCAR/CONTCAR, PDB, and any other ASE format."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from model_core.io.errors import StructureReadError
from model_core.types import Structure


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read(path: Path, format: str | None, index: int | str = -1):
    """ase.io.read with warnings captured; returns (atoms, warning messages)."""
    import ase.io

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        atoms = ase.io.read(str(path), index=index, format=format)
    messages = []
    for record in caught:
        if issubclass(record.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            continue
        message = str(record.message).strip().splitlines()[0] if str(record.message).strip() else ""
        if message and message not in messages:
            messages.append(message)
    return atoms, messages


def _to_structure(path: Path, atoms, messages: list[str]) -> Structure:
    from model_core.io import check_size
    from model_core.io.convert import from_ase

    check_size(path, len(atoms))
    if len(atoms) == 0:
        raise StructureReadError(path, "no atoms found")
    try:
        structure = from_ase(atoms, source=str(path), name=path.stem)
    except ValueError as exc:
        raise StructureReadError(path, str(exc)) from exc
    info = dict(structure.info)
    info["warnings"] = tuple(messages)
    return structure.replace(info=info)


def read_poscar(path: Path) -> Structure:
    """Read a VASP POSCAR/CONTCAR (VASP 5 with a species line, or VASP 4 with
    the species in the title line) as a periodic structure.

    Raises:
        StructureReadError: the file is not a valid POSCAR.
    """
    try:
        atoms, messages = _read(path, "vasp", index=0)
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds
        raise StructureReadError(path, f"not a valid POSCAR/CONTCAR ({_first_line(exc)})") from exc
    return _to_structure(path, atoms, messages)


def read_pdb(path: Path) -> Structure:
    """Read a PDB file (the last model).

    A CRYST1 record makes the structure periodic, except the 1 Å x 1 Å x 1 Å
    placeholder cell that many programs write for non-crystalline models.
    """
    try:
        atoms, messages = _read(path, "proteindatabank")
    except Exception as exc:  # noqa: BLE001
        raise StructureReadError(path, f"not a valid PDB file ({_first_line(exc)})") from exc
    lengths = atoms.cell.lengths()
    if atoms.pbc.any() and np.allclose(lengths, 1.0, atol=1e-3):
        atoms.pbc = False
        atoms.cell[:] = 0.0
    return _to_structure(path, atoms, messages)


def read_with_ase(path: Path) -> Structure:
    """Read the last image of any file ASE understands (format guessed by ASE)."""
    try:
        atoms, messages = _read(path, None)
    except Exception as exc:  # noqa: BLE001
        # ASE raises UnknownFileTypeError for unrecognised content; say it plainly.
        if type(exc).__name__ == "UnknownFileTypeError":
            raise StructureReadError(path, "not a recognised structure file format") from exc
        raise StructureReadError(path, f"could not be read as a structure ({_first_line(exc)})") from exc
    return _to_structure(path, atoms, messages)
