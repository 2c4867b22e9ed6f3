"""XYZ reader: plain XYZ (element symbols or atomic numbers) and extended XYZ.

Plain XYZ is parsed here rather than by ASE because real data sets (e.g. the
tmQM/XANESNET iron complexes) put the atomic NUMBER in the first column and
separate columns by tabs, which ASE's extxyz-based reader does not accept.
Extended XYZ (a ``Lattice=`` or ``Properties=`` comment line) goes to ASE.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_core.io.errors import StructureReadError
from model_core.types import Structure, atomic_number

_LABEL = re.compile(r"^([A-Za-z]{1,2})(?:[^A-Za-z].*)?$")


def _element(token: str) -> int:
    """Atomic number from an XYZ first column: "Fe", "fe", "26", "Fe1", "C_3"."""
    try:
        return atomic_number(token)
    except ValueError:
        pass
    # Labels such as "Fe1" or "O_2a": the element is the leading letters.
    match = _LABEL.match(token)
    if match:
        letters = match.group(1)
        for candidate in (letters, letters[:1]):
            try:
                return atomic_number(candidate)
            except ValueError:
                continue
    raise ValueError(f"not a chemical element: {token!r}")


def _is_extended(comment: str) -> bool:
    lowered = comment.lower()
    return "lattice=" in lowered or "properties=" in lowered


def _parse_plain(path: Path, lines: list[str]) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Parse every frame; return the last one.

    Returns:
        (numbers (N,), positions (N, 3) in Å, comment line, number of frames).
    """
    from model_core.io import check_size

    frames = 0
    start = 0
    last: tuple[np.ndarray, np.ndarray, str] | None = None
    while start < len(lines):
        header = lines[start].strip()
        if not header:
            start += 1
            continue
        try:
            n_atoms = int(header.split()[0])
        except ValueError:
            if last is None:
                raise StructureReadError(
                    path, f"line {start + 1}: expected the atom count, found {header[:40]!r}") from None
            break  # trailing text after complete frames: ignore it
        if n_atoms <= 0:
            raise StructureReadError(path, f"line {start + 1}: atom count must be positive, got {n_atoms}")
        # Check before parsing so a huge file is refused without allocating for it.
        check_size(path, n_atoms)
        body = lines[start + 2:start + 2 + n_atoms]
        if len(body) < n_atoms:
            if last is not None:
                break  # truncated trailing frame (a trajectory still being written)
            raise StructureReadError(
                path, f"the header announces {n_atoms} atoms but only {len(body)} atom lines follow")
        numbers = np.empty(n_atoms, dtype=np.int64)
        positions = np.empty((n_atoms, 3), dtype=np.float64)
        for k, line in enumerate(body):
            fields = line.split()  # split() handles tabs and repeated spaces alike
            line_no = start + 3 + k
            if len(fields) < 4:
                raise StructureReadError(
                    path, f"line {line_no}: expected 'element x y z', found {line.strip()[:60]!r}")
            try:
                numbers[k] = _element(fields[0])
            except ValueError:
                raise StructureReadError(path, f"line {line_no}: {fields[0]!r} is not a chemical element") from None
            try:
                # Fortran-style exponents (1.0D-3) appear in some old outputs.
                positions[k] = [float(f.replace("D", "E").replace("d", "e")) for f in fields[1:4]]
            except ValueError:
                raise StructureReadError(
                    path, f"line {line_no}: coordinates are not numbers: {line.strip()[:60]!r}") from None
        comment = lines[start + 1].strip() if start + 1 < len(lines) else ""
        last = (numbers, positions, comment)
        frames += 1
        start += 2 + n_atoms
    if last is None:
        raise StructureReadError(path, "no atoms found")
    return last[0], last[1], last[2], frames


def read_xyz(path: Path) -> Structure:
    """Read an XYZ or extended XYZ file (the last frame when there are several).

    Plain XYZ gives a molecule (no cell, no periodicity); the first column may be
    an element symbol, an atom label starting with one ("Fe1"), or an atomic
    number; columns may be separated by spaces or tabs. Extended XYZ with a
    ``Lattice=`` gives a periodic structure.

    Args:
        path: the file.

    Returns:
        The structure; ``info["comment"]`` holds the comment line and
        ``info["frames"]`` the number of frames when more than one.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    first = next((k for k, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise StructureReadError(path, "the file is empty")
    if first + 1 < len(lines) and _is_extended(lines[first + 1]):
        return _read_extended(path)
    numbers, positions, comment, frames = _parse_plain(path, lines[first:])
    info: dict = {"comment": comment, "warnings": ()}
    if frames > 1:
        info["frames"] = frames
        info["warnings"] = (f"the file holds {frames} frames; the last was read",)
    return Structure(atomic_numbers=numbers, positions=positions, source=str(path),
                     name=path.stem, info=info)


def _read_extended(path: Path) -> Structure:
    import ase.io

    from model_core.io.convert import from_ase

    try:
        images = ase.io.read(str(path), index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StructureReadError(path, f"not a valid extended XYZ file ({detail})") from exc
    if not images:
        raise StructureReadError(path, "no atoms found")
    try:
        structure = from_ase(images[-1], source=str(path), name=path.stem)
    except ValueError as exc:
        raise StructureReadError(path, str(exc)) from exc
    info = dict(structure.info)
    info["warnings"] = ()
    if len(images) > 1:
        info["frames"] = len(images)
        info["warnings"] = (f"the file holds {len(images)} frames; the last was read",)
    return structure.replace(info=info)

