"""Interpreting a measured spectrum in the app: calibration (signals, session, CSV), the fit
button, Identify with its ranked table and overlays, LCF, and Refine's sliders and button."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from model_core.interpret.calibration import Calibration
from tests.xanes_gui.fakes import FakeRefiner, interpret_backend, write_shifted_prediction, write_xyz

pytest.importorskip("larch")

SLOW = 60000


@pytest.fixture
def refiner():
    return FakeRefiner()


@pytest.fixture
def iwindow(window, predictor, refiner):
    """The main window on a backend whose candidate prediction and refinement are fakes."""
    window.state.backend = interpret_backend(predictor, refiner)
    return window


def prepared(qtbot, window, tmp_path, predictor, offset=0.0):
    """Predict site 1 of the Cu4O cluster, import a measured spectrum of it, wait for the comparison."""
    from tests.xanes_gui.test_measured import import_and_wait, predict_site, wait_comparisons

    state = window.state
    predict_site(qtbot, window, tmp_path, site=1)
    doc = import_and_wait(qtbot, window, write_shifted_prediction(tmp_path / "meas.dat", predictor, 1, offset))
    wait_comparisons(qtbot, state, state.measured.schedule_comparison)
    return doc


def labels(window) -> dict:
    return {c.label: c for c in window.plots.curves}


def test_calibration_signals_session_round_trip_and_csv_header(qtbot, state, tmp_path, predictor):
    from xanes_gui.session import load_session, save_session, session_dict
    from xanes_gui.state import AppState

    calibration = Calibration("Cu", 1.5, "reference", reference="/data/cu_foil.dat", stderr_ev=0.05,
                              details={"metrics": {"mse": 0.001, "pearson_r": math.nan}})
    with qtbot.waitSignal(state.sessionChanged, timeout=5000):
        with qtbot.waitSignal(state.interpret.calibrationChanged, timeout=1000) as blocker:
            state.interpret.set_calibration(calibration)
    assert blocker.args == ["Cu"] and state.interpret.calibration("Cu") is calibration
    json.dumps(session_dict(state), allow_nan=False)  # strict JSON: NaN saved as null
    path = save_session(state, tmp_path / "s.json")

    restored = AppState(interpret_backend(predictor))
    try:
        with qtbot.waitSignal(restored.interpret.calibrationChanged, timeout=5000):
            load_session(restored, path)
        again = restored.interpret.calibration("Cu")
        assert again.shift_ev == 1.5 and again.source == "reference" and again.stderr_ev == 0.05
        assert again.reference == "/data/cu_foil.dat" and again.details["metrics"]["pearson_r"] is None
        # A session from before calibrations existed still loads (uncalibrated).
        old = json.loads(path.read_text())
        del old["calibrations"]
        (tmp_path / "old.json").write_text(json.dumps(old))
        with qtbot.waitSignal(restored.interpret.calibrationChanged, timeout=5000):
            restored.interpret.clear_calibration("Cu")
        load_session(restored, tmp_path / "old.json")
        assert restored.interpret.calibration("Cu") is None
    finally:
        restored.shutdown()
    # Tabulated calibration through the backend (a worker).
    state.backend = interpret_backend(predictor)
    state.predictions.set_model_override(predictor.info.name)
    with qtbot.waitSignal(state.interpret.calibrationChanged, timeout=10000):
        state.interpret.calibrate_tabulated()
    assert state.interpret.calibration("Cu").source == "tabulated"


def test_comparison_csv_header_records_the_calibration(qtbot, iwindow, tmp_path, predictor):
    prepared(qtbot, iwindow, tmp_path, predictor)
    out = iwindow.export_comparison_csv(tmp_path / "cmp.csv")
    assert "# calibration: none (free alignment)" in out.read_text()
    iwindow.state.interpret.set_calibration(Calibration("Cu", 0.75, "tabulated"))
    text = iwindow.export_comparison_csv(tmp_path / "cmp2.csv").read_text()
    assert "# calibration_shift_ev: 0.750" in text and "# calibration_source: tabulated" in text


def test_fit_button_shows_parameters_and_overlays_the_fitted_curve(qtbot, iwindow, tmp_path, predictor):
    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor, offset=2.0)
    box = iwindow.measured_panel.fit_box
    with qtbot.waitSignal(state.interpret.fitReady, timeout=SLOW) as blocker:
        box.fit_button.click()
    fit = blocker.args[0]
    assert fit.shift_ev == pytest.approx(2.0, abs=0.3)
    text = box.result_text()
    assert "free alignment" in text and "shift: " in text and "±" in text and "MSE" in text and "→" in text
    assert fit.metrics_after["mse"] <= fit.metrics_before["mse"]
    curve = labels(iwindow)["fit (free alignment)"]
    assert curve.kind == "fit" and curve.dashed
    np.testing.assert_allclose(curve.mu, fit.fitted)
    # With a calibration the shift is bounded around it and the label says so.
    state.interpret.set_calibration(Calibration("Cu", 1.8, "tabulated"))
    with qtbot.waitSignal(state.interpret.fitReady, timeout=SLOW) as blocker:
        box.fit_button.click()
    assert 0.8 - 1e-9 <= blocker.args[0].shift_ev <= 2.8 + 1e-9
    assert "calibrated tabulated" in box.result_text()
    assert "fit (calibrated tabulated)" in labels(iwindow)


def test_identify_ranks_two_candidates_row_click_overlays_and_lcf(qtbot, iwindow, tmp_path, predictor):
    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor)
    # Site 1 of the measured spectrum: the one-Cu candidate (Cu at index 1) is exactly it.
    exact = write_xyz(tmp_path / "exact.xyz", ["O", "Cu"], [(0, 0, 0), (1.9, 0, 0)])
    other = write_xyz(tmp_path / "other.xyz", ["O", "O", "O", "O", "Cu"],
                      [(0, 0, 0), (3, 0, 0), (0, 3, 0), (0, 0, 3), (1.9, 1.9, 0)])
    panel = iwindow.identify_panel
    state.interpret.add_candidates([exact, other])
    assert panel.candidate_list.count() == 2
    progress = []
    state.interpret.progress.connect(lambda kind, done, total: progress.append((kind, done, total)))
    with qtbot.waitSignal(state.interpret.rankingReady, timeout=SLOW) as blocker:
        panel.identify_button.click()
    ranking = blocker.args[0]
    assert [r.candidate.name for r in ranking] == ["exact", "other"]
    assert ("identify", 2, 2) in progress
    table = panel.ranking_table
    assert table.rowCount() == 2 and table.item(0, 1).text() == "exact" and table.item(0, 0).text() == "1"
    assert float(table.item(0, 7).text()) < float(table.item(1, 7).text())  # MSE
    with qtbot.waitSignal(state.interpret.overlaysChanged, timeout=1000):
        table.setCurrentCell(1, 0)
    curve = labels(iwindow)["identify #2: other"]
    np.testing.assert_allclose(curve.mu, ranking[1].fit.fitted)

    panel.lcf_spin.setValue(2)
    with qtbot.waitSignal(state.interpret.lcfReady, timeout=SLOW) as blocker:
        panel.lcf_button.click()
    results = blocker.args[0]
    assert len(results) == 3 and panel.lcf_table.rowCount() == 3
    assert "±" in panel.lcf_table.item(0, 1).text() or len(results[0].candidates) == 1
    with qtbot.waitSignal(state.interpret.overlaysChanged, timeout=1000):
        panel.lcf_table.setCurrentCell(0, 0)
    assert any(label.startswith("LCF: ") for label in labels(iwindow))


def test_identify_without_candidates_or_measured_is_a_message(qtbot, iwindow):
    with qtbot.waitSignal(iwindow.state.messages.errorMessage, timeout=1000) as blocker:
        iwindow.identify_panel.identify_button.click()
    assert "measured" in blocker.args[0]


def test_refine_sliders_drive_the_live_prediction_and_refine_sets_them(qtbot, iwindow, tmp_path, predictor,
                                                                       refiner):
    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor)
    panel = iwindow.refine_panel
    with qtbot.waitSignal(state.interpret.previewReady, timeout=SLOW):
        panel.sliders["shell_1_scale"].set_value(1.05)
    assert refiner.previews[-1][0][0] == pytest.approx(1.05)
    assert "1.900 → 1.995" in panel.shells_label.text()
    assert not panel.sliders["shell_2_scale"].slider.isEnabled()  # the fake has one shell
    assert "refine: live prediction" in labels(iwindow)
    with qtbot.waitSignal(state.interpret.refineReady, timeout=SLOW):
        panel.refine_button.click()
    assert panel.sliders["shell_1_scale"].value() == pytest.approx(1.03, abs=1e-3)
    assert panel.sliders["shift_ev"].value() == pytest.approx(0.4, abs=0.05)
    assert panel.sliders["scale"].value() == pytest.approx(1.1, abs=0.005)
    text = panel.result_text()
    assert "first shell: 1.900 → 1.957 ± 0.004 Å" in text and "MSE: 0.01 → 0.002" in text
    assert "refine: refined" in labels(iwindow)
    # A calibration far from zero recentres the shift slider on it.
    state.interpret.set_calibration(Calibration("Cu", -21.0, "tabulated"))
    assert panel.sliders["shift_ev"].value() == pytest.approx(-21.0)
    panel.sliders["shift_ev"].set_value(-33.0, quiet=True)
    assert panel.sliders["shift_ev"].value() == pytest.approx(-33.0)


def test_identify_without_a_calibration_uses_the_tabulated_one(qtbot, iwindow, tmp_path, predictor):
    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor)
    state.interpret.add_candidates([write_xyz(tmp_path / "one.xyz", ["O", "Cu"], [(0, 0, 0), (1.9, 0, 0)])])
    with qtbot.waitSignal(state.interpret.rankingReady, timeout=SLOW) as blocker:
        state.interpret.identify()
    assert state.interpret.calibration("Cu").source == "tabulated"
    assert blocker.args[0][0].fit.shift_bounds_ev == pytest.approx((-0.75, 1.25))
    assert "tabulated" in iwindow.identify_panel.calibration_label.text()
    # Removing the measured spectrum drops the overlays fitted to it.
    iwindow.identify_panel.ranking_table.setCurrentCell(0, 0)
    assert state.interpret.overlays()
    with qtbot.waitSignal(state.interpret.overlaysChanged, timeout=1000):
        state.measured.remove(state.measured.current_id)
    assert not state.interpret.overlays()


def test_live_predictions_run_one_at_a_time_and_the_latest_request_wins(qtbot, iwindow, tmp_path, predictor,
                                                                        refiner):
    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor)
    refiner.previews.clear()
    with qtbot.waitSignals([state.interpret.previewReady] * 2, timeout=SLOW):
        for scale in (1.01, 1.02, 1.03):
            state.interpret.preview([scale], 0.0, 0.0, 1.0, 1.0)
    assert [p[0][0] for p in refiner.previews] == [1.01, 1.03]  # 1.02 was replaced while 1.01 ran
    assert not state.interpret.running("preview")


def test_identify_can_be_cancelled(qtbot, iwindow, tmp_path, predictor):
    import threading
    from dataclasses import replace

    state = iwindow.state
    prepared(qtbot, iwindow, tmp_path, predictor)
    started, gate = threading.Event(), threading.Event()

    def blocking(p, paths, element, progress, library=None):
        progress(0, 2)
        started.set()
        gate.wait(10)
        progress(1, 2)  # raises: cancelled meanwhile
        raise AssertionError("not cancelled")

    state.backend = replace(state.backend, predict_candidates=blocking)
    state.interpret.add_candidates([str(tmp_path)])
    panel = iwindow.identify_panel
    panel.identify_button.click()
    assert started.wait(10) and panel.cancel_button.isEnabled() and not panel.identify_button.isEnabled()
    with qtbot.waitSignal(state.interpret.runningChanged, timeout=SLOW, check_params_cb=lambda k, r: not r):
        panel.cancel_button.click()
        gate.set()
    assert state.interpret.ranking == [] and panel.identify_button.isEnabled()


def test_calibration_from_a_measured_reference(qtbot, iwindow, tmp_path, predictor):
    from dataclasses import replace

    state = iwindow.state
    doc = prepared(qtbot, iwindow, tmp_path, predictor)
    calls = []

    def calibrate(p, energy, mu, element, *, structure=None, reference=""):
        calls.append((element, structure, reference, len(energy)))
        return Calibration(element, -0.5, "reference", reference=reference, stderr_ev=0.02)

    state.backend = replace(state.backend, calibrate_reference=calibrate)
    panel = iwindow.identify_panel
    assert panel.reference_combo.currentData() == doc.id
    with qtbot.waitSignal(state.interpret.calibrationChanged, timeout=SLOW):
        panel.reference_button.click()
    assert calls == [("Cu", None, doc.path, len(doc.norm.energy_ev))]  # the metal: built by model_core
    assert "-0.500 ± 0.02 eV (reference from meas.dat)" in panel.calibration_label.text()
    panel.reference_structure_check.setChecked(True)
    with qtbot.waitSignal(state.interpret.calibrationChanged, timeout=SLOW):
        panel.reference_button.click()
    assert calls[-1][1] is state.structures.current.structure


def test_an_overlay_is_drawn_on_either_axis_where_its_edge_is_known():
    from xanes_gui.state.interpret import Overlay

    rel = np.array([-5.0, 0.0, 5.0])
    fit = Overlay("fit", rel + 8979.0, rel, (0, 0, 0))  # absolute, no edge: absolute axis only
    np.testing.assert_allclose(fit.on_axis("absolute"), rel + 8979.0)
    assert fit.on_axis("edge") is None
    placed = Overlay("infer", rel + 8979.0, rel, (0, 0, 0), e0_ev=8979.0)
    np.testing.assert_allclose(placed.on_axis("edge"), rel)
    relative = Overlay("infer", rel, rel, (0, 0, 0), relative=True)  # a source with no E0
    np.testing.assert_allclose(relative.on_axis("edge"), rel)
    assert relative.on_axis("absolute") is None
    np.testing.assert_allclose(Overlay("infer", rel, rel, (0, 0, 0), e0_ev=10.0, relative=True)
                               .on_axis("absolute"), rel + 10.0)
