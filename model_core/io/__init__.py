"""Reading atomic structures from files: one entry point, many formats.

Usage::

    from model_core.io import read_structure, format_filter, StructureReadError

    structure = read_structure("Cu2O.cif")          # -> model_core.types.Structure

The reader is chosen from the file name first (``*.cif``, ``POSCAR*``,
``feff.inp``, ...) and, when the name says nothing, by sniffing the first
kilobytes of the file, by the registry in :mod:`model_core.formats`. Readers
live in submodules, named there by module path and function name, so importing
this package stays cheap: pymatgen and ASE are imported only when a file of their format is
actually read.

Every failure (missing file, empty file, corrupt content, disorder, too many
atoms) raises :class:`StructureReadError`, a :class:`ValueError` whose message
is one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from model_core import formats
from model_core.io.errors import StructureReadError
from model_core.types import Structure

__all__ = [
    "MAX_ATOMS",
    "SUPPORTED_FORMATS",
    "StructureReadError",
    "detect_format",
    "display_name",
    "format_filter",
    "read_structure",
]

#: Largest structure accepted, in atoms. Graph building and the GUI's 3-D view
#: scale with the atom count; beyond this a file is almost certainly not a unit
#: cell or cluster meant for XANES prediction, and reading it would only freeze
#: the application.
MAX_ATOMS = 200_000

#: Formats offered in file dialogs: (name, file-name patterns, description), from
#: the registry in :mod:`model_core.formats`.
SUPPORTED_FORMATS: list[tuple[str, tuple[str, ...], str]] = [
    (entry.name, entry.globs, entry.description) for entry in formats.STRUCTURE_FORMATS.values()]

# name -> (module, function). Each function takes a Path and returns a Structure
# (source and name are filled in by read_structure).
_READERS: dict[str, tuple[str, str]] = {
    entry.name: tuple(entry.reader.split(":")) for entry in formats.STRUCTURE_FORMATS.values()}

# Generic file and directory names: a structure called "POSCAR" or "feff.inp"
# is named after the folders that hold it instead.
_GENERIC_FILES = re.compile(r"^(poscar|contcar|feff\.inp|geometry\.in)$", re.IGNORECASE)
_GENERIC_DIRS = re.compile(r"feff|xanes|^calc|^run$|^input$|^relax", re.IGNORECASE)


def format_filter() -> str:
    """A Qt file-dialog filter listing every readable structure format.

    Returns:
        ``"Structures (*.cif ... POSCAR* ...);;Crystallographic Information File
        (*.cif *.mcif);;...;;All files (*)"`` (plain text, no Qt import).
    """
    return formats.file_filter("structure")


def detect_format(path: str | Path) -> str:
    """Name of the reader for ``path`` (a key of :data:`SUPPORTED_FORMATS`).

    The file name decides when it is specific; otherwise the content is sniffed,
    and anything unrecognised goes to ASE's own format detection ("ase").
    """
    return formats.structure_format(path)


def display_name(path: str | Path) -> str:
    """A short, useful name for the structure in ``path``.

    Usually the file stem; generic file names are replaced by their folders:
    ``.../mp-1005792/POSCAR`` -> ``"mp-1005792"`` and
    ``.../mp-1005792/FEFF-XANES/008_Cu/feff.inp`` -> ``"mp-1005792/008_Cu"``.
    """
    path = Path(path)
    if not _GENERIC_FILES.match(path.name):
        return path.stem or path.name
    parents = [p.name for p in path.resolve().parents if p.name][:4]
    if not parents:
        return path.name
    if path.name.lower() in ("contcar", "geometry.in"):
        return f"{parents[0]}/{path.name}"
    if path.name.lower() == "poscar" or len(parents) < 3 or not _GENERIC_DIRS.search(parents[1]):
        return parents[0]
    # A per-site FEFF folder inside a calculation folder ("mp-1/FEFF-XANES/008_Cu"):
    # climb past the generic folders to the material's folder.
    picked = [parents[0]]
    for folder in parents[1:]:
        if not _GENERIC_DIRS.search(folder):
            picked.insert(0, folder)
            break
    return "/".join(picked)


def _reader(name: str) -> Callable[[Path], Structure]:
    return formats.load_reader(formats.STRUCTURE_FORMATS[name])


def read_structure(path: str | Path, format: str | None = None) -> Structure:
    """Read one structure from a file.

    Args:
        path: the file. CIF, POSCAR/CONTCAR, XYZ (symbols or atomic numbers),
            extended XYZ, FEFF ``feff.inp``, PDB and whatever else ASE reads.
        format: force a reader by name (see :data:`SUPPORTED_FORMATS`) instead
            of detecting it.

    Returns:
        The structure, with ``source = str(path)``, ``name`` from
        :func:`display_name`, ``info["format"]`` the reader used and
        ``info["warnings"]`` (a tuple of strings, possibly empty) for anything
        the user should know about how the file was interpreted.

    Raises:
        StructureReadError: the file is missing, empty, unreadable, disordered,
            or has more than :data:`MAX_ATOMS` atoms.
    """
    path = Path(path)
    if not path.exists():
        raise StructureReadError(path, "file not found")
    if path.is_dir():
        raise StructureReadError(path, "is a folder, not a structure file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StructureReadError(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if size == 0:
        raise StructureReadError(path, "the file is empty")
    if format is not None and format not in _READERS:
        raise StructureReadError(path, f"unknown format {format!r} (known: {', '.join(_READERS)})")
    name = format or detect_format(path)
    try:
        structure = _reader(name)(path)
    except StructureReadError:
        raise
    except MemoryError as exc:
        raise StructureReadError(path, "not enough memory to read the structure") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StructureReadError(path, f"cannot read the file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything
        problem = str(exc) or type(exc).__name__
        raise StructureReadError(path, f"not a readable {name} structure ({problem})") from exc
    check_size(path, structure.n_atoms)
    info = dict(structure.info)
    info["format"] = name
    info["warnings"] = tuple(info.get("warnings", ()))
    return structure.replace(source=str(path), name=display_name(path), info=info)


def check_size(path: str | Path, n_atoms: int) -> None:
    """Raise :class:`StructureReadError` when ``n_atoms`` exceeds :data:`MAX_ATOMS`."""
    if n_atoms > MAX_ATOMS:
        raise StructureReadError(
            path, f"{n_atoms:,} atoms is too many (at most {MAX_ATOMS:,} are supported); "
                  "cut a cluster or unit cell first")
