"""Site table: one row per atom (element, Wyckoff, multiplicity, coordination),
selection kept in sync with the app state both ways.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from xanes_gui.elements import color_hex
from xanes_gui.state import AppState, StructureDoc

COLUMNS = ("#", "El.", "Wyck.", "Mult.", "CN", "NN (Å)")


class SiteTableModel(QAbstractTableModel):
    """Read-only table over a :class:`StructureDoc` (numbers sort numerically)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._doc: StructureDoc | None = None

    def set_document(self, doc: StructureDoc | None) -> None:
        self.beginResetModel()
        self._doc = doc
        self.endResetModel()

    @property
    def document(self) -> StructureDoc | None:
        return self._doc

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() or self._doc is None else self._doc.structure.n_atoms

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return ("Atom index (0-based)", "Element", "Wyckoff position", "Multiplicity (equivalent atoms in the cell)",
                    "Coordination number", "Nearest-neighbour distance")[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        doc = self._doc
        if doc is None or not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.UserRole):
            sort = role == Qt.ItemDataRole.UserRole
            if col == 0:
                return row
            if col == 1:
                return doc.structure.symbols[row]
            if col == 2:
                return doc.symmetry.wyckoff[row] if row < len(doc.symmetry.wyckoff) else ""
            if col == 3:
                return int(doc.symmetry.multiplicity[row])
            if col == 4:
                value = float(doc.coordination[row])
                return value if sort else ("–" if np.isnan(value) else f"{value:g}")
            if col == 5:
                value = float(doc.nearest[row])
                return value if sort else ("–" if np.isnan(value) else f"{value:.3f}")
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return QColor(color_hex(int(doc.structure.atomic_numbers[row])))
        if role == Qt.ItemDataRole.TextAlignmentRole and col != 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class SitePanel(QWidget):
    """Table of sites plus "Select equivalent sites" and "Select all <element>"."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = SiteTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        # Columns share the dock's width so the distance column is never cut off.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(28)
        self.equivalent_button = QPushButton("Select equivalent sites", self)
        self.element_combo = QComboBox(self)
        self.element_button = QPushButton("Select all", self)
        self.summary = QLabel(self)

        buttons = QHBoxLayout()
        buttons.addWidget(self.equivalent_button)
        buttons.addStretch(1)
        buttons.addWidget(self.element_button)
        buttons.addWidget(self.element_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)

        self._syncing = False
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.equivalent_button.clicked.connect(lambda: state.structures.select_equivalent())
        self.element_button.clicked.connect(self._select_element)
        state.structures.currentStructureChanged.connect(self._on_current)
        state.structures.selectionChanged.connect(self._on_state_selection)
        self._on_current(state.structures.current_id)

    def _on_current(self, doc_id: str) -> None:
        doc = self.state.structures.document(doc_id)
        self._syncing = True
        try:
            self.model.set_document(doc)
            self.element_combo.clear()
            if doc is not None:
                self.element_combo.addItems(list(doc.structure.elements))
                element = doc.selected_element()
                if element:
                    self.element_combo.setCurrentText(element)
        finally:
            self._syncing = False
        self._show_selection(self.state.structures.selection(doc_id) if doc else np.zeros(0, dtype=int))

    def _select_element(self) -> None:
        element = self.element_combo.currentText()
        if element:
            self.state.structures.select_element(None, element)

    def _on_table_selection(self, *_args) -> None:
        if self._syncing or self.model.document is None:
            return
        rows = sorted({self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()})
        self.state.structures.set_selection(self.model.document.id, rows)

    def _on_state_selection(self, doc_id: str, indices: np.ndarray) -> None:
        if self.model.document is not None and doc_id == self.model.document.id:
            self._show_selection(indices)

    def _show_selection(self, indices: np.ndarray) -> None:
        """Select table rows for atom ``indices`` without echoing back to the state."""
        self._syncing = True
        try:
            selection = QItemSelection()
            last = self.model.columnCount() - 1
            for i in np.asarray(indices, dtype=int):
                top = self.proxy.mapFromSource(self.model.index(int(i), 0))
                bottom = self.proxy.mapFromSource(self.model.index(int(i), last))
                selection.select(top, bottom)
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.table.selectionModel().select(selection, flags)
            if len(indices):
                self.table.scrollTo(self.proxy.mapFromSource(self.model.index(int(indices[0]), 0)))
        finally:
            self._syncing = False
        doc = self.model.document
        if doc is None:
            self.summary.setText("No structure")
        else:
            sg = doc.symmetry.spacegroup_symbol
            sg_text = f" · {sg} (#{doc.symmetry.spacegroup_number})" if sg else ""
            self.summary.setText(f"{doc.structure.formula}{sg_text} · {doc.structure.n_atoms} atoms · "
                                 f"{len(indices)} selected")
