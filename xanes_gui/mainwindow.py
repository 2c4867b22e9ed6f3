"""The main window: menus, docks and panels wired to one :class:`AppState`."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QListWidget, QListWidgetItem,
                               QMainWindow, QSplitter, QVBoxLayout, QWidget)

from xanes_gui.attention import AttentionPanel
from xanes_gui.choosers import ImportChoosers
from xanes_gui.filedrop import dropped_paths, open_any
from xanes_gui.hint import EmptyHint
from xanes_gui.interpretdocks import add_interpret_docks
from xanes_gui.measuredpanel import MeasuredPanel
from xanes_gui.menus import add_recent, build_menus, recent_files
from xanes_gui.messages import MessageBanner, MessageLog
from xanes_gui.modelpanel import ModelPanel
from xanes_gui.plots import (CurveList, SpectraPlots, curves_for, feff_curves, has_absolute_energies,
                             measured_curve)
from xanes_gui.sitetable import SitePanel
from xanes_gui.state import AppState

EMPTY_HINT = ("Open or drop a structure (CIF, POSCAR, XYZ, feff.inp, PDB) or a measured spectrum — "
              "File ▸ Open Example to try one")
#: Share of the central area given to the spectra (the 3-D view gets the rest).
SPECTRA_SHARE = 0.62


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
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
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
        structures, measured = state.structures, state.measured
        self.empty_hint = EmptyHint(EMPTY_HINT, splitter, lambda: not structures.documents and not measured.docs,
                                    (structures.structureAdded, structures.structureRemoved, measured.measuredAdded,
                                     measured.measuredRemoved))

        # ---- docks
        self.structure_list = QListWidget(self)
        self.site_panel = SitePanel(state, self)
        self.model_panel = ModelPanel(state, self)
        self.curve_list = CurveList(self)
        self.attention_panel = AttentionPanel(state, self, plots=self.plots)
        self.message_log = MessageLog(self)
        self.measured_panel = MeasuredPanel(state, self)
        self.feff_dialog = None
        self.choosers = ImportChoosers(state.measured, self.settings, self)

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

        add_interpret_docks(self)
        build_menus(self)

        # ---- wiring
        self.structure_list.currentRowChanged.connect(self._on_list_row)
        self.curve_list.visibilityChanged.connect(state.view.set_curve_visible)
        state.structures.structureAdded.connect(self._refresh_structure_list)
        state.structures.structureRemoved.connect(self._refresh_structure_list)
        state.structures.currentStructureChanged.connect(self._on_current)
        state.predictions.predictionReady.connect(self._on_prediction)
        measured = state.measured
        for signal in (measured.measuredAdded, measured.measuredRemoved, measured.measuredChanged, measured.alignChanged,
                       state.simulations.feffReady):
            signal.connect(lambda *_: self.refresh_plots())
        state.measured.measuredAdded.connect(lambda *_: self.measured_dock.raise_())
        state.measured.measuredOpened.connect(lambda path: add_recent(self.settings, path))
        self.measured_panel.importRequested.connect(self.import_measured_dialog)
        self.measured_panel.exportComparisonRequested.connect(lambda: self._export_dialog("comparison-csv"))
        self.model_panel.simulateRequested.connect(self.show_feff_dialog)
        state.view.viewSettingsChanged.connect(self._on_view_settings)
        state.messages.statusMessage.connect(self._on_status)
        state.messages.errorMessage.connect(self._on_error)
        state.messages.noticeMessage.connect(self._on_notice)
        state.predictions.engineReady.connect(self._on_engine_ready)
        state.predictions.deviceChanged.connect(lambda *_: state.predictions.engine_ready and self._on_engine_ready())
        state.structures.fileOpened.connect(lambda path: add_recent(self.settings, path))
        if state.predictions.engine_ready:
            self._on_engine_ready()
        self._refresh_structure_list()
        self._on_current(state.structures.current_id)

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
        if hasattr(self, "infer_panel"):  # a deferred build: the docks exist already
            self.infer_panel.enable_3d()

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
        self.central_splitter.setSizes([width - int(width * SPECTRA_SHARE), int(width * SPECTRA_SHARE)])

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

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
        return recent_files(self.settings)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_any(paths)

    def open_any(self, paths) -> tuple[list[str], list[str]]:
        """Open structures and import measured spectra (see :func:`xanes_gui.filedrop.open_any`)."""
        return open_any(self.state, paths)

    # ------------------------------------------------------- measured spectra
    def import_measured_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import measured spectra", self._last_dir(),
                                                self.state.backend.measured_filter())
        if paths:
            self.state.measured.import_files(paths)

    def import_preview_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import with preview", self._last_dir(),
                                              "Column files (*.dat *.txt *.csv *.xdi);;All files (*)")
        if path:
            try:
                self.choosers.show_column_chooser(path, self.state.backend.measured_columns(path))
            except (OSError, ValueError) as exc:
                self.state.messages.errorMessage.emit(str(exc))

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
        if self.state.structures.current_id:
            self.state.structures.close_structure(self.state.structures.current_id)

    # ------------------------------------------------------------ structures
    def _refresh_structure_list(self, *_args) -> None:
        self.structure_list.blockSignals(True)
        try:
            self.structure_list.clear()
            for doc in self.state.structures.documents:
                item = QListWidgetItem(f"{doc.title}  ({doc.structure.formula}, {doc.structure.n_atoms} atoms)")
                item.setData(Qt.ItemDataRole.UserRole, doc.id)
                item.setToolTip(doc.structure.source or "(in memory)")
                self.structure_list.addItem(item)
                if doc.id == self.state.structures.current_id:
                    self.structure_list.setCurrentItem(item)
        finally:
            self.structure_list.blockSignals(False)

    def _on_list_row(self, row: int) -> None:
        item = self.structure_list.item(row)
        if item is not None:
            self.state.structures.set_current(item.data(Qt.ItemDataRole.UserRole))

    def _on_current(self, doc_id: str) -> None:
        self._refresh_structure_list()
        doc = self.state.structures.document(doc_id)
        self.setWindowTitle(f"XANES predictor — {doc.title}" if doc else "XANES predictor")
        self.refresh_plots()

    # --------------------------------------------------------------- spectra
    def _on_prediction(self, doc_id: str, prediction) -> None:
        if doc_id == self.state.structures.current_id:
            self.refresh_plots()

    def _site_labels(self, prediction) -> dict[int, str]:
        doc = self.state.structures.current
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
        state, view = self.state, self.state.view.settings
        doc = state.structures.current
        prediction = state.predictions.shown_prediction() if doc else None
        feff = state.simulations.results() if doc else {}
        measured = state.measured.visible()
        current_measured = state.measured.doc()
        reference_doc = current_measured if current_measured in measured else (measured[0] if measured else None)
        e0_fallback = reference_doc.norm.e0 if reference_doc is not None else None
        prediction_abs = prediction is None or has_absolute_energies(prediction) or e0_fallback is not None
        absolute_ok = prediction_abs and (has_absolute_energies(prediction) or bool(feff) or bool(measured))
        wants_absolute = bool(measured) or view.energy_reference == "absolute"
        reference = "absolute" if absolute_ok and wants_absolute else "edge"
        self.absolute_action.setEnabled(absolute_ok and not measured)
        self.edge_action.setEnabled(not measured)
        origin = prediction.grid_origin_ev if prediction is not None else None
        self.edge_action.setText("Energy relative to edge (E − E0)" if origin is None
                                 else f"Energy relative to the model's edge (E − {origin:.0f} eV)")
        self.absolute_action.setChecked(reference == "absolute")
        self.edge_action.setChecked(reference == "edge")
        target = state.measured.comparison_target()
        shift = state.measured.align.shift_ev if measured and reference == "absolute" else 0.0
        curves = []
        if prediction is not None:
            curves += curves_for(prediction, reference, self._site_labels(prediction),
                                 shift_ev=shift if target and target[0] == "ml" else 0.0,
                                 e0_fallback=e0_fallback if measured else None)
        offset = 0
        for result in feff.values():
            curves += feff_curves(result, reference, lambda i, o=offset: state.simulations.color(result.preset, o + i),
                                  shift_ev=shift if target and target[0] == "feff" else 0.0)
            offset += len(result.spectra) + 1
        if reference == "absolute":
            for doc_m in measured:
                curves.append(measured_curve(doc_m.label, doc_m.data.energy_ev, doc_m.curve, doc_m.color))
        for overlay in state.interpret.overlays():
            energy = overlay.on_axis(reference)
            if energy is not None:
                curves.append(measured_curve(overlay.label, energy, overlay.mu, overlay.color, "fit"))
        self.plots.set_reference(reference, origin)
        self.plots.set_curves(curves, view.hidden_curves)
        self.curve_list.set_curves([c.label for c in curves], view.hidden_curves, [c.color for c in curves])
        simulated = [c for c in curves if c.kind != "measured" and len(c.energy)]
        if measured and reference == "absolute" and (simulated or state.measured.align.window):
            lo, hi = state.measured.align.window or (min(float(c.energy[0]) for c in simulated),
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
        self.engine_label.setText(f"Ready: {self.state.predictions.device_name}")

    # ---------------------------------------------------------------- export
    def current_curves(self):
        """Curves shown in the spectra panel (hidden ones excluded)."""
        hidden = self.state.view.settings.hidden_curves
        return [c for c in self.plots.curves if c.label not in hidden]

    def export_spectra_csv(self, path: str | os.PathLike) -> Path:
        """Write every shown curve (prediction, FEFF10, measured) with its derivatives as CSV."""
        from xanes_gui.export import export_spectra_csv

        return export_spectra_csv(self.state, self.current_curves(), path)

    def export_comparison_csv(self, path: str | os.PathLike, measured_id: str | None = None) -> Path:
        """Write the aligned comparison of a measured spectrum with the prediction (see export)."""
        from xanes_gui.export import export_comparison_csv

        return export_comparison_csv(self.state, path, measured_id)

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
            self.state.messages.errorMessage.emit(f"Export to {path} failed: {exc}")
        else:
            self.state.messages.statusMessage.emit(f"Exported {path}")

    # --------------------------------------------------------------- session
    def save_session(self, path: str | os.PathLike) -> Path:
        from xanes_gui.session import save_session

        return save_session(self.state, path)

    def load_session(self, path: str | os.PathLike):
        from xanes_gui.session import load_session

        try:
            return load_session(self.state, path)
        except (OSError, ValueError) as exc:
            self.state.messages.errorMessage.emit(f"Cannot load session {path}: {exc}")
            return None

    def _save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", os.path.join(self._last_dir(), "session.json"),
                                              "Session (*.json)")
        if path:
            try:
                self.save_session(path)
                self.state.messages.statusMessage.emit(f"Session saved to {path}")
            except OSError as exc:
                self.state.messages.errorMessage.emit(f"Cannot save session {path}: {exc}")

    def _load_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load session", self._last_dir(), "Session (*.json)")
        if path:
            self.load_session(path)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.state.shutdown()
        super().closeEvent(event)
