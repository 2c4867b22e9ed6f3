"""Site table: one row per atom (element, Wyckoff, multiplicity, coordination, and the
shown prediction's domain score and edge energy), selection kept in sync with the app
state both ways.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, QSize,
                            QSortFilterProxyModel, Qt)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QStyle, QTableView, QVBoxLayout, QWidget)

from model_core.types import Prediction
from xanes_gui.elements import color_hex
from xanes_gui.state import AppState, StructureDoc

COLUMNS = ("#", "El.", "Wyck.", "Mult.", "CN", "NN (Å)", "Dom.", "E0 (eV)")
DOMAIN_COLUMN = COLUMNS.index("Dom.")
E0_COLUMN = COLUMNS.index("E0 (eV)")
#: Tooltip of a domain score above 1.
OUT_OF_DOMAIN_TIP = "outside the model's training domain: treat as extrapolation"
_OUT_OF_DOMAIN_COLOR = QColor(200, 0, 0)
#: The widest edge-energy cell expected (K edges up to 5-digit eV), for the column's minimum width.
_E0_SAMPLE = "88888.8 ± 8.8"


def fit_columns(header: QHeaderView) -> None:
    """Every column at least as wide as its header text and contents; the last one takes the rest.

    Stretched columns share the width evenly and clip their headers in a narrow
    dock ("Distance (Å)"); a horizontal scroll bar is the better failure.
    """
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    # Before stretching: the stretched last column is never made narrower than
    # its size when stretching starts (100 px by default), which pushed a
    # scroll bar into a narrow dock.
    header.setDefaultSectionSize(header.minimumSectionSize())
    header.setStretchLastSection(True)
    # Widths from the visible rows and about 100 more, not from every row of a big structure.
    header.setResizeContentsPrecision(100)


def _nan_text(values: np.ndarray, fmt: str) -> list[str]:
    return ["–" if v != v else format(v, fmt) for v in np.asarray(values, dtype=float).tolist()]


class SiteTableModel(QAbstractTableModel):
    """Read-only table over a :class:`StructureDoc` (numbers sort numerically).

    Every cell is computed once per document: the view and the sorting proxy
    ask for each cell many times (a 20,000-atom structure: hundreds of
    thousands of calls), so :meth:`data` only indexes lists.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._doc: StructureDoc | None = None
        self._display: list[list] = []
        self._keys: list[list] = []
        self._colors: list[QColor] = []
        self._domain: list[float] = []
        self._e0_tips: list[str] = []

    def set_document(self, doc: StructureDoc | None) -> None:
        self.beginResetModel()
        self._doc = doc
        self._display, self._keys, self._colors, self._domain, self._e0_tips = [], [], [], [], []
        if doc is not None:
            n = doc.structure.n_atoms
            symbols = list(doc.structure.symbols)
            wyckoff = (list(doc.symmetry.wyckoff) + [""] * n)[:n]
            multiplicity = np.asarray(doc.symmetry.multiplicity, dtype=int).tolist()
            coordination = np.asarray(doc.coordination, dtype=float)
            nearest = np.asarray(doc.nearest, dtype=float)
            rows = list(range(n))
            self._domain = [float("nan")] * n
            self._e0_tips = [""] * n
            self._display = [rows, symbols, wyckoff, multiplicity, _nan_text(coordination, "g"),
                             _nan_text(nearest, ".3f"), [""] * n, [""] * n]
            # Unpredicted rows sort below every score and edge energy.
            self._keys = [rows, symbols, wyckoff, multiplicity, coordination.tolist(), nearest.tolist(), [-1.0] * n,
                          [-1.0] * n]
            numbers = np.asarray(doc.structure.atomic_numbers, dtype=int).tolist()
            palette = {z: QColor(color_hex(z)) for z in set(numbers)}
            self._colors = [palette[z] for z in numbers]
        self.endResetModel()

    def set_domain_scores(self, scores: np.ndarray) -> None:
        """Show one domain score per atom (NaN: not predicted or no domain index)."""
        if not self._colors:
            return
        self._domain = np.asarray(scores, dtype=float).tolist()
        self._display[DOMAIN_COLUMN] = ["" if v != v else f"{v:.2f}" for v in self._domain]
        self._keys[DOMAIN_COLUMN] = [-1.0 if v != v else v for v in self._domain]
        self.dataChanged.emit(self.index(0, DOMAIN_COLUMN), self.index(len(self._colors) - 1, DOMAIN_COLUMN))

    def set_edge_energies(self, e0_ev: np.ndarray, halfwidth_ev: np.ndarray, spread_ev: np.ndarray,
                          level: float | None) -> None:
        """Show one predicted absolute E0 per atom, "± half-width" where calibrated at ``level``,
        the members' spread in the tooltip (NaN: not predicted, no calibration, no spread)."""
        if not self._colors:
            return
        display, tips = [], []
        for e0, half, spread in zip(*(np.asarray(v, dtype=float).tolist() for v in (e0_ev, halfwidth_ev, spread_ev))):
            if e0 != e0:
                display.append("")
                tips.append("")
                continue
            # One decimal: the models' E0 errors are tenths of an eV (the tooltip gives two).
            display.append(f"{e0:.1f}" if half != half else f"{e0:.1f} ± {half:.1f}")
            lines = [f"Predicted absolute edge energy E0 = {e0:.2f} eV"]
            lines.append(f"{100 * level:.0f}% interval: {e0 - half:.2f} – {e0 + half:.2f} eV (calibrated)"
                         if half == half and level is not None else
                         "No calibrated interval (the model's E0 is uncalibrated)")
            lines.append(f"Members' spread (standard deviation): {spread:.2f} eV" if spread == spread else
                         "Single model: no members' spread")
            tips.append("\n".join(lines))
        self._e0_tips = tips
        self._display[E0_COLUMN] = display
        self._keys[E0_COLUMN] = [-1.0 if v != v else v for v in np.asarray(e0_ev, dtype=float).tolist()]
        self.dataChanged.emit(self.index(0, E0_COLUMN), self.index(len(self._colors) - 1, E0_COLUMN))

    @property
    def document(self) -> StructureDoc | None:
        return self._doc

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._colors)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return ("Atom index (0-based)", "Element", "Wyckoff position", "Multiplicity (equivalent atoms in the cell)",
                    "Coordination number", "Nearest-neighbour distance",
                    "Domain score of the shown prediction: distance of the site's environment to the "
                    "training data (> 1: outside the model's training domain)",
                    "Predicted absolute edge energy of the shown prediction, ± the calibrated half-width "
                    "when the model's E0 is calibrated (hover a cell for the interval and the members' "
                    "spread)")[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not self._colors or not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display[col][row]
        if role == Qt.ItemDataRole.UserRole:
            return self._keys[col][row]
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return self._colors[row]
        if role == Qt.ItemDataRole.ToolTipRole and col == E0_COLUMN:
            return self._e0_tips[row] or None
        if col == DOMAIN_COLUMN and self._domain[row] > 1.0:
            if role == Qt.ItemDataRole.ForegroundRole:
                return _OUT_OF_DOMAIN_COLOR
            if role == Qt.ItemDataRole.ToolTipRole:
                return OUT_OF_DOMAIN_TIP
        if role == Qt.ItemDataRole.TextAlignmentRole and col != 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _SortedHeader(QHeaderView):
    """A horizontal header that reserves room for the sort arrow only in the sorted section.

    Qt widens every section by the arrow's size; in the narrow Sites dock those ~20 px per
    column are what the edge-energy column needs to fit beside the spectra.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)
        self.setHighlightSections(True)

    def sectionSizeFromContents(self, logical_index: int) -> QSize:  # noqa: N802 - Qt API
        size = super().sectionSizeFromContents(logical_index)
        if self.isSortIndicatorShown() and logical_index != self.sortIndicatorSection():
            margin = self.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, self)
            size.setWidth(size.width() - size.height() - margin)
        return size


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
        self.table.setHorizontalHeader(_SortedHeader(self.table))
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        fit_columns(self.table.horizontalHeader())
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

        self._fit_width()
        # Contents change the columns' widths (ResizeToContents): the minimum follows them.
        self.table.horizontalHeader().sectionResized.connect(self._fit_width)
        self._syncing = False
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.equivalent_button.clicked.connect(lambda: state.structures.select_equivalent())
        self.element_button.clicked.connect(self._select_element)
        state.structures.currentStructureChanged.connect(self._on_current)
        state.structures.selectionChanged.connect(self._on_state_selection)
        state.predictions.predictionReady.connect(self._on_prediction)
        self._warned: Prediction | None = None
        self._on_current(state.structures.current_id)

    def _on_current(self, doc_id: str) -> None:
        doc = self.state.structures.document(doc_id)
        header = self.table.horizontalHeader()
        if header.sortIndicatorSection() == 0 and header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder:
            # Atom order is the model's own order: spare the proxy a sort that
            # calls data() from C++ (seconds for 20,000 atoms).
            self.proxy.sort(-1)
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
        self._show_prediction(self.state.predictions.shown_prediction(doc_id) if doc else None)

    def _fit_width(self, *_args) -> None:
        """Room for every column as Qt sized it to its contents, and for the widest edge energy
        in the last one: stretched, it is not sized to its contents, and a narrow dock would
        clip it."""
        header = self.table.horizontalHeader()
        last = header.count() - 1
        widths = [header.sectionSize(i) for i in range(last)]
        reserve = max(header.sectionSizeHint(last), self.table.fontMetrics().horizontalAdvance(_E0_SAMPLE) + 8)
        self.table.setMinimumWidth(sum(widths) + reserve + 2 * self.table.frameWidth())

    def _on_prediction(self, doc_id: str, prediction: Prediction) -> None:
        if self.model.document is None or doc_id != self.model.document.id:
            return
        self._show_prediction(prediction)
        scores = prediction.domain_score
        if scores is not None and prediction is not self._warned and np.any(scores > 1.0):
            # Once per prediction: the cache re-emits the same object on reselection.
            self._warned = prediction
            outside = [f"{self.model.document.structure.symbols[int(i)]}{int(i)}"
                       for i, v in zip(prediction.site_indices, scores) if v > 1.0]
            self.state.messages.notice(f"{prediction.model_name}: site(s) {', '.join(outside)} "
                                       f"{OUT_OF_DOMAIN_TIP} (domain score > 1)")

    def _show_prediction(self, prediction: Prediction | None) -> None:
        """Each atom gets the domain score and edge energy of the predicted site of its symmetry
        group (equivalent sites share them)."""
        doc = self.model.document
        if doc is None:
            return
        group = np.asarray(doc.symmetry.group)

        def per_atom(values: np.ndarray | None) -> np.ndarray:
            out = np.full(doc.structure.n_atoms, np.nan)
            if prediction is not None and values is not None:
                for site, value in zip(prediction.site_indices, values):
                    out[group == group[int(site)]] = value
            return out

        self.model.set_domain_scores(per_atom(None if prediction is None else prediction.domain_score))
        e0 = None if prediction is None else prediction.e0_ev
        self.model.set_edge_energies(
            per_atom(e0), per_atom(None if e0 is None else prediction.e0_halfwidth_ev),
            per_atom(None if e0 is None else prediction.e0_spread_ev),
            None if prediction is None or prediction.e0_band is None else prediction.e0_band.level)

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
