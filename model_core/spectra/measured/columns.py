"""Plain column files (whitespace, comma or tab separated, ``#`` comments), read with larch's ``read_ascii``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from model_core.spectra.larch_compat import import_larch, preserved_global_state
from model_core.spectra.measured.base import Table, fail
from model_core.types import atomic_number, element_symbol

#: A monochromator d-spacing in a header: "Mono : Si(111) D= 3.13551 A", "d_spacing: 3.1356".
_D_SPACING = re.compile(r"(?:\bD\s*=|d[-_ ]?spacing\s*[:=]?)\s*([0-9]*\.?[0-9]+)\s*(?:A\b|Å|ang)?", re.IGNORECASE)


def larch_columns(group: Any) -> dict[str, np.ndarray]:
    """The columns of a larch group by label (``col1``, ... when labels are missing)."""
    labels = list(getattr(group, "array_labels", []) or [])
    data = np.asarray(getattr(group, "data", np.empty((0, 0))), dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        return {}
    if len(labels) != data.shape[0]:
        labels = [f"col{i + 1}" for i in range(data.shape[0])]
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(labels, data):
        name = str(name)
        while name in columns:  # keep repeated labels apart rather than overwrite
            name += "_"
        columns[name] = values.copy()
    return columns


def d_spacing_from(header: Iterable[str]) -> float | None:
    """The crystal d-spacing (Å) a header names, the last one when it repeats; None when absent."""
    found = None
    for line in header:
        match = _D_SPACING.search(line)
        if match:
            value = float(match.group(1))
            if value > 0:
                found = value
    return found


def _has_numeric_row(path: Path) -> bool:
    number = re.compile(r"^\s*[+-]?(\d|\.\d)")
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if number.match(line):
                return True
    return False


def read(path: Path, group: str | None = None) -> Table:
    """Read a column file; the header gives the element, edge and a monochromator d-spacing when it says."""
    larch = import_larch()
    if not _has_numeric_row(path):
        raise fail(path, "no numeric data rows (not a column file?)")
    try:
        with preserved_global_state():
            data = larch.io.read_ascii(str(path))
    except Exception as exc:  # noqa: BLE001 - larch's parser raises anything
        raise fail(path, f"cannot read columns ({exc})") from exc
    columns = larch_columns(data)
    if not columns:
        raise fail(path, "no numeric data columns")
    header = [str(h) for h in (getattr(data, "header", []) or [])]
    metadata: dict[str, Any] = {"format": "columns"}
    # Old IFEFFIT/Athena column files (".xmu") carry "#%atom:" and "#%edge:" lines;
    # "atom" is sometimes a formula ("Fe2O3"), so only element symbols count.
    for line in header:
        match = re.match(r"^#\s*%?\s*(element|atom|edge)\s*[:=]\s*(\S+)", line, re.IGNORECASE)
        if not match:
            continue
        name, value = match.group(1).lower(), match.group(2)
        if name == "edge":
            metadata["edge"] = value.upper()
            continue
        try:
            metadata["element"] = element_symbol(atomic_number(value))
        except ValueError:
            pass
    d_spacing = d_spacing_from(header)
    if d_spacing is not None:
        metadata["d_spacing_a"] = d_spacing
    return Table(columns=columns, metadata=metadata, label=path.stem)
