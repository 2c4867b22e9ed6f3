"""The best inferred candidates in 3-D side by side, in the Infer structure dock (real OpenGL
under Xvfb + Mesa; the captions and the window without OpenGL need none)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from model_core.inverse.api import Candidate
from tests.xanes_gui.fakes import GRID, FakeInverter
from xanes_gui.infer3d import candidate_caption

pytest.importorskip("larch")


def test_caption_names_method_shell_and_round_trip():
    candidate = Candidate(method="retrieval", atomic_numbers=np.array([29, 8, 8]),
                          positions_a=np.array([[0, 0, 0], [1.85, 0, 0], [-1.85, 0, 0]], dtype=float),
                          coordination_number=2, first_shell_distance_a=1.8512, neighbours={"O": 2},
                          roundtrip_mse=0.00412, energy_ev=GRID, roundtrip_mu=GRID * 0)
    assert candidate_caption(2, candidate) == "#2 retrieval\nCN 2 · 1.851 Å\nMSE 0.00412"


def test_no_gallery_without_opengl(window):
    assert window.structure_view is None and window.infer_panel.gallery is None


@pytest.fixture
def gl_window(qtbot, gl_ok, state, settings):
    from xanes_gui.mainwindow import MainWindow

    state.backend = replace(state.backend, infer_structure=FakeInverter().infer_structure)
    win = MainWindow(state, settings=settings, enable_3d=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.mark.gl
def test_best_candidates_in_3d_follow_the_table(qtbot, gl_window, tmp_path):
    from tests.xanes_gui.test_infer import run_infer
    from xanes_gui.elements import jmol_colors
    from xanes_gui.infer3d import ABSORBER_SCALE

    window = gl_window
    window.docks["Infer structure"].raise_()
    gallery = window.infer_panel.gallery
    assert gallery is not None and len(gallery.views) == 3 and gallery.isHidden()  # until there are results
    items = [(v.view, v.atoms, v.absorber, v.bonds) for v in gallery.views]
    _doc, panel, candidates = run_infer(qtbot, window, tmp_path)
    first, second, third = gallery.views
    assert first.isVisible() and second.isVisible() and not third.isVisible()  # two candidates
    assert first.caption.text() == "#1 diffusion\nCN 4 · 1.95 Å\nMSE 0.001"
    assert second.caption.text().startswith("#2 retrieval\nCN 2 ·")
    # The cluster as the main view draws it: element colours, the absorber at the origin highlighted.
    np.testing.assert_allclose(first.geometry.positions, candidates[0].positions_a)
    np.testing.assert_allclose(first.geometry.colors, jmol_colors(candidates[0].atomic_numbers))
    assert len(first.geometry.bonds) == 4
    absorber = first.absorber.opts["meshdata"].vertexes()
    np.testing.assert_allclose(absorber, 0.0, atol=1e-6)  # one sphere (4 corners) at the origin
    assert absorber.shape == (4, 3)
    assert first.absorber.opts["meshdata"]._corners[0, 2] == pytest.approx(first.geometry.radii[0] * ABSORBER_SCALE)
    # Selecting a row frames its view; clicking a view selects its row.
    assert not any(v.selected for v in gallery.views)
    panel.table.setCurrentCell(1, 0)
    assert [v.selected for v in gallery.views] == [False, True, False]
    qtbot.waitExposed(first)
    x, y = first.view.screen_position(0)
    qtbot.mouseClick(first.view, Qt.MouseButton.LeftButton, pos=QPoint(int(x), int(y)))
    assert panel.table.currentRow() == 0 and [v.selected for v in gallery.views] == [True, False, False]
    # Rendered: the absorber's pixel is not the white background.
    image = first.view.grabFramebuffer()
    scale = image.width() / first.view.width()
    pixel = image.pixelColor(int(x * scale), int(y * scale))
    assert (pixel.red(), pixel.green(), pixel.blue()) != (255, 255, 255)
    # New results update the same views and GL items.
    with qtbot.waitSignal(window.state.inverse.candidatesReady, timeout=20000):
        panel.infer_button.click()
    assert [(v.view, v.atoms, v.absorber, v.bonds) for v in gallery.views] == items
    assert not any(v.selected for v in gallery.views) and first.isVisible()


@pytest.mark.gl
def test_a_deferred_3d_view_brings_the_gallery(qtbot, gl_ok, state, settings):
    from xanes_gui.mainwindow import MainWindow

    win = MainWindow(state, settings=settings, enable_3d=True, defer_3d=True)
    qtbot.addWidget(win)
    assert win.infer_panel.gallery is None
    qtbot.waitUntil(lambda: win.structure_view is not None, timeout=10000)
    assert win.infer_panel.gallery is not None
