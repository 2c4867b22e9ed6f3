"""The Identify, Refine and Infer structure docks of the main window, tabbed beside "Measured spectra"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea

from xanes_gui.identifypanel import IdentifyPanel
from xanes_gui.inferpanel import InferPanel
from xanes_gui.refinepanel import RefinePanel

if TYPE_CHECKING:
    from xanes_gui.mainwindow import MainWindow


def add_interpret_docks(window: MainWindow) -> None:
    """Add the Identify, Refine and Infer structure docks (``window.identify_panel``,
    ``window.refine_panel``, ``window.infer_panel``) and redraw the plots when their overlay
    curves change."""
    area = Qt.DockWidgetArea.RightDockWidgetArea
    window.identify_panel = IdentifyPanel(window.state, window)
    window.refine_panel = RefinePanel(window.state, window)
    window.infer_panel = InferPanel(window.state, window)
    if window.structure_view is not None:  # the 3-D candidates need OpenGL, as the 3-D view does
        window.infer_panel.enable_3d()
    previous = window.measured_dock
    for title, panel in (("Identify", window.identify_panel), ("Refine", window.refine_panel),
                         ("Infer structure", window.infer_panel)):
        scroll = QScrollArea(window)  # the panels' rows must not widen the dock column
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        dock = window._dock(title, scroll, area)
        window.tabifyDockWidget(previous, dock)
        window.docks[title] = previous = dock
    window.docks["Attention"].raise_()
    window.state.interpret.overlaysChanged.connect(window.refresh_plots)
