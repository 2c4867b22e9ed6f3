"""Parsers for simulated XANES spectra: FEFF ``xmu.dat`` and FDMNES outputs.

Pure text parsing (numpy only, no larch). Every reader comes in two flavours:
``parse_*(text, source)`` works on the file's text (used for archive members
that never touch the disk) and ``read_*(path)`` reads a file. All raise
:class:`ValueError` with a one-line message naming the file and the problem.

These are the project's only FEFF ``xmu.dat`` and FDMNES readers; the checks that
a FEFF run finished (:func:`model_core.feff.xmu.validate_xmu`) are made on top of
:func:`parse_feff_xmu_table` and :func:`feff_xmu_spectrum`.

Energy references
-----------------
* FEFF ``xmu.dat``: ``omega`` is the absolute photon energy, ``e`` the energy
  relative to the edge FEFF placed (its Fermi-level based edge), so
  ``E_edge = omega - e`` (constant over the rows).
* FDMNES: the header line ``values = E_edge, Z, ...`` gives the tabulated edge
  energy ``E_edge``. Without the ``Energpho`` keyword FDMNES writes energies
  relative to ``E_edge`` (the 2022 ``out.dat``/``out_conv.dat`` files start at
  -25/-40 eV with E_edge = 20000 eV), with it absolute photon energies (the
  XANESNET ``raw/`` and ``spectra/`` files run 7097-7172 eV, E_edge = 7112 eV).
  The files do not say which, so the rule is (see :func:`energies_are_absolute`):
  with a known ``E_edge > 100`` eV the energies are absolute when their minimum
  exceeds ``E_edge / 2`` (a relative XANES scale never reaches half an edge
  energy); without ``E_edge`` they are absolute when all are positive and the
  median exceeds 500 eV (relative scales stay within a few hundred eV of 0).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from model_core.types import Spectrum

__all__ = [
    "FEFF_XMU_COLUMNS",
    "energies_are_absolute",
    "feff_xmu_spectrum",
    "parse_fdmnes",
    "parse_fdmnes_header",
    "parse_feff_xmu",
    "parse_feff_xmu_table",
    "read_fdmnes",
    "read_feff_xmu",
    "read_feff_xmu_table",
]

#: Columns of FEFF's xmu.dat in file order.
FEFF_XMU_COLUMNS = ("omega", "e", "k", "mu", "mu0", "chi")

# nan and inf parse as numbers so that their rows meet the explicit "NaN or infinite" check.
_NUMBER = re.compile(r"^[+-]?((\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?|nan|inf(inity)?)$", re.IGNORECASE)


def _is_number(token: str) -> bool:
    return bool(_NUMBER.match(token))


def _to_float(token: str) -> float:
    # Fortran writes exponents as 1.0D+03 now and then.
    return float(token.replace("D", "E").replace("d", "e"))


def _read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


def _check_increasing(energy: np.ndarray, values: list[np.ndarray], source: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sort by energy and drop exact duplicate energies; refuse non-finite data."""
    if not np.all(np.isfinite(energy)):
        raise ValueError(f"{source}: energies contain NaN or infinite values")
    order = np.argsort(energy, kind="stable")
    energy = energy[order]
    values = [v[order] for v in values]
    keep = np.concatenate([[True], np.diff(energy) > 0])
    if not keep.all():
        energy = energy[keep]
        values = [v[keep] for v in values]
    return energy, values


# ---------------------------------------------------------------------------
# FEFF
# ---------------------------------------------------------------------------

def parse_feff_xmu_table(text: str, source: str = "<text>") -> dict[str, np.ndarray]:
    """Parse the columns of a FEFF ``xmu.dat``.

    Args:
        text: the file's content. Comment lines start with ``#``.
        source: name used in error messages.

    Returns:
        dict with (G,) float64 arrays ``omega`` (absolute eV), ``e`` (eV relative
        to the edge), ``k`` (1/Å), ``mu``, ``mu0``, ``chi``, rows in file order,
        plus ``xsedge50``: a 0-d array with FEFF's normalization constant
        (``xsedge+ 50, used to normalize mu``) or NaN when absent.

    Raises:
        ValueError: no data rows, rows with fewer than 6 numbers, or non-finite values.
    """
    rows: list[list[float]] = []
    xsedge = math.nan
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if "xsedge" in stripped and "normalize" in stripped:
                tokens = stripped.split()
                if tokens and _is_number(tokens[-1]):
                    xsedge = _to_float(tokens[-1])
            continue
        tokens = stripped.split()
        if len(tokens) < 6 or not all(_is_number(t) for t in tokens[:6]):
            raise ValueError(f"{source}: line {number} is not a row of 6 numbers: {stripped[:60]!r}")
        rows.append([_to_float(t) for t in tokens[:6]])
    if len(rows) < 2:
        raise ValueError(f"{source}: no data rows (not a FEFF xmu.dat?)")
    table = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{source}: the data contain NaN or infinite values")
    result = {name: table[:, i].copy() for i, name in enumerate(FEFF_XMU_COLUMNS)}
    result["xsedge50"] = np.array(xsedge)
    return result


def read_feff_xmu_table(path: str | Path) -> dict[str, np.ndarray]:
    """:func:`parse_feff_xmu_table` of a file."""
    return parse_feff_xmu_table(_read_text(path), str(path))


def parse_feff_xmu(text: str, source: str = "<text>") -> Spectrum:
    """Parse a FEFF ``xmu.dat`` into a :class:`Spectrum` (see :func:`feff_xmu_spectrum`).

    Raises:
        ValueError: unreadable file or inconsistent omega/e columns.
    """
    return feff_xmu_spectrum(parse_feff_xmu_table(text, source), source)


def feff_xmu_spectrum(table: dict[str, np.ndarray], source: str = "<text>") -> Spectrum:
    """The :class:`Spectrum` of a :func:`parse_feff_xmu_table` result.

    Rows are sorted by energy and exact duplicate energies dropped.

    Returns:
        Spectrum with absolute energies (``omega``, eV), ``mu`` as FEFF wrote it
        (normalized by FEFF at edge + 50 eV), ``e0_ev = median(omega - e)`` (the
        edge energy FEFF used) and metadata ``energy_rel_ev`` (tuple, eV relative
        to the edge, same order as ``energy_ev``), ``xsedge50``, ``format`` and
        ``source``.

    Raises:
        ValueError: ``omega - e`` is not constant (the columns are not FEFF's).
    """
    omega, rel, mu = table["omega"], table["e"], table["mu"]
    edge = omega - rel
    e0 = float(np.median(edge))
    # omega - e is constant up to the 3 decimals FEFF prints; more means the
    # columns are not what we think they are.
    if np.max(np.abs(edge - e0)) > 0.05:
        raise ValueError(f"{source}: omega - e is not constant (not a FEFF xmu.dat?)")
    omega, (rel, mu) = _check_increasing(omega, [rel, mu], source)
    return Spectrum(
        energy_ev=omega, mu=mu, label=Path(source).parent.name or Path(source).name,
        energy_reference="absolute", e0_ev=e0,
        metadata={"source": source, "format": "feff-xmu", "energy_rel_ev": tuple(rel.tolist()),
                  "xsedge50": float(table["xsedge50"])},
    )


def read_feff_xmu(path: str | Path) -> Spectrum:
    """Read a FEFF ``xmu.dat`` (see :func:`parse_feff_xmu`)."""
    return parse_feff_xmu(_read_text(path), str(path))


# ---------------------------------------------------------------------------
# FDMNES
# ---------------------------------------------------------------------------

def parse_fdmnes_header(line: str) -> dict[str, Any]:
    """Parse one FDMNES ``values = names`` header line.

    ``" 7112.000 26 1 ... = E_edge, Z, n_edge, ..."`` gives
    ``{"E_edge": 7112.0, "Z": 26.0, ...}``. A leading ``#`` is ignored. When
    there are more values than names (``0.69 0.0 = Shift``) the last name takes
    the remaining values as a tuple; names without a value are left out.

    Returns:
        dict name -> float (or tuple of floats); empty when the line has no ``=``
        or its left side is not all numbers.
    """
    body = line.strip().lstrip("#").strip()
    if "=" not in body:
        return {}
    left, right = body.split("=", 1)
    tokens = left.split()
    if not tokens or not all(_is_number(t) for t in tokens):
        return {}
    values = [_to_float(t) for t in tokens]
    names = [n.strip() for n in right.split(",") if n.strip()]
    header: dict[str, Any] = {}
    for i, name in enumerate(names):
        if i >= len(values):
            break
        if i == len(names) - 1 and len(values) > len(names):
            rest = values[i:]
            header[name] = tuple(rest)
        else:
            header[name] = values[i]
    return header


def energies_are_absolute(energy: np.ndarray, e_edge: float | None) -> bool:
    """Decide whether FDMNES energies are absolute photon energies.

    Rule: with a known edge energy above 100 eV the scale is absolute when the
    lowest energy exceeds half the edge energy; otherwise absolute when every
    energy is positive and the median exceeds 500 eV.

    Args:
        energy: (G,) energies in eV as written in the file.
        e_edge: the header's ``E_edge`` in eV, or None.
    """
    energy = np.asarray(energy, dtype=np.float64)
    if e_edge is not None and e_edge > 100.0:
        return bool(energy.min() > 0.5 * e_edge)
    return bool(energy.min() > 0.0 and np.median(energy) > 500.0)


def parse_fdmnes(text: str, source: str = "<text>") -> Spectrum:
    """Parse an FDMNES spectrum file.

    Layouts recognised (``metadata["layout"]``):

    * ``"raw"``: FDMNES ``out.dat``: optional ``#`` comment lines, a header line
      ``values = E_edge, Z, n_edge, ...`` (with ``E_cut`` in older versions,
      ``E_Fermi`` in newer ones), a column header ``Energy <xanes> ...``, data.
    * ``"conv"``: FDMNES ``out_conv.dat``: ``# values = E_edge, Gamma_hole,
      Gamma_max, E_cut`` and ``# values = Shift`` lines, column header, data.
    * ``"xanesnet"``: two header lines ``FDMNES`` and ``energy <xanes>``, data in
      absolute eV, no edge energy.

    Returns:
        Spectrum of the ``<xanes>`` column (the second column when not named),
        ``energy_reference`` "absolute" or "edge" by :func:`energies_are_absolute`,
        ``e0_ev = E_edge`` when the header gives it. Metadata: ``header`` (all
        parsed header values), ``layout``, ``columns``, ``e_edge_ev``,
        ``fermi_rel_ev`` (the raw file's ``E_Fermi``/``E_cut``: the Fermi level
        relative to ``E_edge``; None for convolved files, whose ``E_cut`` is the
        convolution's cut-off parameter), ``source`` and ``format``.

    Raises:
        ValueError: no column header/data, ragged rows, non-finite values.
    """
    header: dict[str, Any] = {}
    columns: list[str] = []
    rows: list[list[float]] = []
    saw_fdmnes_title = False
    n_columns = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        tokens = stripped.split()
        if not rows and not (all(_is_number(t) for t in tokens)) and not (columns and _is_number(tokens[0])):
            # Still in the header block.
            if "=" in stripped:
                header.update(parse_fdmnes_header(stripped))
            elif stripped.startswith("#"):
                continue
            elif stripped.upper() == "FDMNES":
                saw_fdmnes_title = True
            elif tokens[0].lower() == "energy":
                columns = tokens
            else:
                raise ValueError(f"{source}: unexpected header line {number}: {stripped[:60]!r}")
            continue
        if not all(_is_number(t) for t in tokens):
            raise ValueError(f"{source}: line {number} is not numeric: {stripped[:60]!r}")
        if not rows:
            n_columns = len(tokens)
            if n_columns < 2:
                raise ValueError(f"{source}: data rows need at least 2 columns")
        elif len(tokens) != n_columns:
            raise ValueError(f"{source}: line {number} has {len(tokens)} columns, expected {n_columns}")
        rows.append([_to_float(t) for t in tokens])
    if not columns:
        raise ValueError(f"{source}: no 'Energy <xanes>' column header (not an FDMNES file?)")
    if len(rows) < 2:
        raise ValueError(f"{source}: no data rows")
    table = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{source}: the data contain NaN or infinite values")
    lowered = [c.lower() for c in columns]
    column = lowered.index("<xanes>") if "<xanes>" in lowered else 1
    if column >= table.shape[1]:
        column = 1
    energy, (mu,) = _check_increasing(table[:, 0], [table[:, column]], source)

    e_edge = header.get("E_edge")
    e_edge = float(e_edge) if isinstance(e_edge, float) else None
    if saw_fdmnes_title:
        layout = "xanesnet"
    elif "Z" in header or "n_edge" in header:
        layout = "raw"
    elif "Gamma_hole" in header or "Shift" in header:
        layout = "conv"
    else:
        layout = "unknown"
    fermi = None
    if layout == "raw":
        for key in ("E_Fermi", "E_cut"):
            if isinstance(header.get(key), float):
                fermi = float(header[key])
                break
    absolute = energies_are_absolute(energy, e_edge)
    return Spectrum(
        energy_ev=energy, mu=mu, label=Path(source).stem,
        energy_reference="absolute" if absolute else "edge",
        e0_ev=e_edge,
        metadata={"source": source, "format": "fdmnes", "layout": layout, "header": header,
                  "columns": tuple(columns), "e_edge_ev": e_edge, "fermi_rel_ev": fermi},
    )


def read_fdmnes(path: str | Path) -> Spectrum:
    """Read an FDMNES spectrum file (see :func:`parse_fdmnes`)."""
    return parse_fdmnes(_read_text(path), str(path))
