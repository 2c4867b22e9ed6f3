"""XDI files (XAS Data Interchange), read with larch's ``read_xdi``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_core.spectra.larch_compat import import_larch, preserved_global_state
from model_core.spectra.measured import columns as column_files
from model_core.spectra.measured.base import Table


def read(path: Path, group: str | None = None) -> Table:
    """Read an XDI file: columns, element, edge, sample/facility/beamline names, E0 and mono d-spacing.

    A file that starts like XDI but breaks the spec is usually still a
    ``#``-commented column file: it is read that way, and a note says so.
    """
    larch = import_larch()
    try:
        with preserved_global_state():
            data = larch.io.read_xdi(str(path))
        columns = column_files.larch_columns(data)
        attrs = getattr(data, "attrs", {}) or {}
    except Exception as exc:  # noqa: BLE001 - larch raises many types for bad XDI
        table = column_files.read(path)
        table.notes.insert(0, f"not a valid XDI file ({' '.join(str(exc).split())[:80]}); read as plain columns")
        return table
    if not isinstance(attrs, dict):
        attrs = {}
    metadata: dict[str, Any] = {"format": "xdi"}
    element = attrs.get("element", {}) or {}
    symbol = str(element.get("symbol", "") or "").strip()
    edge = str(element.get("edge", "") or "").strip()
    if symbol:
        metadata["element"] = symbol.capitalize()
    if edge:
        metadata["edge"] = edge.upper()
    for family, keys in (("sample", ("name", "formula", "prep", "temperature")),
                         ("facility", ("name",)), ("beamline", ("name",))):
        values = attrs.get(family, {}) or {}
        for key in keys:
            if values.get(key):
                metadata[f"{family}_{key}"] = str(values[key]).strip()
    try:
        metadata["e0_hint_ev"] = float((attrs.get("scanparameters", {}) or {})["e0"])
    except (KeyError, TypeError, ValueError):
        pass
    try:  # "Mono.d_spacing: 3.13551" (the XDI field; sometimes with a unit)
        metadata["d_spacing_a"] = float(str((attrs.get("mono", {}) or {})["d_spacing"]).split()[0])
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    label = metadata.get("sample_name") or path.stem
    return Table(columns=columns, metadata=metadata, label=str(label))
