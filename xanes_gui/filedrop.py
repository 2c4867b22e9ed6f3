"""Files dropped on the window (or named anywhere): structures are opened, spectra imported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from PySide6.QtCore import QMimeData

if TYPE_CHECKING:
    from xanes_gui.state import AppState


def dropped_paths(mime: QMimeData) -> list[str]:
    """The local files of a drag or drop ([] when it carries none)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


def open_any(state: AppState, paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """Open structures and import measured spectra, deciding by the readers' format tables.

    Returns:
        (structure paths, measured paths).
    """
    structures, measured = [], []
    for path in map(str, paths):
        try:
            kind = state.backend.classify_file(path)
        except Exception:  # noqa: BLE001 - the structure reader will say what is wrong
            kind = "structure"
        (measured if kind == "measured" else structures).append(path)
    if structures:
        state.structures.open_files(structures)
    if measured:
        state.measured.import_files(measured)
    return structures, measured
