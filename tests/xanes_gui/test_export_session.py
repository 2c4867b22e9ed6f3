"""Export (CSV, PNG, SVG) and session save/restore."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np

from tests.xanes_gui.fakes import cu4o_cluster
from xanes_gui.export import curves_table
from xanes_gui.plots import curves_for, derivatives
from model_core.symmetry import trivial_symmetry


def predicted_window(qtbot, window, tmp_path, unique_sites=True):
    if unique_sites:
        window.state.backend = replace(window.state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))
    path = cu4o_cluster(tmp_path / "cluster.xyz")
    with qtbot.waitSignal(window.state.structures.fileOpened, timeout=10000):
        window.state.structures.open_files([path])
    window.state.structures.set_selection(window.state.structures.current_id, [1, 2])
    with qtbot.waitSignal(window.state.predictions.predictionReady, timeout=10000) as blocker:
        window.state.predictions.predict()
    return path, blocker.args[1]


def read_csv(path):
    lines = path.read_text().splitlines()
    meta = dict(line[2:].split(": ", 1) for line in lines if line.startswith("#"))
    rows = [line for line in lines if not line.startswith("#")]
    header = rows[0].split(",")
    data = np.array([[float(v) if v else np.nan for v in row.split(",")] for row in rows[1:]])
    return meta, header, data


def test_csv_content(qtbot, window, tmp_path):
    source, prediction = predicted_window(qtbot, window, tmp_path)
    out = window.export_spectra_csv(tmp_path / "spectra.csv")
    meta, header, data = read_csv(out)
    assert meta["model"] == "fake-cu-k" and meta["trained"] == "true"
    assert meta["element"] == "Cu" and meta["edge"] == "K"
    assert meta["energy_reference"] == "E - E0 (eV)"
    assert meta["structure_source"] == source
    assert meta["sites_and_weights"] == "1:1, 2:1"
    assert header == ["energy_ev", "Cu1", "Cu1_d1", "Cu1_d2", "Cu2", "Cu2_d1", "Cu2_d2",
                      "average", "average_d1", "average_d2"]
    assert data.shape == (len(prediction.energy_ev), 10)
    np.testing.assert_allclose(data[:, 0], prediction.energy_ev, rtol=1e-7)
    np.testing.assert_allclose(data[:, 1], prediction.mu[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(data[:, 7], prediction.average, rtol=1e-6, atol=1e-9)
    d1, d2 = derivatives(prediction.energy_ev, prediction.average)
    np.testing.assert_allclose(data[:, 8], d1, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(data[:, 9], d2, rtol=1e-5, atol=1e-9)


def test_csv_absolute_interpolates_to_one_grid(qtbot, window, tmp_path):
    _, prediction = predicted_window(qtbot, window, tmp_path)
    window.state.view.set_view(energy_reference="absolute")
    meta, header, data = read_csv(window.export_spectra_csv(tmp_path / "abs.csv"))
    assert meta["energy_reference"] == "E (absolute, eV)"
    from model_core.spectra.absolute import on_absolute_grid

    # The average's grid, as xanes-predict --energy absolute: the overlap of the sites' ranges.
    np.testing.assert_allclose(data[:, 0], on_absolute_grid(prediction).energy_ev, rtol=1e-7)
    # Site 1's own grid is shifted by its own E0: interpolated, NaN past its end.
    expected = np.interp(data[:, 0], prediction.energy_ev + prediction.e0_ev[0], prediction.mu[0],
                         left=np.nan, right=np.nan)
    np.testing.assert_allclose(data[:, 1], expected, rtol=1e-6, atol=1e-9)


def test_csv_untrained_warning_and_hidden_curves(qtbot, window, tmp_path):
    from tests.xanes_gui.fakes import FakePredictor

    window.state.predictions.set_predictor(FakePredictor(name="raw", trained=False))
    predicted_window(qtbot, window, tmp_path)
    window.state.view.set_curve_visible("Cu2", False)
    meta, header, _ = read_csv(window.export_spectra_csv(tmp_path / "u.csv"))
    assert meta["trained"] == "false" and "UNTRAINED" in meta["warning"]
    assert "Cu2" not in header and "Cu1" in header


def test_png_and_svg_export(qtbot, window, tmp_path):
    predicted_window(qtbot, window, tmp_path)
    window.show()
    qtbot.waitExposed(window)
    png = window.export_spectra_png(tmp_path / "spectra.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    svg = window.export_spectra_svg(tmp_path / "spectra.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter("{http://www.w3.org/2000/svg}path"))) + len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) > 3
    att = window.export_attention(tmp_path / "attention.svg", "svg")
    ET.parse(att)
    assert window.export_attention(tmp_path / "attention.png", "png").stat().st_size > 0


def test_export_without_prediction_is_an_error(window, tmp_path):
    import pytest

    with pytest.raises(ValueError, match="predict first"):
        window.export_spectra_csv(tmp_path / "none.csv")


def test_curves_table_single_curve():
    from xanes_gui.plots import Curve

    e = np.linspace(0, 10, 11)
    curve = Curve("site 0", e, e ** 2, 2 * e, np.full_like(e, 2), "edge", 0, 1.0)
    header, table = curves_table([curve])
    assert header == ["energy_ev", "site 0", "site 0_d1", "site 0_d2"]
    np.testing.assert_allclose(table[:, 1], e ** 2)


def test_derivatives_of_a_parabola():
    e = np.linspace(-5, 5, 101)
    d1, d2 = derivatives(e, e ** 2)
    np.testing.assert_allclose(d1[1:-1], 2 * e[1:-1], atol=1e-9)
    np.testing.assert_allclose(d2[2:-2], 2.0, atol=1e-9)


def test_curves_for_single_site_has_no_average(predictor, tmp_path):
    from tests.xanes_gui.fakes import simple_read

    structure = simple_read(cu4o_cluster(tmp_path / "a.xyz"))
    curves = curves_for(predictor.predict(structure, [1]))
    assert [c.label for c in curves] == ["site 1"]


def test_session_round_trip(qtbot, window, tmp_path, state):
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState
    from tests.xanes_gui.fakes import fake_backend

    paths = [cu4o_cluster(tmp_path / "one.xyz"), cu4o_cluster(tmp_path / "two.xyz")]
    with qtbot.waitSignals([state.structures.fileOpened] * 2, timeout=10000):
        state.structures.open_files(paths)
    one = next(d for d in state.structures.documents if d.structure.name == "one")
    state.structures.set_selection(one.id, [0, 2])
    state.structures.set_current(one.id)
    state.view.set_view(energy_reference="absolute", hidden_curves=frozenset({"average"}), supercell=(2, 1, 1))
    library = tmp_path / "library"
    library.mkdir()
    state.interpret.add_candidates([str(paths[1])])
    state.interpret.set_library(str(library))
    session = window.save_session(tmp_path / "session.json")
    data = json.loads(session.read_text())
    # Documents are listed in the order their background reads finished, so compare as a set.
    assert sorted(s["path"] for s in data["structures"]) == sorted(str(p) for p in paths)

    fresh = AppState(fake_backend())
    with qtbot.waitSignal(fresh.predictions.engineReady):
        fresh.start_engine()
    restored_window = MainWindow(fresh, settings=window.settings, enable_3d=False)
    qtbot.addWidget(restored_window)
    restorer = restored_window.load_session(session)
    with qtbot.waitSignal(restorer.finished, timeout=10000) as blocker:
        pass
    assert blocker.args == [[]]
    assert sorted(d.structure.name for d in fresh.structures.documents) == ["one", "two"]
    assert fresh.structures.current.structure.name == "one"
    assert list(fresh.structures.current.selection.indices) == [0, 2]
    assert fresh.view.settings.energy_reference == "absolute"
    assert fresh.view.settings.hidden_curves == frozenset({"average"})
    assert fresh.view.settings.supercell == (2, 1, 1)
    assert fresh.interpret.candidate_paths == [str(paths[1])] and fresh.interpret.library == str(library)
    fresh.shutdown()


def test_session_reports_missing_files(qtbot, window, tmp_path):
    good = cu4o_cluster(tmp_path / "here.xyz")
    session = tmp_path / "s.json"
    session.write_text(json.dumps({"version": 1, "structures": [
        {"path": good, "selection": [1]}, {"path": str(tmp_path / "gone.cif"), "selection": []}],
        "current": 0, "model": "", "device": "cpu", "view": {},
        "identify": {"candidates": [good, str(tmp_path / "gone-candidate.cif")], "library": ""}}))
    messages = []
    window.state.messages.errorMessage.connect(messages.append)
    restorer = window.load_session(session)
    with qtbot.waitSignal(restorer.finished, timeout=10000) as blocker:
        pass
    assert blocker.args[0] == [str(tmp_path / "gone-candidate.cif"), str(tmp_path / "gone.cif")]
    assert any("gone.cif" in m and "not found" in m for m in messages)
    assert window.state.interpret.candidate_paths == [good]
    assert [d.structure.name for d in window.state.structures.documents] == ["here"]


def test_bad_session_file_is_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with qtbot.waitSignal(window.state.messages.errorMessage) as blocker:
        assert window.load_session(bad) is None
    assert "bad.json" in blocker.args[0]
