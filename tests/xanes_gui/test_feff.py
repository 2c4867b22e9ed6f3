"""FEFF10 in the app, with a fake runner: curves, progress, cancel, unavailable FEFF, CSV, session."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pytest

from tests.xanes_gui.fakes import FakeFeff, cu4o_cluster, write_xyz
from model_core.symmetry import trivial_symmetry

pytest.importorskip("model_core.feff.simulation")


def feff_window(qtbot, window, tmp_path, fake, sites=(1, 2), check=lambda: "fake-10.0"):
    """Open the Cu4O cluster (every atom unique), select ``sites``, show the FEFF dialog."""
    state = window.state
    state.backend = replace(state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms),
                            simulate_feff=fake.simulate, check_feff_available=check)
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "cluster.xyz")])
    state.structures.set_selection(state.structures.current_id, list(sites))
    with qtbot.waitSignal(state.simulations.feffChecked, timeout=10000):
        dialog = window.show_feff_dialog()
    dialog.folder_edit.setText(str(tmp_path / "runs"))
    return dialog


def run_and_wait(qtbot, state, dialog):
    with qtbot.waitSignal(state.simulations.feffReady, timeout=10000) as blocker:
        dialog.run()
    return blocker.args[1]


def test_feff_curves_progress_and_estimate(qtbot, window, tmp_path):
    fake = FakeFeff()
    dialog = feff_window(qtbot, window, tmp_path, fake)
    state = window.state
    assert not dialog.isModal()
    assert [dialog.preset_combo.itemData(i) for i in range(dialog.preset_combo.count())] == \
        ["reference", "medium", "fast"]
    assert dialog.preset_name == "fast" and "FMS" in dialog.description_label.text()
    assert "× 2 site(s)" in dialog.time_label.text() and "4 min" in dialog.time_label.text()
    assert "ready" in dialog.status_label.text()
    progress = []
    state.simulations.feffProgress.connect(lambda *args: progress.append(args))
    result = run_and_wait(qtbot, state, dialog)
    assert fake.calls == [("fast", "K", 1, str(tmp_path / "runs"))]
    assert [p[:2] for p in progress] == [(1, 2), (2, 2)] and "done" in progress[-1][2]
    assert [s.site for s in result.spectra] == [1, 2] and result.average is not None
    labels = [c.label for c in window.plots.curves]
    assert labels == ["FEFF fast site 1", "FEFF fast site 2", "FEFF fast average"]
    site1 = window.plots.curves[0]
    assert site1.kind == "feff" and site1.dashed and site1.reference == "edge"
    np.testing.assert_allclose(site1.energy, np.linspace(-20.0, 60.0, 121), atol=1e-3)
    # Absolute energies are FEFF's omega column.
    state.view.set_view(energy_reference="absolute")
    site1 = window.plots.curves[0]
    assert site1.reference == "absolute"
    np.testing.assert_allclose(site1.energy, FakeFeff.e0(1) + np.linspace(-20.0, 60.0, 121), atol=1e-3)
    # Beside the ML prediction, on the same axis, and in the derivative panels.
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000):
        state.predictions.predict()
    kinds = {c.kind for c in window.plots.curves}
    assert kinds == {"prediction", "feff"}
    d2_names = {item.name() for item in window.plots.panels[2].listDataItems() if item.isVisible()}
    assert "FEFF fast average" in d2_names and "average" in d2_names
    # The spectra CSV includes the FEFF curves.
    text = window.export_spectra_csv(tmp_path / "spectra.csv").read_text()
    header = next(line for line in text.splitlines() if not line.startswith("#")).split(",")
    assert "FEFF_fast_site_1" in header and "FEFF_fast_average_d1" in header and "average" in header
    assert "# feff_fast: FEFF10 preset fast" in text


def test_feff_cancel_stops_the_run(qtbot, window, tmp_path):
    gate = threading.Event()
    fake = FakeFeff(gate=gate)
    dialog = feff_window(qtbot, window, tmp_path, fake)
    state = window.state
    with qtbot.waitSignal(state.simulations.feffStarted):
        dialog.run()
    assert fake.started.wait(10)
    assert dialog.cancel_button.isEnabled() and not dialog.run_button.isEnabled()
    with qtbot.waitSignal(state.simulations.feffFinished, timeout=10000):
        dialog.cancel_button.click()
        gate.set()
    assert fake.cancel_seen
    assert not state.simulations.running and state.simulations.results() == {}
    assert not any(c.kind == "feff" for c in window.plots.curves)
    assert dialog.run_button.isEnabled()


def test_unavailable_feff_is_one_message_and_app_keeps_working(qtbot, window, tmp_path):
    from model_core.feff.errors import FeffUnavailableError

    def missing():
        raise FeffUnavailableError("FEFF10 is not available: importing 'feff10' failed (ImportError: nope); "
                                   "install it with `pip install feff10-rs`")

    fake = FakeFeff()
    dialog = feff_window(qtbot, window, tmp_path, fake, check=missing)
    state = window.state
    assert "not available" in dialog.status_label.text()
    errors = []
    state.messages.errorMessage.connect(errors.append)
    with qtbot.waitSignal(state.simulations.feffFinished, timeout=10000):
        dialog.run()
    assert len(errors) == 1 and "FEFF10 is not available" in errors[0] and "pip install feff10-rs" in errors[0]
    assert "FeffUnavailableError" not in errors[0]
    assert fake.calls == []
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000):
        state.predictions.predict()


def test_element_without_model_can_be_simulated(qtbot, window, tmp_path):
    state = window.state
    fake = FakeFeff()
    state.backend = replace(state.backend, simulate_feff=fake.simulate, check_feff_available=lambda: "fake")
    path = write_xyz(tmp_path / "zno.xyz", ["Zn", "O"], [(0, 0, 0), (1.9, 0, 0)])
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([path])
    state.structures.select_element(None, "Zn")
    panel = window.model_panel
    assert "No ML model for Zn — you can still simulate with FEFF10" in panel.warning_label.text()
    assert panel.simulate_button.isEnabled() and not panel.predict_button.isEnabled()
    with qtbot.waitSignal(state.simulations.feffChecked, timeout=10000):
        panel.simulate_button.click()
    dialog = window.feff_dialog
    dialog.folder_edit.setText(str(tmp_path / "zn"))
    result = run_and_wait(qtbot, state, dialog)
    assert [s.site for s in result.spectra] == [0] and result.average is None
    assert [c.label for c in window.plots.curves] == ["FEFF fast site 0"]
    assert state.measured.comparison_target()[0] == "feff"


def test_feff_session_round_trip(qtbot, window, tmp_path):
    from tests.xanes_gui.fakes import fake_backend
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    fake = FakeFeff()
    dialog = feff_window(qtbot, window, tmp_path, fake)
    state = window.state
    result = run_and_wait(qtbot, state, dialog)
    session = window.save_session(tmp_path / "session.json")
    data = json.loads(session.read_text())
    assert data["feff"][0]["preset"] == "fast"
    assert [r["run_dir"] for r in data["feff"][0]["runs"]] == [s.run_dir for s in result.sites]

    fresh = AppState(fake_backend(analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms)))
    with qtbot.waitSignal(fresh.predictions.engineReady):
        fresh.start_engine()
    restored = MainWindow(fresh, settings=window.settings, enable_3d=False)
    qtbot.addWidget(restored)
    restorer = restored.load_session(session)
    with qtbot.waitSignal(restorer.finished, timeout=10000) as blocker:
        pass
    assert blocker.args == [[]]
    [again] = fresh.simulations.results().values()
    assert [s.site for s in again.spectra] == [1, 2] and again.average is not None
    np.testing.assert_allclose(again.sites[0].spectrum.mu, result.sites[0].spectrum.mu)
    assert "FEFF fast average" in [c.label for c in restored.plots.curves]
    fresh.shutdown()
