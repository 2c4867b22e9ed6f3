"""Open structures and the atoms selected in each."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from model_core.symmetry import trivial_symmetry
from model_core.types import SiteSelection, SiteSymmetry, Structure
from xanes_gui.backend import Backend
from xanes_gui.state.messages import Messages
from xanes_gui.tasks import Task, TaskRunner


@dataclass(frozen=True, eq=False)
class StructureDoc:
    """One open structure and what the GUI knows about it.

    Attributes:
        id: stable id within this session ("s1", "s2", ...).
        structure: the structure.
        symmetry: its site symmetry (trivial when the analysis failed).
        coordination: (N,) coordination numbers (NaN when unknown).
        nearest: (N,) nearest-neighbour distances in Å (NaN when unknown).
        selection: the atoms the user selected (weights all one).
    """

    id: str
    structure: Structure
    symmetry: SiteSymmetry
    coordination: np.ndarray
    nearest: np.ndarray
    selection: SiteSelection = field(default_factory=lambda: SiteSelection(np.zeros(0, dtype=np.int64)))

    @property
    def title(self) -> str:
        return self.structure.name or self.structure.formula

    def selected_element(self) -> str | None:
        """The most common element among the selected atoms (None without a selection)."""
        if len(self.selection) == 0:
            return None
        symbols = self.structure.symbols
        return Counter(symbols[i] for i in self.selection.indices).most_common(1)[0][0]


def _open_document(backend: Backend, path: str) -> dict[str, Any]:
    """Worker body: read a file and analyse it (runs off the GUI thread)."""
    structure = backend.read_structure(path)
    warnings: list[str] = list(structure.info.get("warnings", ()) or ())
    try:
        symmetry = backend.analyze_symmetry(structure)
    except Exception as exc:  # noqa: BLE001 - a structure without symmetry is still usable
        warnings.append(f"symmetry analysis failed ({exc}); every atom is treated as unique")
        symmetry = trivial_symmetry(structure.n_atoms)
    try:
        coordination, nearest = backend.coordination_info(structure)
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"coordination analysis failed ({exc})")
        coordination = np.full(structure.n_atoms, np.nan)
        nearest = np.full(structure.n_atoms, np.nan)
    return {"path": path, "structure": structure, "symmetry": symmetry,
            "coordination": np.asarray(coordination, dtype=float), "nearest": np.asarray(nearest, dtype=float),
            "warnings": warnings}


class Structures(QObject):
    """The open structures, the shown one, and the atoms selected in each.

    Args:
        backend: reads and analyses files.
        messages: where status and error messages go.
        tasks: runs the file readers.

    Attributes:
        modelled_elements: elements a model exists for; a newly opened structure
            starts with all atoms of the first of them selected (kept up to date by AppState).

    Signals:
        structureAdded(str): a structure was opened (its id).
        structureRemoved(str): a structure was closed.
        currentStructureChanged(str): the shown structure ("" when none).
        selectionChanged(str, object): structure id and (M,) selected atom indices.
        fileOpened(str): a file was read (its path).
        fileFailed(str, str): path and message of a file that could not be read.
    """

    structureAdded = Signal(str)
    structureRemoved = Signal(str)
    currentStructureChanged = Signal(str)
    selectionChanged = Signal(str, object)
    fileOpened = Signal(str)
    fileFailed = Signal(str, str)

    def __init__(self, backend: Backend, messages: Messages, tasks: TaskRunner,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._messages = messages
        self._tasks = tasks
        self._docs: dict[str, StructureDoc] = {}
        self._next_id = 1
        self._current = ""
        self._opening: set[str] = set()
        self.modelled_elements: frozenset[str] = frozenset()

    @property
    def documents(self) -> list[StructureDoc]:
        return list(self._docs.values())

    def document(self, doc_id: str) -> StructureDoc | None:
        return self._docs.get(doc_id)

    @property
    def current_id(self) -> str:
        return self._current

    @property
    def current(self) -> StructureDoc | None:
        return self._docs.get(self._current)

    @property
    def busy_opening(self) -> bool:
        return bool(self._opening)

    def open_files(self, paths: Iterable[str | os.PathLike]) -> list[Task]:
        """Read structure files in workers; each success adds a structure, each failure a message."""
        tasks = []
        for path in paths:
            path = str(path)
            self._opening.add(path)
            self._messages.status(f"Reading {os.path.basename(path)}…")
            task = Task(_open_document, self.backend, path)
            task.signals.succeeded.connect(self._on_file_read)
            task.signals.failed.connect(lambda message, p=path: self._on_file_failed(p, message))
            tasks.append(self._tasks.start(task))
        return tasks

    def _on_file_read(self, result: dict[str, Any]) -> None:
        path = result["path"]
        self._opening.discard(path)
        doc_id = self.add_structure(result["structure"], symmetry=result["symmetry"],
                                    coordination=result["coordination"], nearest=result["nearest"])
        for warning in result["warnings"]:
            self._messages.error(f"{os.path.basename(path)}: {warning}")
        structure = self._docs[doc_id].structure
        self._messages.status(f"Opened {path} ({structure.formula}, {structure.n_atoms} atoms)")
        self.fileOpened.emit(path)

    def _on_file_failed(self, path: str, message: str) -> None:
        self._opening.discard(path)
        # Reader errors already name the file; others get the name added.
        if os.path.basename(path) not in message:
            message = f"{path}: {message}"
        self._messages.error(message)
        self.fileFailed.emit(path, message)

    def add_structure(self, structure: Structure, symmetry: SiteSymmetry | None = None,
                      coordination: np.ndarray | None = None, nearest: np.ndarray | None = None,
                      make_current: bool = True) -> str:
        """Add an already-read structure (main thread); returns its id."""
        n = structure.n_atoms
        doc_id = f"s{self._next_id}"
        self._next_id += 1
        doc = StructureDoc(
            id=doc_id, structure=structure, symmetry=symmetry or trivial_symmetry(n),
            coordination=np.full(n, np.nan) if coordination is None else np.asarray(coordination, dtype=float),
            nearest=np.full(n, np.nan) if nearest is None else np.asarray(nearest, dtype=float),
        )
        self._docs[doc_id] = doc
        self.structureAdded.emit(doc_id)
        if make_current or not self._current:
            self.set_current(doc_id)
        self.select_default_sites(doc_id)
        return doc_id

    def select_default_sites(self, doc_id: str) -> None:
        """Select the FEFF absorber, else all atoms of the first element in ``modelled_elements``.

        A freshly opened file is so one click from a prediction.
        """
        doc = self._docs[doc_id]
        if doc.structure.absorber_index is not None:
            self.set_selection(doc_id, [doc.structure.absorber_index])
            return
        for element in doc.structure.elements:
            if element in self.modelled_elements:
                self.select_element(doc_id, element)
                return

    def close_structure(self, doc_id: str) -> None:
        """Close a structure (parts holding results for it drop them on structureRemoved)."""
        if doc_id not in self._docs:
            return
        del self._docs[doc_id]
        self.structureRemoved.emit(doc_id)
        if self._current == doc_id:
            self.set_current(next(iter(self._docs), ""))

    def set_current(self, doc_id: str) -> None:
        """Show another open structure."""
        if doc_id == self._current or (doc_id and doc_id not in self._docs):
            return
        self._current = doc_id
        self.currentStructureChanged.emit(doc_id)

    # --------------------------------------------------------------- selection
    def set_selection(self, doc_id: str, indices: Sequence[int] | np.ndarray) -> None:
        """Select atoms (replaces the selection; order kept, duplicates dropped)."""
        doc = self._docs.get(doc_id)
        if doc is None:
            return
        unique = list(dict.fromkeys(int(i) for i in np.asarray(indices, dtype=np.int64).ravel()))
        unique = [i for i in unique if 0 <= i < doc.structure.n_atoms]
        if unique == [int(i) for i in doc.selection.indices]:
            return
        self._docs[doc_id] = replace(doc, selection=SiteSelection(np.array(unique, dtype=np.int64)))
        self.selectionChanged.emit(doc_id, self._docs[doc_id].selection.indices)

    def selection(self, doc_id: str | None = None) -> np.ndarray:
        doc = self._docs.get(doc_id or self._current)
        return np.zeros(0, dtype=np.int64) if doc is None else doc.selection.indices

    def select_equivalent(self, doc_id: str | None = None) -> None:
        """Extend the selection to every atom symmetry-equivalent to a selected one."""
        doc = self._docs.get(doc_id or self._current)
        if doc is None or len(doc.selection) == 0:
            return
        groups = set(doc.symmetry.group[doc.selection.indices].tolist())
        self.set_selection(doc.id, np.flatnonzero(np.isin(doc.symmetry.group, list(groups))))

    def select_element(self, doc_id: str | None, element: str) -> None:
        """Select every atom of ``element``."""
        doc = self._docs.get(doc_id or self._current)
        if doc is None:
            return
        self.set_selection(doc.id, doc.structure.indices_of(element))
