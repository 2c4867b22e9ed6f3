"""How far to trust a prediction in the app: domain score column and curve warning,
attention relative to its uniform share with the first-shell total."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.trust.attribution import first_shell, relative_attention
from tests.xanes_gui.fakes import FakePredictor, cu4o_cluster, open_and_predict
from xanes_gui.plots import OUT_OF_DOMAIN_WARNING
from xanes_gui.sitetable import DOMAIN_COLUMN, OUT_OF_DOMAIN_TIP

from PySide6.QtCore import Qt


def _scores(i: int) -> float:
    """Site 1 in the domain, every other site outside it."""
    return 0.4 if i == 1 else 2.5


@pytest.fixture
def predictor():
    return FakePredictor(domain_score=_scores)


def _trivial(window):
    from dataclasses import replace

    from model_core.symmetry import trivial_symmetry

    window.state.backend = replace(window.state.backend, analyze_symmetry=lambda s: trivial_symmetry(s.n_atoms))


def test_domain_column_shows_scores_and_highlights_outside(qtbot, window, tmp_path):
    _trivial(window)
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2])
    np.testing.assert_allclose(prediction.domain_score, [0.4, 2.5])
    model = window.site_panel.model
    cell = lambda row, role=Qt.ItemDataRole.DisplayRole: model.data(model.index(row, DOMAIN_COLUMN), role)  # noqa: E731
    assert [cell(r) for r in range(5)] == ["", "0.40", "2.50", "", ""]  # only predicted sites
    assert cell(1, Qt.ItemDataRole.ForegroundRole) is None
    assert cell(2, Qt.ItemDataRole.ForegroundRole) is not None
    assert cell(2, Qt.ItemDataRole.ToolTipRole) == OUT_OF_DOMAIN_TIP


def test_equivalent_sites_share_the_representatives_score(qtbot, window, tmp_path):
    # The fake symmetry makes the 4 Cu equivalent: one representative is predicted.
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2, 3, 4])
    assert len(prediction.site_indices) == 1
    model = window.site_panel.model
    texts = [model.data(model.index(r, DOMAIN_COLUMN)) for r in range(5)]
    assert texts[0] == "" and len(set(texts[1:])) == 1 and texts[1] != ""


def test_no_domain_index_leaves_the_column_empty(qtbot, window, tmp_path):
    window.state.predictions.set_predictor(FakePredictor(name="no-index"))
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    model = window.site_panel.model
    assert [model.data(model.index(r, DOMAIN_COLUMN)) for r in range(5)] == [""] * 5
    assert not any(OUT_OF_DOMAIN_WARNING in c.warning for c in window.plots.curves)


def test_outside_domain_warns_on_the_curve_and_once_in_the_message_bar(qtbot, window, tmp_path):
    _trivial(window)
    notices = []
    window.state.messages.noticeMessage.connect(notices.append)
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1, 2])
    warnings = {c.label: c.warning for c in window.plots.curves}
    assert warnings["Cu1"] == "" and warnings["Cu2"] == OUT_OF_DOMAIN_WARNING
    assert warnings["average"] == OUT_OF_DOMAIN_WARNING
    legend = [label.text for _, label in window.plots.legend.items]
    assert any(text.startswith("Cu2") and text.endswith(OUT_OF_DOMAIN_WARNING) for text in legend)
    assert not any(text.startswith("Cu1") and OUT_OF_DOMAIN_WARNING in text for text in legend)
    domain_notices = [n for n in notices if "training domain" in n]
    assert len(domain_notices) == 1 and "Cu2" in domain_notices[0] and "Cu1" not in domain_notices[0]
    # The plot items are reused: showing the same prediction again creates none.
    items = dict(window.plots._items)
    window.refresh_plots()
    assert window.plots._items == items


def test_attention_relative_to_uniform_and_first_shell(qtbot, window, tmp_path):
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    panel = window.attention_panel
    attention = prediction.attention[0]
    relative = relative_attention(attention)
    expected = {int(i): r for i, r in zip(attention.atom_index, relative)}
    assert panel.neighbours
    for n in panel.neighbours:
        assert n.relative == pytest.approx(expected[n.atom_index])
    np.testing.assert_allclose(panel.bars.opts["height"], [n.relative for n in panel.neighbours])
    assert panel.table.horizontalHeaderItem(5).text() == "× uniform"
    assert panel.table.item(0, 5).text() == f"{panel.neighbours[0].relative:.2f}"
    assert panel.uniform_line.value() == 1.0
    shell = first_shell(attention)
    text = panel.shell_label.text()
    assert text.startswith(f"first shell ({shell.n_atoms} atoms")
    assert f"total {shell.attention_share:.3f} of its uniform share {shell.uniform_share:.3f}" in text


def test_uniform_attention_reads_as_uniform():
    from model_core.types import SiteAttention

    attention = SiteAttention(atom_index=np.arange(5), image=np.zeros((5, 3), dtype=int),
                              distance=np.array([0.0, 1.9, 1.9, 3.5, 3.6]), weight=np.array([0, .25, .25, .25, .25]))
    np.testing.assert_allclose(relative_attention(attention)[1:], 1.0)
    from xanes_gui.attention import first_shell_text

    assert "(1.00× uniform)" in first_shell_text(first_shell(attention))


def _with_fake_attribution(window, calls=None):
    from dataclasses import replace

    from tests.xanes_gui.fakes import fake_site_attribution

    window.state.backend = replace(window.state.backend, site_attribution=fake_site_attribution(calls))


def _attribute(qtbot, panel):
    with qtbot.waitSignal(panel.state.attributions.attributionReady, timeout=10000):
        panel.attribution_button.click()
    qtbot.waitUntil(panel.attribution_button.isEnabled)


def test_attribution_button_fills_the_table(qtbot, window, tmp_path):
    calls = []
    _with_fake_attribution(window, calls)
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    panel = window.attention_panel
    assert panel.table.item(0, 6).text() == ""
    with qtbot.waitSignal(window.state.messages.statusMessage, timeout=10000,
                          check_params_cb=lambda text: "done" in text):
        panel.attribution_button.click()
    assert calls and calls[0][1] == 1 and calls[0][2] is None  # default: the whole grid
    qtbot.waitUntil(panel.attribution_button.isEnabled)
    for row, n in enumerate(panel.neighbours):
        assert float(panel.table.item(row, 6).text()) == pytest.approx(1.0 / n.distance, rel=1e-3)
    doc_id = window.state.structures.current_id
    assert window.state.attributions.get(doc_id, "fake-cu-k", 1).site_index == 1
    assert panel.window_label.text() == "window -20…60 eV (E − E0)"


@pytest.mark.parametrize("reference", ["edge", "absolute"])
def test_attribution_window_is_the_plot_range_relative_to_the_edge(qtbot, window, tmp_path, reference):
    calls = []
    _with_fake_attribution(window, calls)
    prediction = open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    window.state.view.set_view(energy_reference=reference)
    assert all(c.reference == reference for c in window.plots.curves)
    e0 = float(prediction.e0_ev[0]) if reference == "absolute" else 0.0
    window.plots.panels[0].setXRange(e0 - 10.0, e0 + 30.0, padding=0)
    lo, hi = window.plots.visible_energy_range()
    assert (lo, hi) == pytest.approx((e0 - 10.0, e0 + 30.0))
    panel = window.attention_panel
    panel.window_check.setChecked(True)
    _attribute(qtbot, panel)
    assert calls[-1][2] == pytest.approx((lo - e0, hi - e0))
    assert panel.window_label.text() == "window {:g}…{:g} eV (E − E0)".format(lo - e0, hi - e0)


def test_attribution_colour_mode_uses_the_stored_attribution(qtbot, window, tmp_path):
    pytest.importorskip("OpenGL")
    import pyqtgraph as pg

    from xanes_gui.viewer3d import ATTENTION_COLORMAP, ATTRIBUTION_HINT, NO_VALUE_COLOR, StructureView

    _with_fake_attribution(window)
    state = window.state
    view = StructureView(state)  # not shown: the colours are computed without drawing
    qtbot.addWidget(view)
    open_and_predict(qtbot, window, cu4o_cluster(tmp_path / "a.xyz"), [1])
    statuses = []
    state.messages.statusMessage.connect(statuses.append)
    window.attention_panel.color_check.setChecked(True)
    assert state.view.settings.color_mode == "attention"
    state.view.set_view(color_mode="attribution")
    assert state.view.settings.color_mode == "attribution"  # the panel's unchecked box does not reset it
    assert not window.attention_panel.color_check.isChecked()
    assert statuses.count(ATTRIBUTION_HINT) == 1
    assert view.color_combo.currentData() == "attribution"
    np.testing.assert_allclose(view.atom_colors(), np.tile(NO_VALUE_COLOR, (5, 1)))
    assert view.legend.title == "attribution"

    uploads = []
    upload = view.atoms.set_spheres
    view.atoms.set_spheres = lambda centers, radii, colors: (uploads.append(colors.copy()),
                                                             upload(centers, radii, colors))
    _attribute(qtbot, window.attention_panel)
    result = state.attributions.get(state.structures.current_id, "fake-cu-k", 1)
    values = result.per_atom(5)
    colors = view.atom_colors()
    assert view.legend.isVisibleTo(view) and view.legend.title == "attribution"
    expected = pg.colormap.get(ATTENTION_COLORMAP).map(values / values.max(), mode="float")
    others = [0, 2, 3, 4]
    np.testing.assert_allclose(colors[others], expected[others], atol=1e-6)
    np.testing.assert_allclose(colors[1], NO_VALUE_COLOR)  # the absorber has no value
    np.testing.assert_allclose(uploads[-1], colors)  # the atoms were recoloured when the result arrived
    state.view.set_view(color_mode="element")
    state.view.set_view(color_mode="attribution")
    assert statuses.count(ATTRIBUTION_HINT) == 1  # computed now: no hint
