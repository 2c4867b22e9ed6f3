"""End to end with the real science stack: drop a CIF on the window, pick atoms, predict
with the shipped Cu model, export CSV, PNG and SVG, and check what they contain."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent


@pytest.fixture
def real_window(qtbot, settings):
    from model_core import registry
    from xanes_gui.backend import default_backend
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    if registry.find_model("cu-k-feff") is None:
        pytest.skip("the shipped cu-k-feff model is not installed")
    state = AppState(default_backend())
    with qtbot.waitSignal(state.predictions.engineReady, timeout=120000):
        state.start_engine()
    window = MainWindow(state, settings=settings, enable_3d=False)
    qtbot.addWidget(window)
    yield window
    state.shutdown()


def test_drop_pick_predict_export(qtbot, real_window, tmp_path):
    window, state = real_window, real_window.state
    cif = str(resources.files("xanes_resources") / "structures" / "Cu2O.cif")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(cif)])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(state.structures.fileOpened, timeout=60000):
        window.dropEvent(drop)
    document = state.structures.current
    copper = [i for i, s in enumerate(document.structure.symbols) if s == "Cu"]
    state.structures.set_selection(state.structures.current_id, copper[:2])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=120000) as ready:
        state.predictions.predict()
    prediction = ready.args[1]
    assert prediction.model_name == "cu-k-feff" and prediction.trained
    assert np.all(np.isfinite(prediction.mu))
    # A normalized Cu K edge: near zero well below the edge, around one above it.
    assert prediction.average[0] < 0.5 < prediction.average[-1]

    out = window.export_spectra_csv(tmp_path / "spectra.csv")
    lines = out.read_text().splitlines()
    meta = [line for line in lines if line.startswith("#")]
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert any("cu-k-feff" in line for line in meta)
    assert rows[0][0] == "energy_ev" and any(name.endswith("_d1") for name in rows[0])
    table = np.array(rows[1:], dtype=float)
    assert table.shape[0] == len(prediction.energy_ev)

    window.show()
    qtbot.waitExposed(window)
    png = window.export_spectra_png(tmp_path / "spectra.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    svg = window.export_spectra_svg(tmp_path / "spectra.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
