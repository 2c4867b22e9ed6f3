"""``xanes-gui FILES...``: the command line sorts files into structures and spectra as a drop does."""

from __future__ import annotations

import pytest

from tests.xanes_gui.fakes import cu4o_cluster, write_xdi
from xanes_gui.app import _parse, schedule_startup

pytest.importorskip("larch")


def test_command_line_opens_the_structure_and_imports_the_spectrum(qtbot, window, tmp_path):
    structure = cu4o_cluster(tmp_path / "CuO.xyz")
    spectrum = write_xdi(tmp_path / "cu_metal_rt.xdi")
    state = window.state
    opened, imported, errors = [], [], []
    state.structures.fileOpened.connect(opened.append)
    state.measured.measuredOpened.connect(imported.append)
    state.messages.errorMessage.connect(errors.append)
    with qtbot.waitSignals([state.structures.fileOpened, state.measured.measuredOpened], timeout=60000):
        schedule_startup(state, window, _parse([structure, spectrum]))
    assert opened == [structure] and imported == [spectrum]
    assert not errors, errors
    assert window.structure_list.count() == 1


def test_open_dialog_routes_a_spectrum_to_the_measured_import(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    spectrum = write_xdi(tmp_path / "cu_foil.xdi")
    offered = []

    def pick(parent, title, folder, file_filter):
        offered.append(file_filter)
        return [spectrum], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(pick))
    with qtbot.waitSignal(window.state.measured.measuredOpened, timeout=60000) as blocker:
        window.open_dialog()
    assert blocker.args == [spectrum] and window.structure_list.count() == 0
    assert offered == [window.state.backend.format_filter()]


def test_import_dialog_offers_the_spectrum_registry_filter(window, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from model_core.formats import file_filter

    offered = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda parent, title, folder, f: (offered.append(f), ([], ""))[1]))
    window.import_measured_dialog()
    assert offered == [file_filter("spectrum")]
