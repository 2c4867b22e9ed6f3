"""The Infer structure dock: running fills the table and the spread line, a row click overlays
its round-trip spectrum, "Open as structure" adds the cluster as a document."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from tests.xanes_gui.fakes import EDGE_EV, GRID, FakeInverter, write_two_columns

pytest.importorskip("larch")


@pytest.fixture
def inverter():
    return FakeInverter()


@pytest.fixture
def fwindow(window, inverter):
    window.state.backend = replace(window.state.backend, infer_structure=inverter.infer_structure)
    return window


def run_infer(qtbot, window, tmp_path):
    from tests.xanes_gui.test_measured import import_and_wait

    doc = import_and_wait(qtbot, window, write_two_columns(tmp_path / "meas.dat"))
    panel = window.infer_panel
    panel.samples_spin.setValue(8)
    # A two-column file names no element and no structure is open: the element is chosen.
    panel.element_combo.setCurrentIndex(panel.element_combo.findData("Cu"))
    with qtbot.waitSignal(window.state.inverse.candidatesReady, timeout=20000) as blocker:
        panel.infer_button.click()
    return doc, panel, blocker.args[0]


def test_infer_fills_the_table_and_the_spread(qtbot, fwindow, tmp_path, inverter):
    doc, panel, candidates = run_infer(qtbot, fwindow, tmp_path)
    assert len(candidates) == 2
    # The measured file and group, as xanes-invert reads them.
    assert inverter.calls == [(doc.path, "Cu", 8, doc.data.group, None)]
    table = panel.table
    assert table.rowCount() == 2
    assert [table.item(0, c).text() for c in range(5)] == ["1", "diffusion", "4", "1.95", "O4"]
    assert table.item(1, 1).text() == "retrieval" and table.item(1, 2).text() == "2"
    assert float(table.item(0, 5).text()) < float(table.item(1, 5).text())
    assert panel.summary_label.text() == "1 diffusion samples: CN 4: 1; first shell 1.950 ± 0.000 Å"
    assert panel.infer_button.isEnabled() and not panel.cancel_button.isEnabled()
    # A second run reuses the loaded inverse model.
    with qtbot.waitSignal(fwindow.state.inverse.candidatesReady, timeout=20000):
        panel.infer_button.click()
    assert inverter.calls[-1][-1] == "fake-inverse"


def test_row_click_overlays_the_round_trip_and_open_adds_a_structure(qtbot, fwindow, tmp_path):
    _doc, panel, candidates = run_infer(qtbot, fwindow, tmp_path)
    state = fwindow.state
    assert not panel.open_button.isEnabled()
    with qtbot.waitSignal(state.interpret.overlaysChanged, timeout=1000):
        panel.table.setCurrentCell(1, 0)
    curve = {c.label: c for c in fwindow.plots.curves}["infer #2: retrieval CN 2"]
    np.testing.assert_allclose(curve.energy, GRID + EDGE_EV)
    np.testing.assert_allclose(curve.mu, candidates[1].roundtrip_mu)
    assert panel.open_button.isEnabled()
    with qtbot.waitSignal(state.structures.structureAdded, timeout=1000) as blocker:
        panel.open_button.click()
    doc = state.structures.documents[-1]
    assert doc.id == blocker.args[0] == state.structures.current_id
    assert doc.structure.symbols[0] == "Cu" and doc.structure.n_atoms == 3
    assert doc.structure.name == "infer #2 retrieval (CN 2)"
    # The cluster's Cu absorber is now selected: the element of the next run comes from it.
    assert state.inverse.element() == "Cu"


def test_infer_without_a_measured_spectrum_is_a_message(qtbot, fwindow, inverter):
    errors = []
    fwindow.state.messages.errorMessage.connect(errors.append)
    assert fwindow.state.inverse.infer(4) is None
    assert errors == ["Import a measured spectrum first"] and inverter.calls == []


def test_cancel_stops_the_run_and_keeps_the_table(qtbot, fwindow, tmp_path, inverter):
    _doc, panel, _candidates = run_infer(qtbot, fwindow, tmp_path)
    inverse = fwindow.state.inverse
    inverter.gate = gate = threading.Event()
    with qtbot.waitSignal(inverse.progress, timeout=5000):
        panel.infer_button.click()
    assert inverse.running() and panel.cancel_button.isEnabled() and not panel.infer_button.isEnabled()
    ready = []
    inverse.candidatesReady.connect(ready.append)
    with qtbot.waitSignal(inverse.runningChanged, timeout=10000) as blocker:
        panel.cancel_button.click()
        gate.set()
    assert blocker.args == [False] and not ready and not inverse.running()
    assert panel.infer_button.isEnabled() and panel.table.rowCount() == 2
