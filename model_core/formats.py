"""The file-format registry: which files are structures, which are spectra, and who reads them.

One table per kind, in the spirit of ASE's ``ioformats``: each
:class:`FormatEntry` has a name, a description, file-name patterns, an optional
sniffer looking at the first kilobytes, and the ``module:function`` of its
reader, imported only when a file of that format is read. So classifying a
file never imports pymatgen, ASE, larch or torch.

Usage::

    from model_core import formats

    formats.classify("CuO.cif")          # -> "structure"
    formats.classify("cu_metal.xdi")     # -> "spectrum"
    formats.classify("notes.pdf")        # -> None (neither)
    formats.structure_format("POSCAR")   # -> "vasp"
    formats.spectrum_format("scan.dat")  # -> "columns"
    formats.load_reader(formats.SPECTRUM_FORMATS["xdi"])   # the reader function

:mod:`model_core.io` and :mod:`model_core.spectra.measured` read through these
tables; the GUI's open/drop handling and every CLI classify with
:func:`classify`, and file dialogs take their filters from :func:`file_filter`.
"""

from __future__ import annotations

import fnmatch
import gzip
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

__all__ = [
    "SPECTRUM_FORMATS",
    "STRUCTURE_FORMATS",
    "FormatEntry",
    "classify",
    "file_filter",
    "load_reader",
    "read_head",
    "spectrum_format",
    "structure_format",
]

Kind = Literal["structure", "spectrum"]

SNIFF_BYTES = 16384
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"


@dataclass(frozen=True)
class FormatEntry:
    """One file format.

    Attributes:
        name: short key ("cif", "xdi", ...), also stored as the data's ``format``.
        kind: "structure" or "spectrum".
        description: for file-dialog filters (no parentheses: Qt parses them).
        patterns: case-insensitive globs on the file name that decide the format.
            Exact names ("feff.inp") beat extensions ("*.cif"), which beat
            prefixes ("POSCAR*").
        reader: ``"module:function"``, imported by :func:`load_reader` on first use.
        sniff: text of the file's start -> whether it is this format; None: the
            name alone decides.
        hints: globs that say nothing definite ("*.inp", "*.dat"): a matching
            file is sniffed first and only falls back to this format.
    """

    name: str
    kind: Kind
    description: str
    patterns: tuple[str, ...]
    reader: str
    sniff: Callable[[str], bool] | None = None
    hints: tuple[str, ...] = ()

    @property
    def globs(self) -> tuple[str, ...]:
        """Every pattern, deciding or hinting (for file dialogs)."""
        return self.patterns + self.hints


# --------------------------------------------------------------------------- sniffers

def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def _first_line(text: str) -> str:
    stripped = text.lstrip("\ufeff").lstrip()
    return stripped.splitlines()[0] if stripped else ""


def _is_feff_inp(text: str) -> bool:
    # Both cards must be present; "ATOMS" alone is too common a word.
    upper = text.upper()
    return bool(re.search(r"^\s*POTENTIALS\b", upper, re.MULTILINE)
                and re.search(r"^\s*ATOMS\b", upper, re.MULTILINE))


def _is_cif(text: str) -> bool:
    return bool(re.search(r"^\s*data_", text, re.MULTILINE)) and ("_cell_length" in text or "_atom_site" in text)


def _is_pdb(text: str) -> bool:
    return bool(re.search(r"^(ATOM  |HETATM|CRYST1)", text, re.MULTILINE))


def _xyz_kind(text: str) -> str | None:
    lines = _lines(text)
    if len(lines) < 3 or not re.fullmatch(r"\s*\d+\s*", lines[0]):
        return None
    if "lattice=" in lines[1].lower() or "properties=" in lines[1].lower():
        return "extxyz"
    # First column: a symbol or label ("Fe", "Fe1") or an atomic number ("26").
    if re.fullmatch(rf"\s*(?:[A-Za-z]{{1,3}}\w*|\d{{1,3}})\s+{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}.*", lines[2]):
        return "xyz"
    return None


def _is_poscar(text: str) -> bool:
    # A title, a scale factor, then three lattice vectors.
    lines = _lines(text)
    return len(lines) >= 5 and bool(re.fullmatch(rf"\s*{_FLOAT}(\s+{_FLOAT}){{0,2}}\s*", lines[1])) and all(
        re.fullmatch(rf"\s*{_FLOAT}\s+{_FLOAT}\s+{_FLOAT}\s*", line) for line in lines[2:5])


def _is_poscar_strictly(text: str) -> bool:
    # A three-column table with a header line also passes _is_poscar; a real
    # POSCAR has its "Direct"/"Cartesian" (or "Selective dynamics") line by line 8.
    return _is_poscar(text) and any(
        re.match(r"\s*[DdCcKkSs]", line) for line in _lines(text)[5:9])


_FEFF_XMU_HEADER = re.compile(r"^#\s*omega\s+e\s+k\s+mu\s+mu0\s+chi", re.IGNORECASE | re.MULTILINE)
#: First line of the "9809" format of KEK-PF and sister facilities (SPring-8,
#: SAGA-LS, Aichi SR): "  9809     KEK-PF   BL9A".
_PF9809_FIRST = re.compile(r"^\s*9809\s+\S+")
_ANGLE_HEADER = re.compile(r"angle\s*\(\s*[co]\s*\)", re.IGNORECASE)


def _is_athena(text: str) -> bool:
    return "athena project" in _first_line(text).lower()


def _is_xdi(text: str) -> bool:
    return bool(re.match(r"#\s*XDI", _first_line(text), re.IGNORECASE))


def _is_feff_xmu(text: str) -> bool:
    return bool(_FEFF_XMU_HEADER.search(text))


def _is_fdmnes(text: str) -> bool:
    top = "\n".join(text.splitlines()[:12])
    return "fdmnes" in top.lower() or bool(re.search(r"^\s*energy\s+<xanes>", top, re.IGNORECASE | re.MULTILINE))


def _is_pf9809(text: str) -> bool:
    return bool(_PF9809_FIRST.match(text.lstrip("\ufeff"))) or (
        bool(_ANGLE_HEADER.search(text)) and bool(re.search(r"\bD\s*=\s*\d", text)))


def _is_column_table(text: str) -> bool:
    """At least 10 consecutive rows of the same number (>= 2) of numbers."""
    run, width = 0, 0
    for line in text.splitlines()[:-1]:  # the last line may be cut by the sniff size
        fields = re.split(r"[\s,;]+", line.strip())
        numeric = len(fields) >= 2 and all(re.fullmatch(_FLOAT, f) for f in fields)
        if numeric and len(fields) == width:
            run += 1
        else:
            run, width = (1, len(fields)) if numeric else (0, 0)
        if run >= 10:
            return True
    return False


# --------------------------------------------------------------------------- the tables

def _entries(*entries: FormatEntry) -> dict[str, FormatEntry]:
    return {entry.name: entry for entry in entries}


#: Structure formats, in the order file dialogs list them.
STRUCTURE_FORMATS: dict[str, FormatEntry] = _entries(
    FormatEntry("cif", "structure", "Crystallographic Information File", ("*.cif", "*.mcif"),
                "model_core.io.cif:read_cif", _is_cif),
    FormatEntry("vasp", "structure", "VASP POSCAR/CONTCAR", ("POSCAR*", "CONTCAR*", "*.vasp", "*.poscar"),
                "model_core.io.ase_formats:read_poscar", _is_poscar),
    FormatEntry("xyz", "structure", "XYZ, element symbols or atomic numbers", ("*.xyz",),
                "model_core.io.xyz:read_xyz", lambda text: _xyz_kind(text) == "xyz"),
    FormatEntry("extxyz", "structure", "Extended XYZ", ("*.extxyz",),
                "model_core.io.xyz:read_xyz", lambda text: _xyz_kind(text) == "extxyz"),
    FormatEntry("feff", "structure", "FEFF input, POTENTIALS and ATOMS cards", ("feff.inp",),
                "model_core.io.feff:read_feff_inp", _is_feff_inp, hints=("*.inp",)),
    FormatEntry("pdb", "structure", "Protein Data Bank", ("*.pdb", "*.ent"),
                "model_core.io.ase_formats:read_pdb", _is_pdb),
    FormatEntry("ase", "structure", "Other formats read by ASE",
                ("*.traj", "*.xsf", "*.cell", "*.gen", "*.cube", "*.pwi", "*.res", "*.sdf",
                 "*.mol", "*.gjf", "*.com", "geometry.in"),
                "model_core.io.ase_formats:read_with_ase"),
)

#: Structure sniffers in the order they are tried (FEFF first: its cards are unmistakable).
_STRUCTURE_SNIFF_ORDER = ("feff", "cif", "pdb", "extxyz", "xyz", "vasp")
#: The ones a table of numbers cannot imitate.
_STRONG_STRUCTURE_SNIFFERS = ("feff", "cif", "pdb", "extxyz", "xyz")

#: Spectrum formats.
SPECTRUM_FORMATS: dict[str, FormatEntry] = _entries(
    FormatEntry("xdi", "spectrum", "XDI", ("*.xdi",), "model_core.spectra.measured.xdi:read", _is_xdi),
    FormatEntry("athena", "spectrum", "Athena project", ("*.prj",),
                "model_core.spectra.measured.athena:read", _is_athena),
    FormatEntry("pf9809", "spectrum", "KEK-PF 9809 beamline file, monochromator angles", (),
                "model_core.spectra.measured.pf9809:read", _is_pf9809),
    FormatEntry("feff", "spectrum", "FEFF xmu.dat", ("xmu.dat",),
                "model_core.spectra.measured.simulations:read_feff", _is_feff_xmu),
    FormatEntry("fdmnes", "spectrum", "FDMNES output", (),
                "model_core.spectra.measured.simulations:read_fdmnes", _is_fdmnes),
    FormatEntry("columns", "spectrum", "Column files", (), "model_core.spectra.measured.columns:read",
                _is_column_table, hints=("*.xmu", "*.nor", "*.chir", "*.dat", "*.txt", "*.csv", "*.tsv", "*.asc")),
)

#: Spectrum sniffers in the order they are tried; "columns" is the fallback.
_SPECTRUM_SNIFF_ORDER = ("athena", "xdi", "pf9809", "feff", "fdmnes")
#: Names that are always spectra, never structures, whatever the content: the deciding
#: patterns above and the column files Athena/IFEFFIT export (mu, normalized mu, chi(R)).
_SPECTRUM_ONLY = (*(p for entry in SPECTRUM_FORMATS.values() for p in entry.patterns), "*.xmu", "*.nor", "*.chir")


def _rank(pattern: str) -> int:
    if not any(c in pattern for c in "*?["):
        return 0
    if pattern.startswith("*.") and not any(c in pattern[2:] for c in "*?["):
        return 1
    return 2


def _by_name(path: Path, table: dict[str, FormatEntry], *, hints: bool) -> FormatEntry | None:
    name = path.name.lower()
    ranked = sorted(((_rank(p), p, entry) for entry in table.values()
                     for p in (entry.globs if hints else entry.patterns)), key=lambda item: item[:2])
    for _, pattern, entry in ranked:
        if fnmatch.fnmatchcase(name, pattern.lower()):
            return entry
    return None


def read_head(path: str | Path, size: int = SNIFF_BYTES) -> str | None:
    """The decoded start of a file (gunzipped if compressed); None for binary or unreadable files."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(size)
        if head[:2] == b"\x1f\x8b":
            # Athena writes gzip-compressed projects.
            with gzip.open(path, "rb") as handle:
                head = handle.read(size)
    except (OSError, EOFError):
        return None
    if b"\x00" in head:
        return None
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def _sniff(text: str | None, table: dict[str, FormatEntry], order: tuple[str, ...]) -> str | None:
    if text is None:
        return None
    for name in order:
        if table[name].sniff(text):
            return name
    return None


def structure_format(path: str | Path) -> str:
    """Name of the structure reader for ``path`` (a key of :data:`STRUCTURE_FORMATS`).

    A specific file name decides; otherwise the content is sniffed, and
    anything unrecognised goes to ASE's own format detection ("ase").
    """
    path = Path(path)
    entry = _by_name(path, STRUCTURE_FORMATS, hints=False)
    if entry is not None:
        return entry.name
    return _sniff(read_head(path), STRUCTURE_FORMATS, _STRUCTURE_SNIFF_ORDER) or "ase"


def spectrum_format(path: str | Path, text: str | None = None) -> str:
    """Name of the spectrum reader for ``path`` (a key of :data:`SPECTRUM_FORMATS`).

    A ``.prj`` name decides; otherwise the content is sniffed (XDI,
    Athena, KEK-PF 9809, FEFF xmu, FDMNES); anything else is a column file.
    ``text``: the file's start when the caller has read it already.
    """
    path = Path(path)
    entry = _by_name(path, SPECTRUM_FORMATS, hints=False)
    if entry is not None and entry.name == "athena":
        return entry.name
    text = read_head(path) if text is None else text
    found = _sniff(text, SPECTRUM_FORMATS, _SPECTRUM_SNIFF_ORDER)
    if found is not None:
        return found
    return entry.name if entry is not None else "columns"


def classify(path: str | Path) -> Kind | None:
    """"structure", "spectrum", or None when neither the name nor the content says.

    Order: spectrum-only names (``*.xdi``, ``*.prj``, ``*.xmu``, ``xmu.dat``, ...)
    and specific structure names (``*.cif``, ``POSCAR*``, ``feff.inp``, ...) decide
    first. Column-file names (``*.dat``, ``*.txt``, ``*.csv``, ...) are spectra
    unless the content is unmistakably a structure (CIF, FEFF input, PDB, XYZ: a
    three-column table with a header line looks like a POSCAR, so POSCAR content
    does not count here). Other names are sniffed: a recognised spectrum or
    structure, then any table of numbers as a spectrum, then POSCAR content.
    A missing file is classified by its name alone.
    """
    path = Path(path)
    name = path.name.lower()
    if any(fnmatch.fnmatchcase(name, p) for p in _SPECTRUM_ONLY):
        return "spectrum"
    if _by_name(path, STRUCTURE_FORMATS, hints=False) is not None:
        return "structure"
    text = read_head(path) if path.is_file() else None
    hinted = _by_name(path, SPECTRUM_FORMATS, hints=True)
    if _sniff(text, SPECTRUM_FORMATS, _SPECTRUM_SNIFF_ORDER) is not None:
        return "spectrum"
    if _sniff(text, STRUCTURE_FORMATS, _STRONG_STRUCTURE_SNIFFERS) is not None:
        return "structure"
    if hinted is not None:
        return "spectrum"
    if _by_name(path, STRUCTURE_FORMATS, hints=True) is not None:
        return "structure"  # "*.inp" that is not FEFF input: the structure reader says why
    if text is not None and _is_column_table(text):
        return "spectrum"
    if text is not None and _is_poscar_strictly(text):
        return "structure"
    return None


def load_reader(entry: FormatEntry) -> Callable:
    """Import and return the reader function of ``entry``."""
    module_name, function_name = entry.reader.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def file_filter(kind: Kind) -> str:
    """A Qt file-dialog filter listing every format of ``kind`` (plain text, no Qt import).

    Returns:
        e.g. ``"Structures (*.cif *.mcif POSCAR* ...);;Crystallographic Information
        File (*.cif *.mcif);;...;;All files (*)"``. Formats recognised only by
        content are reachable through "All files".
    """
    table = STRUCTURE_FORMATS if kind == "structure" else SPECTRUM_FORMATS
    every: list[str] = []
    parts: list[str] = []
    for entry in table.values():
        if not entry.globs:
            continue
        for pattern in entry.globs:
            if pattern not in every:
                every.append(pattern)
        parts.append(f"{entry.description} ({' '.join(entry.globs)})")
    title = "Structures" if kind == "structure" else "Spectra"
    return ";;".join([f"{title} ({' '.join(every)})", *parts, "All files (*)"])
