"""Main window widgets (no OpenGL): table sync, messages, model panel, plots, drops."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.xanes_gui.fakes import FakePredictor, cu4o_cluster
from xanes_gui.modelpanel import UNTRAINED_WARNING
from xanes_gui.plots import AVERAGE_LABEL


def open_one(qtbot, window, path):
    with qtbot.waitSignal(window.state.structures.fileOpened, timeout=10000):
        window.state.structures.open_files([path])


def predict(qtbot, state):
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000) as blocker:
        state.predictions.predict()
    return blocker.args[1]


def test_table_follows_state_selection(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    panel = window.site_panel
    assert panel.model.rowCount() == 5
    window.state.structures.set_selection(window.state.structures.current_id, [0, 3])
    rows = sorted(panel.proxy.mapToSource(i).row() for i in panel.table.selectionModel().selectedRows())
    assert rows == [0, 3]
    assert "2 selected" in panel.summary.text()


def test_state_follows_table_selection(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    panel = window.site_panel
    selection_model = panel.table.selectionModel()
    with qtbot.waitSignal(window.state.structures.selectionChanged) as blocker:
        selection_model.select(panel.proxy.index(2, 0),
                               QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert list(blocker.args[1]) == [2]
    # Sorting the table must not change which atoms are selected.
    panel.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert list(window.state.structures.selection()) == [2]


def test_table_columns_show_symmetry_and_coordination(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    model = window.site_panel.model
    row = [model.data(model.index(1, c)) for c in range(model.columnCount())]
    assert row == [1, "Cu", "4a", 4, "4", "1.850", "", ""]  # Domain, E0: empty before a prediction


def test_select_equivalent_and_element_buttons(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    state, panel = window.state, window.site_panel
    state.structures.set_selection(state.structures.current_id, [2])
    panel.equivalent_button.click()
    assert list(state.structures.selection()) == [1, 2, 3, 4]
    panel.element_combo.setCurrentText("O")
    panel.element_button.click()
    assert list(state.structures.selection()) == [0]


def test_bad_file_shows_banner_and_log(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "ok.xyz"))
    bad = tmp_path / "bad.xyz"
    bad.write_text("garbage")
    with qtbot.waitSignal(window.state.structures.fileFailed, timeout=10000):
        window.state.structures.open_files([str(bad)])
    assert not window.banner.isHidden() and "bad.xyz" in window.banner.label.text()
    assert any("bad.xyz" in m for m in window.message_log.messages())
    assert "bad.xyz" in window.statusBar().currentMessage()
    window.banner.close_button.click()
    assert window.banner.isHidden()
    assert window.structure_list.count() == 1  # the good file is still there


def test_drop_files_opens_them(qtbot, window, tmp_path):
    paths = [cu4o_cluster(tmp_path / "d1.xyz"), cu4o_cluster(tmp_path / "d2.xyz")]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignals([window.state.structures.fileOpened] * 2, timeout=10000):
        window.dropEvent(event)
    assert window.structure_list.count() == 2
    assert len(window.recent_files()) == 2


def test_structure_list_switches_current(qtbot, window, tmp_path):
    for name in ("x1", "x2"):
        open_one(qtbot, window, cu4o_cluster(tmp_path / f"{name}.xyz"))
    first = window.state.structures.documents[0].id
    window.structure_list.setCurrentRow(0)
    assert window.state.structures.current_id == first
    assert "x1" in window.windowTitle()


def test_model_panel_warnings_and_card(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    panel, state = window.model_panel, window.state
    assert panel.warning_label.isHidden()
    assert panel.predict_button.isEnabled()
    state.predictions.set_predictor(FakePredictor(name="raw-cu", trained=False))
    assert UNTRAINED_WARNING in panel.warning_label.text() and not panel.warning_label.isHidden()
    dialog = panel.show_card()
    qtbot.addWidget(dialog)
    assert not dialog.isModal() and "raw-cu" in dialog.browser.toPlainText()
    state.structures.select_element(None, "O")
    state.predictions.set_model_override("")
    assert "No ML model for O" in panel.warning_label.text() and "FEFF10" in panel.warning_label.text()
    assert not panel.predict_button.isEnabled()


def test_device_combo_switches_device(qtbot, window):
    combo = window.model_panel.device_combo
    assert combo.count() == 1 and combo.currentData() == "cpu"
    assert window.engine_label.text() == "Ready: CPU"


def test_predict_button_progress_and_plots(qtbot, window, tmp_path):
    from model_core.symmetry import trivial_symmetry
    from dataclasses import replace

    window.state.backend = replace(window.state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    progress = []
    window.state.predictions.predictionProgress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(window.state.predictions.predictionReady, timeout=10000):
        window.model_panel.predict_button.click()
    assert progress[-1] == (4, 4)
    labels = [c.label for c in window.plots.curves]
    assert labels[-1] == AVERAGE_LABEL and len(labels) == 5
    assert window.curve_list.count() == 5
    # Derivative panels share the energy axis with the spectrum.
    assert window.plots.panels[1].getViewBox().linkedView(0) is window.plots.panels[0].getViewBox()
    qtbot.waitUntil(lambda: window.model_panel.predict_button.isEnabled())


def test_curve_visibility_toggle(qtbot, window, tmp_path):
    from model_core.symmetry import trivial_symmetry
    from dataclasses import replace

    window.state.backend = replace(window.state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    predict(qtbot, window.state)
    item = window.curve_list.item(0)
    label = item.text()
    item.setCheckState(Qt.CheckState.Unchecked)
    assert label in window.state.view.settings.hidden_curves
    assert label not in [c.label for c in window.current_curves()]
    plotted = window.plots._items[label][0]
    assert not plotted.isVisible()


def test_energy_reference_absolute(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    prediction = predict(qtbot, window.state)
    assert window.absolute_action.isEnabled()
    edge_energy = window.plots.curves[0].energy.copy()
    window.absolute_action.trigger()
    assert window.state.view.settings.energy_reference == "absolute"
    np.testing.assert_allclose(window.plots.curves[0].energy, edge_energy + prediction.e0_ev[0])


def test_absolute_disabled_without_e0(qtbot, window, tmp_path):
    window.state.predictions.set_predictor(FakePredictor(name="no-e0", with_e0=False))
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    predict(qtbot, window.state)
    assert not window.absolute_action.isEnabled()
    window.state.view.set_view(energy_reference="absolute")
    assert window.plots.curves[0].reference == "edge"


def test_crosshair_readout(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    predict(qtbot, window.state)
    text = window.plots.show_crosshair(5.0)
    assert text.startswith("E = 5.00 eV") and "Cu1" in text


def test_attention_panel_lists_neighbours(qtbot, window, tmp_path):
    open_one(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"))
    predict(qtbot, window.state)
    neighbours = window.attention_panel.neighbours
    assert neighbours and neighbours[0].element == "O"  # the closest atom gets the most weight
    assert window.attention_panel.table.rowCount() == len(neighbours)
    assert abs(sum(n.weight for n in neighbours) - 1.0) < 1e-9


def test_examples_menu_lists_shipped_structures(window):
    names = [a.text() for a in window.examples_menu.actions()]
    assert {"Cu2O", "CuO", "Fe2O3", "NaCl"} <= set(names)
