"""FEFF ``feff.inp`` reader: the POTENTIALS and ATOMS cards, parsed directly.

A FEFF input describes a finite cluster in Cartesian Å around one absorber,
the atom whose potential index (ipot) is 0. POTENTIALS maps each ipot to an
atomic number; ATOMS lists ``x y z ipot [tag distance ...]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_core.io.errors import StructureReadError
from model_core.types import Structure, atomic_number

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# pymatgen-written inputs list the unit cell as comments "* 12 Cu 0.25 0.5 0.75".
_CELL_SITE = re.compile(rf"^\*\s*(\d+)\s+([A-Z][a-z]?)\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s*$")
_TITLE_ABC = re.compile(rf"^TITLE\s+abc\s*:\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})", re.IGNORECASE)
_TITLE_ANGLES = re.compile(rf"^TITLE\s+angles\s*:\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})", re.IGNORECASE)
_CARD = re.compile(r"^[A-Za-z_]")


def _strip_comment(line: str) -> str:
    """Remove FEFF comments: whole lines starting with '*', and text after '!' or '*'."""
    stripped = line.strip()
    if stripped.startswith("*"):
        return ""
    for mark in ("!", "*"):
        cut = stripped.find(mark)
        if cut >= 0:
            stripped = stripped[:cut].rstrip()
    return stripped


def read_feff_inp(path: Path) -> Structure:
    """Read the atom cluster of a FEFF input file.

    Args:
        path: a ``feff.inp``.

    Returns:
        A molecule (cell None) in Cartesian Å with ``absorber_index`` set to the
        ipot-0 atom. ``info`` holds ``edge`` (from the EDGE card) when present,
        ``title`` lines, and, for pymatgen-written inputs, ``feff_cell_sites``
        (tuples ``(i, element, fx, fy, fz)`` with 1-based ``i``, fractional
        coordinates) and ``feff_abc`` / ``feff_angles`` (Å / degrees).

    Raises:
        StructureReadError: no ATOMS card, or an atom refers to an undefined potential.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    potentials: dict[int, int] = {}
    atoms: list[tuple[float, float, float, int, int]] = []  # x, y, z, ipot, line number
    titles: list[str] = []
    cell_sites: list[tuple[int, str, float, float, float]] = []
    info: dict = {}
    card = None
    seen_atoms = False
    for line_no, raw in enumerate(text.splitlines(), start=1):
        site = _CELL_SITE.match(raw.strip())
        if site:
            cell_sites.append((int(site.group(1)), site.group(2), float(site.group(3)),
                               float(site.group(4)), float(site.group(5))))
            continue
        for pattern, key in ((_TITLE_ABC, "feff_abc"), (_TITLE_ANGLES, "feff_angles")):
            match = pattern.match(raw.strip())
            if match:
                info[key] = tuple(float(match.group(k)) for k in (1, 2, 3))
        line = _strip_comment(raw)
        if not line:
            continue
        if _CARD.match(line):
            keyword = line.split()[0].upper()
            if keyword == "END":
                break
            card = keyword
            if keyword == "TITLE":
                titles.append(line[5:].strip())
            elif keyword == "EDGE" and len(line.split()) > 1:
                info["edge"] = line.split()[1]
            elif keyword == "ATOMS":
                seen_atoms = True
            continue
        fields = line.split()
        if card == "POTENTIALS":
            try:
                ipot, z_field = int(fields[0]), fields[1]
                potentials[ipot] = atomic_number(z_field)
            except (IndexError, ValueError):
                raise StructureReadError(path, f"line {line_no}: bad POTENTIALS entry {line!r}") from None
        elif card == "ATOMS":
            try:
                x, y, z = (float(f) for f in fields[:3])
                ipot = int(fields[3])
            except (IndexError, ValueError):
                raise StructureReadError(path, f"line {line_no}: bad ATOMS entry {line!r}") from None
            atoms.append((x, y, z, ipot, line_no))
    if not seen_atoms or not atoms:
        raise StructureReadError(path, "no ATOMS card with atoms (FEFF inputs built from a CIF or "
                                       "RECIPROCAL card are not supported; export the cluster)")
    if not potentials:
        raise StructureReadError(path, "no POTENTIALS card: atomic numbers are unknown")
    from model_core.io import check_size

    check_size(path, len(atoms))
    numbers = np.empty(len(atoms), dtype=np.int64)
    for k, (_, _, _, ipot, line_no) in enumerate(atoms):
        if ipot not in potentials:
            raise StructureReadError(path, f"line {line_no}: potential {ipot} is not defined in POTENTIALS")
        numbers[k] = potentials[ipot]
    positions = np.array([a[:3] for a in atoms], dtype=np.float64)
    absorbers = [k for k, atom in enumerate(atoms) if atom[3] == 0]
    warnings: list[str] = []
    if not absorbers:
        warnings.append("no atom has potential 0, so no absorber is designated")
    elif len(absorbers) > 1:
        warnings.append(f"{len(absorbers)} atoms have potential 0; the first is taken as the absorber")
    if titles:
        info["title"] = tuple(titles)
    if cell_sites:
        info["feff_cell_sites"] = tuple(cell_sites)
    info["warnings"] = tuple(warnings)
    return Structure(atomic_numbers=numbers, positions=positions, source=str(path), name=path.stem,
                     absorber_index=absorbers[0] if absorbers else None, info=info)
