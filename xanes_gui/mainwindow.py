"""The main window: menus, docks and panels wired to one :class:`AppState`."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QListWidget, QListWidgetItem,
                               QMainWindow, QSplitter, QVBoxLayout, QWidget)

from xanes_gui.attention import AttentionPanel
from xanes_gui.comparison import choice_from_dict, choice_to_dict, column_signature
from xanes_gui.measuredpanel import ColumnChooser, GroupChooser, MeasuredPanel
from xanes_gui.messages import MessageBanner, MessageLog
from xanes_gui.modelpanel import ModelPanel
from xanes_gui.plots import (CurveList, SpectraPlots, curves_for, feff_curves, has_absolute_energies,
                             measured_curve)
from xanes_gui.sitetable import SitePanel
from xanes_gui.state import AppState

MAX_RECENT = 10
COLUMN_MEMORY_KEY = "measuredColumnChoices"


def example_structures() -> list[Path]:
    """Example structure files shipped in ``xanes_resources/structures``."""
    try:
        folder = Path(str(resources.files("xanes_resources"))) / "structures"
    except (ModuleNotFoundError, TypeError):
        return []
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))


def gl_available() -> bool:
    """Whether an OpenGL 2.1+ context can be made (never on 'offscreen'/'minimal' platforms).

    Checked before the GL view is built because a QOpenGLWidget without a
    context crashes the process instead of raising.
    """
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    app = QApplication.instance()
    if app is None or app.platformName() in ("offscreen", "minimal", "vnc"):
        return False
    context = QOpenGLContext()
    if not context.create():
        return False
    surface = QOffscreenSurface()
    surface.create()
    try:
        if not context.makeCurrent(surface):
            return False
        return context.format().version() >= (2, 1) or context.isOpenGLES()
    finally:
        context.doneCurrent()


class MainWindow(QMainWindow):
    """The application window.

    Args:
        state: the app state (shared with tests).
        settings: where "Open Recent" is stored (the user's QSettings by default).
        enable_3d: build the OpenGL view; None decides by trying to make a GL
            context (widget tests under QT_QPA_PLATFORM=offscreen get a placeholder).
        defer_3d: build the 3-D view after the window is shown (faster start-up).
    """

    def __init__(self, state: AppState, settings: QSettings | None = None, enable_3d: bool | None = None,
                 defer_3d: bool = False) -> None:
        super().__init__()
        self.state = state
        self.settings = settings or QSettings("xanes-gui", "xanes-gui")
        self.setWindowTitle("XANES predictor")
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        self.setDockNestingEnabled(True)

        # ---- central area: 3-D view | spectra
        self.banner = MessageBanner(self)
        self.structure_view = None
        self.plots = SpectraPlots(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self._view_placeholder = QLabel("3-D view needs OpenGL" if enable_3d is False else "Preparing 3-D view…", self)
        self._view_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        splitter.addWidget(self._view_placeholder)
        splitter.addWidget(self.plots)
        splitter.setStretchFactor(0, 9)
        splitter.setStretchFactor(1, 11)
        self.central_splitter = splitter
        if enable_3d is not False:
            if defer_3d:
                # PyOpenGL and the GL context cost a few hundred ms: show the
                # window first, then build the 3-D view from the event loop.
                QTimer.singleShot(0, lambda: self._build_3d(enable_3d))
            else:
                self._build_3d(enable_3d)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        # ---- docks
        self.structure_list = QListWidget(self)
        self.site_panel = SitePanel(state, self)
        self.model_panel = ModelPanel(state, self)
        self.curve_list = CurveList(self)
        self.attention_panel = AttentionPanel(state, self)
        self.message_log = MessageLog(self)
        self.measured_panel = MeasuredPanel(state, self)
        self.column_chooser: ColumnChooser | None = None
        self.group_chooser: GroupChooser | None = None
        self.feff_dialog = None
        state.column_memory.update(self._load_column_memory())

        structures_dock = self._dock("Structures", self.structure_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        sites_dock = self._dock("Sites", self.site_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(structures_dock, sites_dock, Qt.Orientation.Vertical)
        model_dock = self._dock("Model and prediction", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        curves_dock = self._dock("Curves", self.curve_list, Qt.DockWidgetArea.RightDockWidgetArea)
        attention_dock = self._dock("Attention", self.attention_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        measured_dock = self._dock("Measured spectra", self.measured_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(model_dock, curves_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(curves_dock, attention_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(attention_dock, measured_dock)
        attention_dock.raise_()
        self.measured_dock = measured_dock
        log_dock = self._dock("Messages", self.message_log, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.docks = {d.windowTitle(): d for d in (structures_dock, sites_dock, model_dock, curves_dock,
                                                   attention_dock, measured_dock, log_dock)}

        # ---- status bar
        self.engine_label = QLabel("Loading model engine…", self)
        self.statusBar().addPermanentWidget(self.engine_label)

        self._build_menus()

        # ---- wiring
        self.structure_list.currentRowChanged.connect(self._on_list_row)
        self.curve_list.visibilityChanged.connect(state.set_curve_visible)
        state.structureAdded.connect(self._refresh_structure_list)
        state.structureRemoved.connect(self._refresh_structure_list)
        state.currentStructureChanged.connect(self._on_current)
        state.predictionReady.connect(self._on_prediction)
        for signal in (state.measuredAdded, state.measuredRemoved, state.measuredChanged, state.alignChanged,
                       state.feffReady):
            signal.connect(lambda *_: self.refresh_plots())
        state.measuredAdded.connect(lambda *_: self.measured_dock.raise_())
        state.measuredNeedsColumns.connect(self.show_column_chooser)
        state.measuredNeedsGroup.connect(self.show_group_chooser)
        state.measuredOpened.connect(self._add_recent)
        self.measured_panel.importRequested.connect(self.import_measured_dialog)
        self.measured_panel.exportComparisonRequested.connect(lambda: self._export_dialog("comparison-csv"))
        self.model_panel.simulateRequested.connect(self.show_feff_dialog)
        state.viewSettingsChanged.connect(self._on_view_settings)
        state.statusMessage.connect(self._on_status)
        state.errorMessage.connect(self._on_error)
        state.noticeMessage.connect(self._on_notice)
        state.engineReady.connect(self._on_engine_ready)
        state.deviceChanged.connect(lambda *_: state.engine_ready and self._on_engine_ready())
        state.fileOpened.connect(self._add_recent)
        if state.engine_ready:
            self._on_engine_ready()
        self._refresh_structure_list()
        self._on_current(state.current_id)

    def _build_3d(self, enable_3d: bool | None) -> None:
        """Replace the placeholder by the OpenGL structure view (when OpenGL works)."""
        if self.structure_view is not None:
            return
        if enable_3d is None and not gl_available():
            self._view_placeholder.setText("3-D view needs OpenGL (not available on this display)")
            return
        from xanes_gui.viewer3d import StructureView  # imports PyOpenGL only when used

        self.structure_view = StructureView(self.state, self)
        self.central_splitter.replaceWidget(0, self.structure_view)
        self._view_placeholder.deleteLater()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):
            self._docks_sized = True
            # Dock and splitter sizes only stick once the window has its final
            # size, i.e. after the show event has been processed.
            QTimer.singleShot(0, self._initial_layout)

    def _initial_layout(self) -> None:
        d = self.docks
        self.resizeDocks([d["Structures"], d["Model and prediction"]], [340, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([d["Structures"], d["Sites"]], [90, 600], Qt.Orientation.Vertical)
        self.resizeDocks([d["Model and prediction"], d["Curves"], d["Attention"]], [150, 90, 450],
                         Qt.Orientation.Vertical)
        self.resizeDocks([d["Messages"]], [70], Qt.Orientation.Vertical)
        width = self.central_splitter.width()
        self.central_splitter.setSizes([int(width * 0.45), width - int(width * 0.45)])

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = file_menu.addAction("&Open…", self.open_dialog)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.examples_menu = file_menu.addMenu("Open &Example")
        for path in example_structures():
            self.examples_menu.addAction(path.stem, lambda p=str(path): self.state.open_files([p]))
        self.examples_menu.setEnabled(bool(self.examples_menu.actions()))
        self.measured_action = file_menu.addAction("Import &Measured Spectrum…", self.import_measured_dialog)
        self.measured_action.setToolTip("XDI, Athena projects (.prj), column files, FEFF xmu.dat")
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export")
        export_menu.addAction("Spectra as &PNG…", lambda: self._export_dialog("png"))
        export_menu.addAction("Spectra as &SVG…", lambda: self._export_dialog("svg"))
        export_menu.addAction("Spectra as &CSV…", lambda: self._export_dialog("csv"))
        export_menu.addAction("&Comparison with measured as CSV…", lambda: self._export_dialog("comparison-csv"))
        export_menu.addSeparator()
        export_menu.addAction("Attention chart as PNG…", lambda: self._export_dialog("attention-png"))
        export_menu.addAction("Attention chart as SVG…", lambda: self._export_dialog("attention-svg"))
        export_menu.addAction("3-D view as PNG…", lambda: self._export_dialog("3d-png"))
        file_menu.addSeparator()
        file_menu.addAction("&Save Session…", self._save_session_dialog).setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addAction("&Load Session…", self._load_session_dialog)
        file_menu.addSeparator()
        file_menu.addAction("&Close Structure", self.close_current).setShortcut(QKeySequence.StandardKey.Close)
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)

        simulate_menu = self.menuBar().addMenu("&Simulate")
        self.feff_action = simulate_menu.addAction("Simulate with &FEFF10…", self.show_feff_dialog)
        self.feff_action.setToolTip("First-principles spectra of the selected sites with FEFF10")

        view_menu = self.menuBar().addMenu("&View")
        group = QActionGroup(self)
        self.edge_action = QAction("Energy relative to edge (E − E0)", self, checkable=True)
        self.absolute_action = QAction("Absolute energy", self, checkable=True)
        for action, reference in ((self.edge_action, "edge"), (self.absolute_action, "absolute")):
            group.addAction(action)
            view_menu.addAction(action)
            action.triggered.connect(lambda _=False, r=reference: self.state.set_view(energy_reference=r))
        self.edge_action.setChecked(True)
        self.absolute_action.setEnabled(False)
        view_menu.addSeparator()
        view_menu.addAction("Reset 3-D View", lambda: self.structure_view and self.structure_view.reset_view())
        panels = view_menu.addMenu("Panels")
        for dock in self.findChildren(QDockWidget):
            panels.addAction(dock.toggleViewAction())

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("About", lambda: self.message_log.add(
            "xanes-gui: XANES prediction with XANE(3); drop structure files on the window to open them."))

    # ------------------------------------------------------------ open files
    def open_dialog(self) -> None:
        try:
            file_filter = self.state.backend.format_filter()
        except Exception:  # noqa: BLE001 - a dialog without filters is still usable
            file_filter = "All files (*)"
        paths, _ = QFileDialog.getOpenFileNames(self, "Open structures", self._last_dir(), file_filter)
        if paths:
            self.open_any(paths)

    def _last_dir(self) -> str:
        recent = self.recent_files()
        return os.path.dirname(recent[0]) if recent else os.getcwd()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recentFiles", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recentFiles", recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.state.open_files([p]))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_any(paths)

    def open_any(self, paths) -> tuple[list[str], list[str]]:
        """Open structures and import measured spectra, deciding by the readers' format tables.

        Returns:
            (structure paths, measured paths).
        """
        structures, measured = [], []
        for path in map(str, paths):
            try:
                kind = self.state.backend.classify_file(path)
            except Exception:  # noqa: BLE001 - the structure reader will say what is wrong
                kind = "structure"
            (measured if kind == "measured" else structures).append(path)
        if structures:
            self.state.open_files(structures)
        if measured:
            self.state.import_measured(measured)
        return structures, measured

    # ------------------------------------------------------- measured spectra
    def import_measured_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import measured spectra", self._last_dir(),
                                                self.state.backend.measured_filter())
        if paths:
            self.state.import_measured(paths)

    def _load_column_memory(self) -> dict:
        try:
            data = json.loads(str(self.settings.value(COLUMN_MEMORY_KEY, "{}") or "{}"))
        except (TypeError, ValueError):
            return {}
        memory = {}
        for key, value in (data.items() if isinstance(data, dict) else ()):
            choice = choice_from_dict(value)
            if choice is not None:
                memory[str(key)] = choice
        return memory

    def _save_column_memory(self) -> None:
        data = {key: choice_to_dict(choice) for key, choice in self.state.column_memory.items()}
        self.settings.setValue(COLUMN_MEMORY_KEY, json.dumps(data))

    def show_column_chooser(self, path: str, names: list, message: str = "") -> ColumnChooser:
        """Ask (non-modally) which columns make the spectrum; the choice is remembered per column names."""
        if self.column_chooser is not None:
            self.column_chooser.close()
        initial = self.state.column_memory.get(column_signature(names))
        chooser = ColumnChooser(path, names, message, initial, self)
        chooser.chosen.connect(self._on_columns_chosen)
        chooser.destroyed.connect(lambda *_: setattr(self, "column_chooser", None))
        self.column_chooser = chooser
        chooser.show()
        return chooser

    def _on_columns_chosen(self, path: str, names: list, choice) -> None:
        self.state.remember_columns(names, choice)
        self._save_column_memory()
        self.state.import_measured([path], columns=choice)

    def show_group_chooser(self, path: str, groups: list) -> GroupChooser:
        """Ask (non-modally) which Athena groups to import."""
        if self.group_chooser is not None:
            self.group_chooser.close()
        chooser = GroupChooser(path, groups, self)
        chooser.chosen.connect(lambda p, names: self.state.import_athena_groups(p, names))
        chooser.destroyed.connect(lambda *_: setattr(self, "group_chooser", None))
        self.group_chooser = chooser
        chooser.show()
        return chooser

    # ------------------------------------------------------------------ FEFF
    def default_feff_folder(self) -> str:
        """Per-user folder for FEFF10 runs (app data location)."""
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
        return os.path.join(base or os.path.expanduser("~/.xanes-gui"), "feff-runs")

    def show_feff_dialog(self):
        """Open the (non-modal) FEFF10 simulation window for the selected sites."""
        from xanes_gui.feffdialog import FeffDialog

        if self.feff_dialog is None:
            self.feff_dialog = FeffDialog(self.state, self.default_feff_folder(), self)
            self.feff_dialog.destroyed.connect(lambda *_: setattr(self, "feff_dialog", None))
        self.feff_dialog.refresh()
        self.feff_dialog.show()
        self.feff_dialog.raise_()
        return self.feff_dialog

    def close_current(self) -> None:
        if self.state.current_id:
            self.state.close_structure(self.state.current_id)

    # ------------------------------------------------------------ structures
    def _refresh_structure_list(self, *_args) -> None:
        self.structure_list.blockSignals(True)
        try:
            self.structure_list.clear()
            for doc in self.state.documents:
                item = QListWidgetItem(f"{doc.title}  ({doc.structure.formula}, {doc.structure.n_atoms} atoms)")
                item.setData(Qt.ItemDataRole.UserRole, doc.id)
                item.setToolTip(doc.structure.source or "(in memory)")
                self.structure_list.addItem(item)
                if doc.id == self.state.current_id:
                    self.structure_list.setCurrentItem(item)
        finally:
            self.structure_list.blockSignals(False)

    def _on_list_row(self, row: int) -> None:
        item = self.structure_list.item(row)
        if item is not None:
            self.state.set_current(item.data(Qt.ItemDataRole.UserRole))

    def _on_current(self, doc_id: str) -> None:
        self._refresh_structure_list()
        doc = self.state.document(doc_id)
        self.setWindowTitle(f"XANES predictor — {doc.title}" if doc else "XANES predictor")
        self.refresh_plots()

    # --------------------------------------------------------------- spectra
    def _on_prediction(self, doc_id: str, prediction) -> None:
        if doc_id == self.state.current_id:
            self.refresh_plots()

    def _site_labels(self, prediction) -> dict[int, str]:
        doc = self.state.current
        labels = {}
        for site, weight in zip(prediction.site_indices, prediction.weights):
            site = int(site)
            symbol = doc.structure.symbols[site] if doc else ""
            wyckoff = doc.symmetry.wyckoff[site] if doc and site < len(doc.symmetry.wyckoff) else ""
            extra = ", ".join(x for x in (wyckoff, f"×{weight:g}" if weight != 1 else "") if x)
            labels[site] = f"{symbol}{site}" + (f" ({extra})" if extra else "")
        return labels

    def refresh_plots(self) -> None:
        """Show the prediction, FEFF10 results and measured spectra of the current structure.

        With measured spectra shown every curve is on one absolute energy axis:
        the prediction placed at its predicted E0 (or the measured E0 when the
        model has none) plus the alignment shift; FEFF10 at its own omega energies.
        """
        state, view = self.state, self.state.view
        doc = state.current
        prediction = state.shown_prediction() if doc else None
        feff = state.feff_results() if doc else {}
        measured = state.visible_measured()
        reference_doc = state.measured() if state.measured() in measured else (measured[0] if measured else None)
        e0_fallback = reference_doc.norm.e0 if reference_doc is not None else None
        prediction_abs = prediction is None or has_absolute_energies(prediction) or e0_fallback is not None
        absolute_ok = prediction_abs and (has_absolute_energies(prediction) or bool(feff) or bool(measured))
        wants_absolute = bool(measured) or view.energy_reference == "absolute"
        reference = "absolute" if absolute_ok and wants_absolute else "edge"
        self.absolute_action.setEnabled(absolute_ok and not measured)
        self.edge_action.setEnabled(not measured)
        self.absolute_action.setChecked(reference == "absolute")
        self.edge_action.setChecked(reference == "edge")
        target = state.comparison_target()
        shift = state.align.shift_ev if measured and reference == "absolute" else 0.0
        curves = []
        if prediction is not None:
            curves += curves_for(prediction, reference, self._site_labels(prediction),
                                 shift_ev=shift if target and target[0] == "ml" else 0.0,
                                 e0_fallback=e0_fallback if measured else None)
        offset = 0
        for result in feff.values():
            curves += feff_curves(result, reference, lambda i, o=offset: state.feff_color(result.preset, o + i),
                                  shift_ev=shift if target and target[0] == "feff" else 0.0)
            offset += len(result.spectra) + 1
        if reference == "absolute":
            for doc_m in measured:
                curves.append(measured_curve(doc_m.label, doc_m.data.energy_ev, doc_m.curve, doc_m.color))
        self.plots.set_reference(reference)
        self.plots.set_curves(curves, view.hidden_curves)
        self.curve_list.set_curves([c.label for c in curves], view.hidden_curves, [c.color for c in curves])
        simulated = [c for c in curves if c.kind != "measured" and len(c.energy)]
        if measured and reference == "absolute" and (simulated or state.align.window):
            lo, hi = state.align.window or (min(float(c.energy[0]) for c in simulated),
                                            max(float(c.energy[-1]) for c in simulated))
            self.plots.focus_x(lo, hi)

    def _on_view_settings(self, view) -> None:
        self.refresh_plots()

    # -------------------------------------------------------------- messages
    def _on_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)
        if text.startswith("Ready:") or text == "Loading model engine…":
            self.engine_label.setText(text)

    def _on_notice(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)
        self.message_log.add(text)

    def _on_error(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        self.banner.show_message(text)
        self.message_log.add(text, error=True)

    def _on_engine_ready(self) -> None:
        self.engine_label.setText(f"Ready: {self.state.device_name}")

    # ---------------------------------------------------------------- export
    def current_curves(self):
        """Curves shown in the spectra panel (hidden ones excluded)."""
        hidden = self.state.view.hidden_curves
        return [c for c in self.plots.curves if c.label not in hidden]

    def export_spectra_csv(self, path: str | os.PathLike) -> Path:
        """Write every shown curve (prediction, FEFF10, measured) with its derivatives as CSV."""
        from datetime import datetime, timezone

        from xanes_gui.export import csv_metadata, write_csv

        prediction, doc = self.state.shown_prediction(), self.state.current
        curves = self.current_curves()
        if not curves:
            raise ValueError("no spectra to export; predict first")
        reference = curves[0].reference
        if prediction is not None and doc is not None:
            meta = csv_metadata(prediction, reference=reference, source=doc.structure.source,
                                structure_name=doc.title, device=self.state.device)
        else:
            meta = {"program": "xanes-gui",
                    "exported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "energy_reference": "E (absolute, eV)" if reference == "absolute" else "E - E0 (eV)"}
            if doc is not None:
                meta["structure"] = doc.title
                meta["structure_source"] = doc.structure.source or "(in memory)"
        for result in self.state.feff_results().values():
            meta[f"feff_{result.preset}"] = f"FEFF10 preset {result.preset}, {result.edge} edge, {result.structure_dir}"
        for doc_m in self.state.visible_measured():
            meta[f"measured_{doc_m.label}"] = f"{doc_m.path} ({doc_m.data.channel}, " \
                                              f"{'flattened' if doc_m.use_flat else 'normalized'})"
        if any(c.kind == "measured" for c in curves):
            meta["alignment_shift_ev"] = f"{self.state.align.shift_ev:.3f}"
        return write_csv(path, curves, meta)

    def export_comparison_csv(self, path: str | os.PathLike, measured_id: str | None = None) -> Path:
        """Write the aligned comparison of a measured spectrum with the prediction (comparison_to_csv).

        Raises:
            ValueError: nothing compared for that spectrum (no prediction, no overlap, ...).
        """
        doc_m = self.state.measured(measured_id)
        if doc_m is None:
            raise ValueError("no measured spectrum to compare; import one first")
        result = self.state.comparisons.get(doc_m.id)
        if result is None:
            raise ValueError(f"{doc_m.label} has not been compared; predict a spectrum first")
        if isinstance(result, str):
            raise ValueError(f"{doc_m.label}: {result}")
        meta = {"program": "xanes-gui", "measured_file": doc_m.path, "measured_label": doc_m.label,
                "measured_channel": doc_m.data.channel}
        if doc_m.data.group:
            meta["athena_group"] = doc_m.data.group
        if doc_m.norm is not None:
            used = doc_m.norm.params
            meta["normalization"] = ", ".join(f"{k}={getattr(used, k)}" for k in
                                              ("e0", "pre1", "pre2", "norm1", "norm2", "nnorm", "nvict", "flatten"))
        target = self.state.comparison_target()
        prediction, doc = self.state.shown_prediction(), self.state.current
        if doc is not None:
            meta["structure"] = doc.title
            meta["structure_source"] = doc.structure.source or "(in memory)"
        if target is not None and target[0] == "ml" and prediction is not None:
            meta["model"] = prediction.model_name
            meta["trained"] = str(bool(prediction.trained)).lower()
            if not prediction.trained:
                meta["warning"] = "UNTRAINED model - predictions are not meaningful"
        elif target is not None:
            meta["predicted"] = "FEFF10 " + ", ".join(self.state.feff_results())
        path = Path(path)
        self.state.backend.comparison_to_csv(result, str(path), meta)
        return path

    def export_spectra_png(self, path: str | os.PathLike) -> Path:
        from xanes_gui.export import export_png

        return export_png(self.plots, path)

    def export_spectra_svg(self, path: str | os.PathLike) -> Path:
        from xanes_gui.export import export_svg

        return export_svg(self.plots, path)

    def export_attention(self, path: str | os.PathLike, kind: str = "png") -> Path:
        from xanes_gui.export import export_png, export_svg

        chart = self.attention_panel.chart
        return export_png(chart, path) if kind == "png" else export_svg(chart, path, title="Attention")

    def export_3d_png(self, path: str | os.PathLike) -> Path:
        if self.structure_view is None:
            raise ValueError("the 3-D view is not available")
        path = Path(path)
        if not self.structure_view.grab_image().save(str(path)):
            raise OSError(f"could not write {path}")
        return path

    def _export_dialog(self, kind: str) -> None:
        suffix = {"png": "png", "svg": "svg", "csv": "csv", "attention-png": "png", "attention-svg": "svg",
                  "3d-png": "png", "comparison-csv": "csv"}[kind]
        path, _ = QFileDialog.getSaveFileName(self, "Export", os.path.join(self._last_dir(), f"xanes.{suffix}"),
                                              f"{suffix.upper()} files (*.{suffix})")
        if not path:
            return
        try:
            if kind == "png":
                self.export_spectra_png(path)
            elif kind == "svg":
                self.export_spectra_svg(path)
            elif kind == "csv":
                self.export_spectra_csv(path)
            elif kind == "comparison-csv":
                self.export_comparison_csv(path)
            elif kind.startswith("attention"):
                self.export_attention(path, suffix)
            else:
                self.export_3d_png(path)
        except (OSError, ValueError) as exc:
            self.state.errorMessage.emit(f"Export to {path} failed: {exc}")
        else:
            self.state.statusMessage.emit(f"Exported {path}")

    # --------------------------------------------------------------- session
    def save_session(self, path: str | os.PathLike) -> Path:
        from xanes_gui.session import save_session

        return save_session(self.state, path)

    def load_session(self, path: str | os.PathLike):
        from xanes_gui.session import load_session

        try:
            return load_session(self.state, path)
        except (OSError, ValueError) as exc:
            self.state.errorMessage.emit(f"Cannot load session {path}: {exc}")
            return None

    def _save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", os.path.join(self._last_dir(), "session.json"),
                                              "Session (*.json)")
        if path:
            try:
                self.save_session(path)
                self.state.statusMessage.emit(f"Session saved to {path}")
            except OSError as exc:
                self.state.errorMessage.emit(f"Cannot save session {path}: {exc}")

    def _load_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load session", self._last_dir(), "Session (*.json)")
        if path:
            self.load_session(path)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.state.shutdown()
        super().closeEvent(event)
