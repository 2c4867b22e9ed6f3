"""Is a FEFF ``xmu.dat`` a usable result of a run? Checks on top of the one xmu.dat parser.

The file is read by :func:`model_core.spectra.simulated.parse_feff_xmu_table` and
:func:`~model_core.spectra.simulated.feff_xmu_spectrum`, the reader every other part of
the project uses (measured-spectra readers, training sources, the app), so a result
accepted here is always readable there. On top of the reader's rules (rows of 6
numbers, all finite, ``omega - e`` constant) a finished run must have at least
:data:`MIN_XMU_ROWS` rows, strictly increasing energies in file order, and some
non-zero ``mu``: a run that stopped early or diverged fails these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.feff.errors import InvalidXmuError
from model_core.spectra.simulated import feff_xmu_spectrum, parse_feff_xmu_table

__all__ = ["MIN_XMU_ROWS", "is_valid_xmu", "validate_xmu"]

#: Fewest data rows accepted in an xmu.dat. The presets' energy grid gives ~170-200
#: rows; a FEFF run that stopped early writes far fewer.
MIN_XMU_ROWS = 50


def validate_xmu(path: str | Path, min_rows: int = MIN_XMU_ROWS) -> dict[str, np.ndarray]:
    """Read and check a FEFF ``xmu.dat`` written by a run.

    Args:
        path: the file.
        min_rows: fewest data rows accepted.

    Returns:
        The :func:`~model_core.spectra.simulated.parse_feff_xmu_table` result: (G,)
        arrays ``omega``, ``e``, ``k``, ``mu``, ``mu0``, ``chi`` in file order and
        ``xsedge50``.

    Raises:
        InvalidXmuError: one line naming the file (by name) and the problem: not
            written, unreadable, not rows of 6 finite numbers (FEFF writes ``******``
            for overflowing fields), ``omega - e`` not constant, fewer than
            ``min_rows`` rows, energies not strictly increasing, or mu zero everywhere.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidXmuError(f"{path.name} was not written")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidXmuError(f"{path.name} is unreadable: {exc.strerror or exc}") from exc
    try:
        table = parse_feff_xmu_table(text, path.name)
        feff_xmu_spectrum(table, path.name)
    except ValueError as exc:
        raise InvalidXmuError(" ".join(str(exc).split())) from exc
    rows = len(table["omega"])
    if rows < min_rows:
        raise InvalidXmuError(f"{path.name} has {rows} data rows, expected at least {min_rows}")
    if np.any(np.diff(table["omega"]) <= 0):
        raise InvalidXmuError(f"{path.name}: energies are not strictly increasing")
    if not np.any(table["mu"] != 0):
        raise InvalidXmuError(f"{path.name}: mu is zero everywhere")
    return table


def is_valid_xmu(path: str | Path, min_rows: int = MIN_XMU_ROWS) -> bool:
    """Whether ``path`` is a usable xmu.dat (see :func:`validate_xmu`)."""
    try:
        validate_xmu(path, min_rows)
    except InvalidXmuError:
        return False
    return True
