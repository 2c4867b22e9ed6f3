"""The main window's menus, "Open Recent" (kept in QSettings) and the shipped example structures."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget

if TYPE_CHECKING:
    from xanes_gui.mainwindow import MainWindow

#: Files kept in "Open Recent".
MAX_RECENT = 10


def example_structures() -> list[Path]:
    """Example structure files shipped in ``xanes_resources/structures``."""
    try:
        folder = Path(str(resources.files("xanes_resources"))) / "structures"
    except (ModuleNotFoundError, TypeError):
        return []
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))


def recent_files(settings: QSettings) -> list[str]:
    """Recently opened files, newest first."""
    value = settings.value("recentFiles", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(settings: QSettings, path: str) -> None:
    """Put ``path`` first in "Open Recent"."""
    path = os.path.abspath(path)
    recent = [path] + [p for p in recent_files(settings) if p != path]
    settings.setValue("recentFiles", recent[:MAX_RECENT])


def _fill_recent_menu(window: MainWindow) -> None:
    window.recent_menu.clear()
    for path in recent_files(window.settings):
        window.recent_menu.addAction(path, lambda p=path: window.state.structures.open_files([p]))
    if not window.recent_menu.actions():
        window.recent_menu.addAction("(none)").setEnabled(False)


def build_menus(window: MainWindow) -> None:
    """Add the File, Simulate, View and Help menus to ``window``.

    The menus and actions other code refers to become attributes of the window:
    open_action, recent_menu, examples_menu, measured_action, feff_action,
    edge_action, absolute_action.
    """
    file_menu = window.menuBar().addMenu("&File")
    window.open_action = file_menu.addAction("&Open…", window.open_dialog)
    window.open_action.setShortcut(QKeySequence.StandardKey.Open)
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent_menu(window))
    window.examples_menu = file_menu.addMenu("Open &Example")
    for path in example_structures():
        window.examples_menu.addAction(path.stem, lambda p=str(path): window.state.structures.open_files([p]))
    window.examples_menu.setEnabled(bool(window.examples_menu.actions()))
    window.measured_action = file_menu.addAction("Import &Measured Spectrum…", window.import_measured_dialog)
    window.measured_action.setToolTip("XDI, Athena projects (.prj), column files, FEFF xmu.dat")
    file_menu.addAction("Import with Pre&view…", window.import_preview_dialog).setToolTip(
        "Choose the energy, I0, It/If or μ columns of a column file while seeing the spectrum")
    file_menu.addSeparator()
    export_menu = file_menu.addMenu("&Export")
    export_menu.addAction("Spectra as &PNG…", lambda: window._export_dialog("png"))
    export_menu.addAction("Spectra as &SVG…", lambda: window._export_dialog("svg"))
    export_menu.addAction("Spectra as &CSV…", lambda: window._export_dialog("csv"))
    export_menu.addAction("&Comparison with measured as CSV…", lambda: window._export_dialog("comparison-csv"))
    export_menu.addSeparator()
    export_menu.addAction("Attention chart as PNG…", lambda: window._export_dialog("attention-png"))
    export_menu.addAction("Attention chart as SVG…", lambda: window._export_dialog("attention-svg"))
    export_menu.addAction("3-D view as PNG…", lambda: window._export_dialog("3d-png"))
    file_menu.addSeparator()
    file_menu.addAction("&Save Session…", window._save_session_dialog).setShortcut(QKeySequence.StandardKey.Save)
    file_menu.addAction("&Load Session…", window._load_session_dialog)
    file_menu.addSeparator()
    file_menu.addAction("&Close Structure", window.close_current).setShortcut(QKeySequence.StandardKey.Close)
    quit_action = file_menu.addAction("&Quit", window.close)
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)

    simulate_menu = window.menuBar().addMenu("&Simulate")
    window.feff_action = simulate_menu.addAction("Simulate with &FEFF10…", window.show_feff_dialog)
    window.feff_action.setToolTip("First-principles spectra of the selected sites with FEFF10")

    view_menu = window.menuBar().addMenu("&View")
    group = QActionGroup(window)
    window.edge_action = QAction("Energy relative to edge (E − E0)", window, checkable=True)
    window.absolute_action = QAction("Absolute energy", window, checkable=True)
    for action, reference in ((window.edge_action, "edge"), (window.absolute_action, "absolute")):
        group.addAction(action)
        view_menu.addAction(action)
        action.triggered.connect(lambda _=False, r=reference: window.state.view.set_view(energy_reference=r))
    window.edge_action.setChecked(True)
    window.absolute_action.setEnabled(False)
    view_menu.addSeparator()
    view_menu.addAction("Reset 3-D View", lambda: window.structure_view and window.structure_view.reset_view())
    panels = view_menu.addMenu("Panels")
    for dock in window.findChildren(QDockWidget):
        panels.addAction(dock.toggleViewAction())

    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction("About", lambda: window.message_log.add(
        "xanes-gui: XANES prediction with XANE(3); drop structure files on the window to open them."))
