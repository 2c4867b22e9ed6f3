"""Small GUI points of issue 18: start hint, readable attention labels and headers, spectra get the most room."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from tests.xanes_gui.fakes import cu4o_cluster, write_two_columns, write_xyz
from xanes_gui.attention import label_stride
from xanes_gui.mainwindow import EMPTY_HINT

SLOW = 20000


def _shown(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    # The app lays out docks and splitter once the window has its final size;
    # without a window manager that size can come after the show event.
    window._initial_layout()
    QApplication.processEvents()


def _cluster(path) -> str:
    """One Cu with 14 neighbours within 6 Å: more attention bars than fit in a narrow dock."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(14, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    positions = [(0.0, 0.0, 0.0)] + [tuple(d * r) for d, r in zip(directions, np.linspace(1.9, 5.5, 14))]
    return write_xyz(path, ["Cu"] + ["O"] * 14, positions)


def test_empty_window_says_how_to_start(qtbot, window, tmp_path):
    _shown(qtbot, window)
    hint = window.empty_hint
    assert hint.isVisible() and hint.text() == EMPTY_HINT and "Open Example" in hint.text()
    area = window.central_splitter.geometry()
    assert abs(hint.geometry().center().x() - area.center().x()) <= 2
    assert abs(hint.geometry().center().y() - area.center().y()) <= 2
    with qtbot.waitSignal(window.state.structures.fileOpened, timeout=SLOW):
        window.state.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    assert not hint.isVisible()
    window.close_current()
    qtbot.waitUntil(lambda: hint.isVisible(), timeout=SLOW)
    with qtbot.waitSignal(window.state.measured.measuredAdded, timeout=SLOW):
        window.state.measured.import_files([write_two_columns(tmp_path / "m.dat")])
    assert not hint.isVisible()


def test_spectra_get_the_widest_column(qtbot, window):
    _assert_spectra_widest(qtbot, window)


@pytest.mark.gl
def test_spectra_get_the_widest_column_beside_the_3d_view(qtbot, gl_ok, state, settings):
    from xanes_gui.mainwindow import MainWindow

    window = MainWindow(state, settings=settings, enable_3d=True)
    qtbot.addWidget(window)
    assert window.structure_view is not None
    _assert_spectra_widest(qtbot, window)  # the 3-D view's controls do not widen it


def _assert_spectra_widest(qtbot, window):
    _shown(qtbot, window)
    spectra = window.plots.width()
    assert spectra > window.central_splitter.widget(0).width()
    for dock in window.docks.values():
        if dock.isVisible() and not dock.isFloating() and dock.height() > 200:  # side columns, not the log
            assert spectra > dock.width(), dock.windowTitle()


def test_label_stride():
    assert label_stride([30, 30, 30], spacing_px=50) == 1
    assert label_stride([30, 30, 30], spacing_px=20) == 2
    assert label_stride([30, 30, 30], spacing_px=0) == 3
    assert label_stride([], spacing_px=10) == 1


def _label_rects(axis):
    image = QImage(axis.boundingRect().size().toSize(), QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [rect for rect, _flags, text in texts if text]


def test_attention_labels_never_overlap(qtbot, state, tmp_path):
    from xanes_gui.attention import AttentionPanel

    panel = AttentionPanel(state)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(state.structures.fileOpened, timeout=SLOW):
        state.open_files([_cluster(tmp_path / "big.xyz")])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=SLOW):
        state.predictions.predict()
    assert len(panel.neighbours) == 12
    axis = panel.chart.getAxis("bottom")
    for width in (320, 1400):
        panel.resize(width, 500)
        # The axis is laid out from the event loop after the resize.
        qtbot.waitUntil(lambda: abs(panel.width() - width) <= 1 and bool(_label_rects(axis)))
        rects = sorted(_label_rects(axis), key=lambda r: r.left())
        assert all(a.right() <= b.left() for a, b in zip(rects, rects[1:])), (width, rects)
        if width == 1400:
            assert len(rects) == 12  # room for every label


def test_table_headers_are_not_clipped(qtbot, window, tmp_path):
    _shown(qtbot, window)
    with qtbot.waitSignal(window.state.structures.fileOpened, timeout=SLOW):
        window.state.open_files([_cluster(tmp_path / "big.xyz")])
    with qtbot.waitSignal(window.state.predictions.predictionReady, timeout=SLOW):
        window.state.predictions.predict()
    for table in (window.attention_panel.table, window.site_panel.table):
        header = table.horizontalHeader()
        metrics = header.fontMetrics()
        model = table.model()
        for section in range(header.count()):
            text = str(model.headerData(section, header.orientation()))
            assert header.sectionSize(section) >= metrics.horizontalAdvance(text), text
    # Nor does the stretched last column push a scroll bar into the narrow Sites dock.
    table = window.site_panel.table
    assert table.horizontalHeader().length() <= table.viewport().width()


def test_site_table_of_a_big_structure_touches_few_cells(qtbot, state, monkeypatch):
    from model_core.types import Structure
    from xanes_gui.sitetable import SitePanel, SiteTableModel

    n = 20_000
    rng = np.random.default_rng(1)
    structure = Structure(rng.choice([8, 26], size=n), rng.random((n, 3)) * 60.0, name="big")
    panel = SitePanel(state)
    qtbot.addWidget(panel)
    panel.show()
    calls = []
    real = SiteTableModel.data
    monkeypatch.setattr(SiteTableModel, "data", lambda self, *args: calls.append(1) or real(self, *args))
    state.structures.add_structure(structure)
    QApplication.processEvents()
    assert panel.model.rowCount() == n
    # Neither a sort in atom order nor the column widths ask for every row (that took seconds).
    assert len(calls) < n, len(calls)
    # Sorting on request still works: by element, then back to atom order.
    panel.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    first = panel.proxy.index(0, 1).data()
    assert first == "Fe"
    panel.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert panel.proxy.index(5, 0).data() == 5
