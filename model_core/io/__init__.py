"""Reading atomic structures from files: one entry point, many formats.

Usage::

    from model_core.io import read_structure, format_filter, StructureReadError

    structure = read_structure("Cu2O.cif")          # -> model_core.types.Structure

The reader is chosen from the file name first (``*.cif``, ``POSCAR*``,
``feff.inp``, ...) and, when the name says nothing, by sniffing the first
kilobytes of the file. Readers live in submodules and are named in
:data:`_READERS` by module path and function name, so importing this package
stays cheap: pymatgen and ASE are imported only when a file of their format is
actually read.

Every failure (missing file, empty file, corrupt content, disorder, too many
atoms) raises :class:`StructureReadError`, a :class:`ValueError` whose message
is one line naming the file.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from pathlib import Path
from typing import Callable

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

#: Formats offered in file dialogs: (name, file-name patterns, description).
#: Patterns are case-insensitive globs matched against the file name only.
#: Descriptions avoid parentheses so Qt's filter parser finds the pattern group.
SUPPORTED_FORMATS: list[tuple[str, tuple[str, ...], str]] = [
    ("cif", ("*.cif", "*.mcif"), "Crystallographic Information File"),
    ("vasp", ("POSCAR*", "CONTCAR*", "*.vasp", "*.poscar"), "VASP POSCAR/CONTCAR"),
    ("xyz", ("*.xyz",), "XYZ, element symbols or atomic numbers"),
    ("extxyz", ("*.extxyz",), "Extended XYZ"),
    ("feff", ("feff.inp", "*.inp"), "FEFF input, POTENTIALS and ATOMS cards"),
    ("pdb", ("*.pdb", "*.ent"), "Protein Data Bank"),
    ("ase", ("*.traj", "*.xsf", "*.cell", "*.gen", "*.cube", "*.pwi", "*.res", "*.sdf",
             "*.mol", "*.gjf", "*.com", "geometry.in"), "Other formats read by ASE"),
]

# name -> (module, function). Each function takes a Path and returns a Structure
# (source and name are filled in by read_structure).
_READERS: dict[str, tuple[str, str]] = {
    "cif": ("model_core.io.cif", "read_cif"),
    "vasp": ("model_core.io.ase_formats", "read_poscar"),
    "xyz": ("model_core.io.xyz", "read_xyz"),
    "extxyz": ("model_core.io.xyz", "read_xyz"),
    "feff": ("model_core.io.feff", "read_feff_inp"),
    "pdb": ("model_core.io.ase_formats", "read_pdb"),
    "ase": ("model_core.io.ase_formats", "read_with_ase"),
}

# Patterns that say nothing definite about the content: the file is sniffed.
_AMBIGUOUS_PATTERNS = {"*.inp"}

# Generic file and directory names: a structure called "POSCAR" or "feff.inp"
# is named after the folders that hold it instead.
_GENERIC_FILES = re.compile(r"^(poscar|contcar|feff\.inp|geometry\.in)$", re.IGNORECASE)
_GENERIC_DIRS = re.compile(r"feff|xanes|^calc|^run$|^input$|^relax", re.IGNORECASE)

_SNIFF_BYTES = 16384
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"


def format_filter() -> str:
    """A Qt file-dialog filter listing every readable format.

    Returns:
        ``"Structures (*.cif ... POSCAR* ...);;Crystallographic Information File
        (*.cif *.mcif);;...;;All files (*)"`` (plain text, no Qt import).
    """
    every: list[str] = []
    parts: list[str] = []
    for _, patterns, description in SUPPORTED_FORMATS:
        for pattern in patterns:
            if pattern not in every:
                every.append(pattern)
        parts.append(f"{description} ({' '.join(patterns)})")
    return ";;".join([f"Structures ({' '.join(every)})", *parts, "All files (*)"])


def _pattern_rank(pattern: str) -> int:
    # Exact names ("feff.inp") beat extensions ("*.cif"), which beat prefixes
    # ("POSCAR*"), so "POSCAR.cif" is read as a CIF and "feff.inp" never sniffed.
    if not any(c in pattern for c in "*?["):
        return 0
    if pattern.startswith("*.") and not any(c in pattern[2:] for c in "*?["):
        return 1
    return 2


_RANKED_PATTERNS: list[tuple[int, str, str]] = sorted(
    (_pattern_rank(p), p, name) for name, patterns, _ in SUPPORTED_FORMATS for p in patterns)


def _format_from_name(path: Path) -> str | None:
    file_name = path.name.lower()
    for _, pattern, name in _RANKED_PATTERNS:
        if fnmatch.fnmatchcase(file_name, pattern.lower()):
            return None if pattern in _AMBIGUOUS_PATTERNS else name
    return None


def _sniff(text: str) -> str | None:
    """Guess a format from the start of a text file (None when nothing fits)."""
    lines = [line.rstrip() for line in text.splitlines()]
    upper = text.upper()
    # FEFF: both cards must be present; "ATOMS" alone is too common a word.
    if re.search(r"^\s*POTENTIALS\b", upper, re.MULTILINE) and re.search(r"^\s*ATOMS\b", upper, re.MULTILINE):
        return "feff"
    if re.search(r"^\s*data_", text, re.MULTILINE) and ("_cell_length" in text or "_atom_site" in text):
        return "cif"
    if re.search(r"^(ATOM  |HETATM|CRYST1)", text, re.MULTILINE):
        return "pdb"
    if len(lines) >= 3 and re.fullmatch(r"\s*\d+\s*", lines[0]):
        if "lattice=" in lines[1].lower() or "properties=" in lines[1].lower():
            return "extxyz"
        # First column: a symbol or label ("Fe", "Fe1") or an atomic number ("26").
        if re.fullmatch(rf"\s*(?:[A-Za-z]{{1,3}}\w*|\d{{1,3}})\s+{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}.*", lines[2]):
            return "xyz"
    # POSCAR: a title, a scale factor, then three lattice vectors.
    if len(lines) >= 5 and re.fullmatch(rf"\s*{_FLOAT}(\s+{_FLOAT}){{0,2}}\s*", lines[1]) and all(
            re.fullmatch(rf"\s*{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}\s*", line) for line in lines[2:5]):
        return "vasp"
    return None


def detect_format(path: str | Path) -> str:
    """Name of the reader for ``path`` (a key of :data:`SUPPORTED_FORMATS`).

    The file name decides when it is specific; otherwise the content is sniffed,
    and anything unrecognised goes to ASE's own format detection ("ase").
    """
    path = Path(path)
    name = _format_from_name(path)
    if name is not None:
        return name
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return "ase"
    if b"\x00" in head:  # binary (e.g. an ASE .traj without its extension)
        return "ase"
    return _sniff(head.decode("utf-8", errors="replace")) or "ase"


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
    module_name, function_name = _READERS[name]
    return getattr(importlib.import_module(module_name), function_name)


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
