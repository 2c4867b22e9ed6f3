"""The Infer structure dock: running fills the table and the spread line, a row click overlays
its round-trip spectrum, "Open as structure" adds the cluster as a document; Cancel stops
inside sampling; FEFF10 results and predictions can be inverted too."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from model_core.types import Spectrum
from tests.xanes_gui.fakes import EDGE_EV, GRID, FakeInverter, cu4o_cluster, synthetic_edge, write_two_columns

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


def test_cancel_stops_inside_sampling_and_keeps_the_table(qtbot, fwindow, tmp_path, inverter):
    _doc, panel, _candidates = run_infer(qtbot, fwindow, tmp_path)
    inverse = fwindow.state.inverse
    inverter.gate, inverter.steps, inverter.hold_at = threading.Event(), 50, 10
    # Progress moves step by step while sampling: wait for the report of step 9.
    with qtbot.waitSignal(inverse.progress, timeout=5000, check_params_cb=lambda done, total: done == 2 + 9):
        panel.infer_button.click()
    assert panel.progress_bar.maximum() == 2 + 50 and panel.progress_bar.value() == 2 + 9
    assert inverse.running() and panel.cancel_button.isEnabled() and not panel.infer_button.isEnabled()
    ready = []
    inverse.candidatesReady.connect(ready.append)
    with qtbot.waitSignal(inverse.runningChanged, timeout=10000) as blocker:
        panel.cancel_button.click()
        inverter.gate.set()
    # It stopped at the very next step (step 10 of 50), not at the end of sampling.
    assert inverter.reached == 10
    assert blocker.args == [False] and not ready and not inverse.running()
    assert panel.infer_button.isEnabled() and panel.table.rowCount() == 2


def _feff_result(doc_id):
    from xanes_gui.comparison import FeffResult, FeffSite

    rel = np.linspace(-20.0, 60.0, 121)
    site = FeffSite(site=1, stands_for=(1, 2, 3, 4), run_dir="run1",
                    spectrum=Spectrum(8979.5 + rel, synthetic_edge(rel), label="site 1", e0_ev=8979.5,
                                      metadata={"energy_rel_ev": rel}))
    return FeffResult(preset="fast", edge="K", structure_dir="out", sites=(site,))


def test_sources_list_measured_feff_and_predicted_spectra(qtbot, fwindow, tmp_path, inverter):
    from tests.xanes_gui.test_measured import import_and_wait

    state, panel = fwindow.state, fwindow.infer_panel
    combo = panel.source_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["Current measured spectrum"]
    measured = import_and_wait(qtbot, fwindow, write_two_columns(tmp_path / "meas.dat"))
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    doc = state.structures.current
    state.simulations.add_result(doc.id, _feff_result(doc.id))
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000):
        state.predictions.predict()
    keys = [combo.itemData(i) for i in range(combo.count())]
    assert keys == ["", f"measured:{measured.id}", f"feff:{doc.id}:fast:1", f"predicted:{doc.id}"]
    assert combo.itemText(2) == f"FEFF10 fast #1 Cu · {doc.title}" and combo.currentIndex() == 0
    # A FEFF10 site spectrum is inverted in memory on its edge-relative axis; its E0 places the
    # round trip on the absolute axis, its element is the absorber's.
    combo.setCurrentIndex(2)
    panel.element_combo.setCurrentIndex(0)  # Auto
    with qtbot.waitSignal(state.inverse.candidatesReady, timeout=20000):
        panel.infer_button.click()
    spectrum = inverter.spectra[-1]
    assert inverter.calls[-1][1:4] == ("Cu", panel.samples_spin.value(), None)
    assert spectrum.energy_reference == "edge" and spectrum.e0_ev == 8979.5
    np.testing.assert_allclose(spectrum.energy_ev, np.linspace(-20.0, 60.0, 121))
    with qtbot.waitSignal(state.interpret.overlaysChanged, timeout=1000):
        panel.table.setCurrentCell(0, 0)
    np.testing.assert_allclose(state.interpret.overlays()[-1].energy_ev, GRID + 8979.5)
    np.testing.assert_allclose(state.interpret.overlays()[-1].on_axis("edge"), GRID)  # also edge-relative
    # The prediction: its average on the model grid, at its predicted E0.
    combo.setCurrentIndex(3)
    with qtbot.waitSignal(state.inverse.candidatesReady, timeout=20000):
        panel.infer_button.click()
    prediction = state.predictions.shown_prediction(doc.id)
    spectrum = inverter.spectra[-1]
    np.testing.assert_allclose(spectrum.mu, prediction.average)
    assert spectrum.energy_reference == "edge" and inverter.calls[-1][0] == spectrum.label == combo.itemText(3)
    assert spectrum.e0_ev == pytest.approx(float(np.average(prediction.e0_ev, weights=prediction.weights)))
    # The measured one by name goes by its file, as xanes-invert reads it.
    combo.setCurrentIndex(1)
    with qtbot.waitSignal(state.inverse.candidatesReady, timeout=20000):
        panel.infer_button.click()
    assert inverter.calls[-1][0] == measured.path and inverter.spectra[-1] is None
    # A closed structure takes its sources along; the choice falls back to the current measured one.
    combo.setCurrentIndex(2)
    state.structures.close_structure(doc.id)
    assert [combo.itemData(i) for i in range(combo.count())] == ["", f"measured:{measured.id}"]
    assert combo.currentIndex() == 0


def test_a_gone_source_is_a_message(qtbot, fwindow, inverter):
    errors = []
    fwindow.state.messages.errorMessage.connect(errors.append)
    assert fwindow.state.inverse.infer(4, "Cu", "feff:s9:fast:1") is None
    assert errors == ["The chosen spectrum is gone; choose another"] and inverter.calls == []


def test_backend_inverts_an_edge_spectrum_and_forwards_sampling_progress(monkeypatch):
    import model_core.inverse.api as api
    from xanes_gui.backend import _infer_structure

    class Model:
        energy_ev = GRID

    seen = {}

    def fake_invert(spectrum, element, n_samples, *, model, progress):
        seen["spectrum"] = spectrum
        for step in range(1, 4):
            progress(step, 5)
        return ()

    monkeypatch.setattr(api, "invert", fake_invert)
    reports = []
    rel = np.linspace(-30.0, 80.0, 300)
    result = _infer_structure("FEFF10 fast #1", "Cu", 4, lambda d, t: reports.append((d, t)), model=Model(),
                              spectrum=Spectrum(rel, synthetic_edge(rel), energy_reference="edge", e0_ev=8979.0))
    assert reports == [(0, 3), (1, 3), (2, 3), (3, 7), (4, 7), (5, 7)]
    grid = result["spectrum"]
    assert grid is seen["spectrum"] and grid.e0_ev == 8979.0 and grid.source == "FEFF10 fast #1"
    np.testing.assert_allclose(grid.mu, np.interp(GRID, rel, synthetic_edge(rel)))
    with pytest.raises(ValueError, match="edge-relative"):
        _infer_structure("x", "Cu", 4, lambda d, t: None, model=Model(),
                         spectrum=Spectrum(rel + 8979.0, synthetic_edge(rel), e0_ev=8979.0))
