"""CIF reader (pymatgen), with symmetry expansion and a clear refusal of disorder."""

from __future__ import annotations

import io
import re
import warnings
from collections import OrderedDict
from pathlib import Path

from model_core.io.errors import StructureReadError
from model_core.types import Structure

# pymatgen warnings that say nothing the user can act on.
_NOISE = (
    "Skipping relative stoichiometry check",
    "Issues encountered while parsing CIF",  # repeats the individual warnings verbatim
    "is not a valid",  # deprecation-style chatter about keys
    "used.",  # "Spacegroup from _symmetry_space_group_name_H-M used.": routine, the symbol is enough
)

_MAX_LISTED_SITES = 6


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Older CIFs from databases are often Latin-1 (author names, Å signs).
        return raw.decode("latin-1")


def _header_value(text: str, *keys: str) -> str:
    """First value of one of ``keys`` in the CIF text ("" when absent), quotes stripped."""
    for key in keys:
        match = re.search(rf"^\s*{re.escape(key)}\s+(.+?)\s*$", text, re.MULTILINE | re.IGNORECASE)
        if match:
            value = match.group(1).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1].strip()
            if value and value not in ("?", "."):
                return value
    return ""


def _disorder_message(structure) -> str:
    """One-line description of the partially occupied sites of a pymatgen Structure."""
    described: "OrderedDict[str, str]" = OrderedDict()
    n_disordered = 0
    for k, site in enumerate(structure):
        species = site.species
        if site.is_ordered and abs(species.num_atoms - 1.0) < 1e-6:
            continue
        n_disordered += 1
        label = getattr(site, "label", None) or f"{k}"
        if label not in described:
            occupancies = ", ".join(f"{el} {amount:g}" for el, amount in species.items())
            vacancy = 1.0 - species.num_atoms
            if vacancy > 1e-6:
                occupancies += f", vacancy {vacancy:g}"
            described[label] = f"{label} ({occupancies})"
    listed = list(described.values())
    text = ", ".join(listed[:_MAX_LISTED_SITES])
    if len(listed) > _MAX_LISTED_SITES:
        text += f", ... ({len(listed) - _MAX_LISTED_SITES} more)"
    return (f"partial occupancy on {n_disordered} of {len(structure)} sites: {text} "
            "— order the structure first (e.g. pick one configuration or build a supercell)")


def read_cif(path: Path) -> Structure:
    """Read the first structure of a CIF file.

    Symmetry operations are applied (the full conventional cell as given in the
    file, not reduced to a primitive cell). pymatgen's warnings are captured;
    the meaningful ones go to ``info["warnings"]``.

    Args:
        path: the CIF file.

    Returns:
        A periodic structure; ``info`` may hold ``spacegroup`` (H-M symbol from
        the file), ``spacegroup_number``, ``data_block`` and ``warnings``.

    Raises:
        StructureReadError: no structure in the file, disorder, or non-element sites.
    """
    from pymatgen.io.cif import CifParser

    from model_core.io import check_size
    from model_core.io.convert import from_pymatgen

    text = _read_text(path)
    if not text.strip():
        raise StructureReadError(path, "the file is empty")
    if "_atom_site" not in text.lower():
        raise StructureReadError(path, "not a valid CIF: no _atom_site loop with atom positions")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(io.StringIO(text))
            structures = parser.parse_structures(primitive=False, on_error="warn")
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StructureReadError(path, f"not a valid CIF ({detail})") from exc
    messages: list[str] = []
    for record in caught:
        if issubclass(record.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            continue
        for line in str(record.message).splitlines():
            line = line.strip()
            if line and not any(noise in line for noise in _NOISE) and line not in messages:
                messages.append(line)
    if not structures:
        reason = f" ({messages[-1]})" if messages else ""
        raise StructureReadError(path, f"not a valid CIF: no structure could be built{reason}")
    if len(structures) > 1:
        messages.append(f"the file holds {len(structures)} structures; the first was read")
    structure = structures[0]
    check_size(path, len(structure))
    if not structure.is_ordered or any(abs(site.species.num_atoms - 1.0) > 1e-6 for site in structure):
        raise StructureReadError(path, _disorder_message(structure))
    try:
        result = from_pymatgen(structure, source=str(path))
    except ValueError as exc:
        raise StructureReadError(path, str(exc)) from exc
    info: dict = {"warnings": tuple(messages)}
    symbol = _header_value(text, "_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt")
    number = _header_value(text, "_symmetry_Int_Tables_number", "_space_group_IT_number")
    block = re.search(r"^\s*data_(\S*)", text, re.MULTILINE)
    if symbol:
        info["spacegroup"] = symbol
    if number.isdigit():
        info["spacegroup_number"] = int(number)
    if block and block.group(1):
        info["data_block"] = block.group(1)
    return result.replace(info=info)
