"""Measured spectra: import (files, drop routing, column and group choosers), normalization
editor and preview, overlay with the prediction, auto-align, metrics, CSV, errors, session."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.xanes_gui.fakes import (cu4o_cluster, write_i0_it, write_shifted_prediction, write_two_columns,
                                   write_xdi)
from model_core.symmetry import trivial_symmetry

pytest.importorskip("larch")

SLOW = 60000  # ms: the first test imports larch (seconds on a loaded machine)


def import_and_wait(qtbot, window, path):
    """Import (through the drop routing) and wait until the spectrum is normalized."""
    state = window.state
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW) as blocker:
        structures, measured = window.open_any([path])
    assert measured == [str(path)] and not structures
    return state.measured.doc(blocker.args[0])


def predict_site(qtbot, window, tmp_path, site=1):
    state = window.state
    state.backend = replace(state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "cluster.xyz")])
    state.structures.set_selection(state.structures.current_id, [site])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000) as blocker:
        state.predictions.predict()
    return blocker.args[1]


def wait_comparisons(qtbot, state, trigger):
    with qtbot.waitSignal(state.measured.comparisonsReady, timeout=SLOW,
                          check_params_cb=lambda result: bool(result)) as blocker:
        trigger()
    return blocker.args[0]


def test_two_column_file_is_imported_and_drawn_on_absolute_axis(qtbot, window, tmp_path):
    doc = import_and_wait(qtbot, window, write_two_columns(tmp_path / "scan.dat"))
    assert doc.norm is not None and doc.norm_error == ""
    assert abs(doc.norm.e0 - 8980.0) < 1.5
    assert abs(doc.norm.edge_step - 1.5) < 0.2
    curves = {c.label: c for c in window.plots.curves}
    assert doc.label in curves and curves[doc.label].kind == "measured"
    assert curves[doc.label].reference == "absolute"
    np.testing.assert_allclose(curves[doc.label].energy, doc.data.energy_ev)
    assert "E (eV)" in window.plots.panels[0].getAxis("bottom").labelText
    # The list shows it, checked, with its colour swatch.
    panel = window.measured_panel
    item = panel.item_for(doc.id)
    assert item is not None and not item.icon().isNull()
    item.setCheckState(item.checkState().Unchecked)
    assert not window.state.measured.doc(doc.id).visible
    assert doc.label not in {c.label for c in window.plots.curves}


def test_xdi_file_and_routing_of_structures(qtbot, window, tmp_path):
    state = window.state
    doc = import_and_wait(qtbot, window, write_xdi(tmp_path / "cu.xdi"))
    assert doc.data.format == "xdi" and doc.data.element == "Cu"
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        structures, measured = window.open_any([cu4o_cluster(tmp_path / "c.xyz")])
    assert structures and not measured
    assert len(state.structures.documents) == 1 and len(state.measured.docs) == 1


def test_column_chooser_choice_is_used_and_remembered(qtbot, window, tmp_path):
    from model_core.spectra.measured import ChannelChoice

    state = window.state
    path = write_i0_it(tmp_path / "scan3.dat")
    with qtbot.waitSignal(state.measured.measuredNeedsColumns, timeout=SLOW) as blocker:
        window.open_any([path])
    assert blocker.args[1] == ["energy", "mon", "det"]
    chooser = window.choosers.column_chooser
    assert chooser is not None and not chooser.isModal() and chooser.isVisible()
    chooser.set_choice(ChannelChoice("energy", "det", "mon", "transmission"))
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW) as done:
        chooser.accept()
    doc = state.measured.doc(done.args[0])
    assert doc.data.channel == "transmission -ln(det/mon)"
    assert doc.columns == ChannelChoice("energy", "det", "mon", "transmission")
    assert doc.norm is not None and abs(doc.norm.edge_step - 1.5) < 0.2
    # Remembered in the settings under the column names: the next file with the
    # same columns is read without asking.
    assert "energy|mon|det" in window.settings.value("measuredColumnChoices")
    needs = []
    state.measured.measuredNeedsColumns.connect(lambda *args: needs.append(args))
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW):
        state.measured.import_files([write_i0_it(tmp_path / "again.dat")])
    assert not needs and len(state.measured.docs) == 2
    assert state.measured.docs[1].data.channel == "transmission -ln(det/mon)"


def test_athena_group_chooser(qtbot, window, tmp_path):
    from model_core.spectra.larch_compat import import_larch

    larch = import_larch()
    from larch import Group
    from larch.io import AthenaProject

    path = tmp_path / "project.prj"
    energy = np.arange(8880.0, 9180.0, 0.5)
    project = AthenaProject(str(path))
    for k in range(3):
        project.add_group(Group(energy=energy, mu=np.asarray(
            0.3 + 1.5 * (0.5 + np.arctan((energy - 8980.0 - k) / 2.0) / np.pi)), filename=f"scan{k}"))
    project.save()
    assert larch is not None
    state = window.state
    with qtbot.waitSignal(state.measured.measuredNeedsGroup, timeout=SLOW) as blocker:
        window.open_any([str(path)])
    assert blocker.args[1] == ["scan0", "scan1", "scan2"]
    chooser = window.choosers.group_chooser
    assert chooser is not None and not chooser.isModal()
    chooser.set_checked(["scan1", "scan2"])
    with qtbot.waitSignals([state.measured.measuredNormalized] * 2, timeout=SLOW):
        chooser.accept()
    assert sorted(d.data.group for d in state.measured.docs) == ["scan1", "scan2"]
    assert len({d.color for d in state.measured.docs}) == 2  # each its own colour


def test_normalization_preview_follows_parameters(qtbot, window, tmp_path):
    state = window.state
    doc = import_and_wait(qtbot, window, write_two_columns(tmp_path / "scan.dat"))
    panel = window.measured_panel
    raw_x, raw_y = panel.raw_item.getData()
    np.testing.assert_allclose(raw_y, doc.data.mu)
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW):
        panel.set_param_text("pre1", "-60")
    doc = state.measured.doc(doc.id)
    assert doc.params.pre1 == -60.0 and doc.norm.params.pre1 == pytest.approx(-60.0)
    _, pre = panel.pre_item.getData()
    _, post = panel.post_item.getData()
    np.testing.assert_allclose(pre, doc.norm.pre_edge_line)
    np.testing.assert_allclose(post, doc.norm.post_edge_curve)
    assert panel.fields["pre1"].text() == "-60"
    # Empty fields are automatic and show the value larch chose.
    assert panel.fields["norm2"].text() == "" and "auto (" in panel.fields["norm2"].placeholderText()
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW):
        panel.nnorm_combo.setCurrentIndex(panel.nnorm_combo.findData(0))
    assert state.measured.doc(doc.id).norm.params.nnorm == 0
    # A bad number is a message, not a renormalization.
    with qtbot.waitSignal(state.messages.errorMessage) as blocker:
        panel.set_param_text("e0", "abc")
    assert "e0" in blocker.args[0]
    # norm / flat choice changes the drawn curve.
    panel.show_combo.setCurrentIndex(1)
    doc = state.measured.doc(doc.id)
    assert not doc.use_flat
    curve = next(c for c in window.plots.curves if c.label == doc.label)
    np.testing.assert_allclose(curve.mu, doc.norm.norm)


def test_overlay_auto_align_metrics_and_csv(qtbot, window, tmp_path, predictor):
    state = window.state
    prediction = predict_site(qtbot, window, tmp_path, site=1)
    offset = 3.0
    doc = import_and_wait(qtbot, window, write_shifted_prediction(tmp_path / "meas.dat", predictor, 1, offset))
    comparisons = wait_comparisons(qtbot, state, lambda: state.measured.schedule_comparison())
    before = comparisons[doc.id]
    assert before.shift_ev == 0.0
    # Auto-align finds the known offset and the comparison improves.
    with qtbot.waitSignal(state.measured.alignChanged, timeout=SLOW):
        state.measured.auto_align()
    assert state.measured.align.shift_ev == pytest.approx(offset, abs=0.3)
    assert window.measured_panel.shift_spin.value() == pytest.approx(state.measured.align.shift_ev, abs=0.01)
    comparisons = wait_comparisons(qtbot, state, lambda: None)
    after = comparisons[doc.id]
    assert after.metrics["pearson_r_deriv"] > 0.95 > before.metrics["pearson_r_deriv"]
    assert after.metrics["mse"] < before.metrics["mse"]
    assert "Pearson r (dμ/dE)" in window.measured_panel.metrics_text()
    # Prediction and measured share the absolute axis; the prediction is placed at E0 + shift.
    curves = {c.label: c for c in window.plots.curves}
    site_curve = next(c for c in curves.values() if c.kind == "prediction")
    assert site_curve.reference == "absolute"
    np.testing.assert_allclose(site_curve.energy,
                               prediction.energy_ev + prediction.e0_ev[0] + state.measured.align.shift_ev)
    # Derivative panels show both.
    labels_in_d1 = {item.name() for item in window.plots.panels[1].listDataItems() if item.isVisible()}
    assert doc.label in labels_in_d1 and site_curve.label in labels_in_d1
    # Broadening and a window change the comparison.
    comparisons = wait_comparisons(qtbot, state, lambda: state.measured.set_align(broaden_fwhm_ev=1.0,
                                                                                  window=(8960.0, 9040.0)))
    result = comparisons[doc.id]
    assert result.broaden_fwhm_ev == 1.0 and 8960.0 <= result.window[0] < result.window[1] <= 9040.0

    out = window.export_comparison_csv(tmp_path / "comparison.csv")
    lines = out.read_text().splitlines()
    meta = dict(line[2:].split(": ", 1) for line in lines if line.startswith("#"))
    assert meta["measured_file"] == doc.path and meta["model"] == "fake-cu-k"
    assert float(meta["shift_ev"]) == pytest.approx(state.measured.align.shift_ev, abs=1e-3)
    assert "gaussian FWHM 1 eV" in meta["broadening"]
    header = next(line for line in lines if not line.startswith("#"))
    assert header == "energy_ev,measured,predicted,d_measured,d_predicted"
    data = np.array([[float(v) for v in line.split(",")]
                     for line in [x for x in lines if not x.startswith("#")][1:]])
    np.testing.assert_allclose(data[:, 0], result.energy_ev, atol=1e-4)
    np.testing.assert_allclose(data[:, 2], result.predicted, rtol=1e-5, atol=1e-6)
    # The spectra CSV holds the prediction and the measured curve on one grid.
    meta_lines = window.export_spectra_csv(tmp_path / "all.csv").read_text().splitlines()
    header = next(line for line in meta_lines if not line.startswith("#")).split(",")
    assert any(h.startswith("meas") for h in header) and "# alignment_shift_ev: " in "\n".join(meta_lines)


def test_bad_files_are_messages_and_keep_data(qtbot, window, tmp_path):
    state = window.state
    good = import_and_wait(qtbot, window, write_two_columns(tmp_path / "good.dat"))
    bad = tmp_path / "garbage.txt"
    bad.write_text("this is not\na spectrum\n")
    with qtbot.waitSignal(state.measured.measuredFailed, timeout=SLOW) as blocker:
        window.open_any([str(bad)])
    assert "garbage.txt" in blocker.args[1]
    assert not window.banner.isHidden() and "garbage.txt" in window.banner.label.text()
    # Too short a range above the edge: read fine, but cannot be normalized.
    energy = np.arange(8950.0, 8985.0, 0.5)
    short = write_two_columns(tmp_path / "short.dat", energy)
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW) as blocker:
        window.open_any([short])
    doc = state.measured.doc(blocker.args[0])
    assert doc.norm is None and "too short" in doc.norm_error
    assert any("short.dat" in m and "too short" in m for m in window.message_log.messages())
    assert doc.label not in {c.label for c in window.plots.curves}
    # keV energies are repaired, and the repair is logged.
    kev = write_two_columns(tmp_path / "kev.dat", np.arange(8.880, 9.180, 0.0005),
                            header="# energy mu")
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW) as blocker:
        window.open_any([kev])
    assert "keV" in " ".join(state.measured.doc(blocker.args[0]).data.warnings)
    assert any("kev.dat" in m and "keV" in m for m in window.message_log.messages())
    assert state.measured.doc(good.id) is not None and state.measured.doc(good.id).norm is not None


def test_session_round_trip_with_measured(qtbot, window, tmp_path):
    from tests.xanes_gui.fakes import fake_backend
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    state = window.state
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "one.xyz")])
    doc = import_and_wait(qtbot, window, write_two_columns(tmp_path / "scan.dat"))
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW):
        window.measured_panel.set_param_text("norm1", "40")
    state.measured.set_use_flat(doc.id, False)
    state.measured.set_align(shift_ev=-1.25, broaden_fwhm_ev=0.8, broaden_kind="lorentzian")
    session = window.save_session(tmp_path / "session.json")
    data = json.loads(session.read_text())
    assert data["measured"][0]["path"] == os.path.abspath(doc.path)
    assert data["measured"][0]["params"]["norm1"] == 40.0

    fresh = AppState(fake_backend())
    with qtbot.waitSignal(fresh.predictions.engineReady):
        fresh.start_engine()
    restored = MainWindow(fresh, settings=window.settings, enable_3d=False)
    qtbot.addWidget(restored)
    restorer = restored.load_session(session)
    with qtbot.waitSignal(restorer.finished, timeout=SLOW) as blocker:
        pass
    assert blocker.args == [[]]
    [m] = fresh.measured.docs
    assert m.path == doc.path and m.params.norm1 == 40.0 and not m.use_flat and m.color == doc.color
    if m.norm is None or m.norm.params.norm1 != pytest.approx(40.0):
        with qtbot.waitSignal(fresh.measured.measuredNormalized, timeout=SLOW):
            pass
    assert fresh.measured.doc(m.id).norm.params.norm1 == pytest.approx(40.0)
    assert fresh.measured.align.shift_ev == -1.25 and fresh.measured.align.broaden_kind == "lorentzian"
    assert restored.measured_panel.shift_spin.value() == pytest.approx(-1.25)
    fresh.shutdown()


def shared_root() -> Path:
    return Path(os.environ.get("XANES_SHARED") or Path(__file__).resolve().parents[3] / "shared")


def test_real_cu_metal_xdi(qtbot, window):
    path = shared_root() / "data" / "measured" / "Cu" / "cu_metal_rt.xdi"
    if not path.is_file():
        pytest.skip(f"{path} not available (set XANES_SHARED)")
    doc = import_and_wait(qtbot, window, str(path))
    assert doc.data.element == "Cu" and doc.norm is not None
    assert 8975.0 < doc.norm.e0 < 8985.0
    assert doc.label in {c.label for c in window.plots.curves}
