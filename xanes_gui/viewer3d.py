"""3-D structure view: atoms, bonds, unit cell, picking, synced with the app state.

All atoms are ONE GL item of ray-cast sphere impostors (:mod:`xanes_gui.glatoms`),
the bonds one line item and the cell another, all created once and only updated
with new data, so tens of thousands of atoms stay smooth and no per-frame Python
work grows with the structure. What is drawn is computed in
:mod:`xanes_gui.scene3d`; picking casts a ray from the camera through the mouse
position (:mod:`xanes_gui.picking`) and intersects it with the atom spheres.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pyqtgraph.opengl as gl
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox,
                               QToolBar, QToolTip, QVBoxLayout, QWidget)

from model_core.types import Prediction
from xanes_gui.glatoms import SphereImpostors
from xanes_gui.picking import camera_ray, project_points, qmatrix_to_numpy, ray_pick
from xanes_gui.scene3d import SceneGeometry, bond_segments, cell_edges
from xanes_gui.state import AppState, StructureDoc

HIGHLIGHT_SCALE = 1.3
HIGHLIGHT_COLOR = (1.0, 0.8, 0.0, 0.45)
ATTENTION_COLORMAP = "viridis"
#: Atoms without a value in the attention or attribution colouring.
NO_VALUE_COLOR = (0.75, 0.75, 0.75, 1.0)
#: Legend title per value colouring.
LEGEND_TITLES = {"attention": "attention", "attribution": "attribution"}
ATTRIBUTION_HINT = "Compute the attribution in the Attention panel first"
#: Smooth (antialiased) bond lines only up to this many bonds: software
#: renderers draw smooth lines several times slower than plain ones.
SMOOTH_BONDS_MAX = 5000


def fit_camera(view: gl.GLViewWidget, geometry: SceneGeometry) -> None:
    """Centre ``geometry`` in ``view`` and fit it in its field of view (the default orientation)."""
    low, high = geometry.positions.min(axis=0), geometry.positions.max(axis=0)
    center = 0.5 * (low + high)
    extent = float(np.linalg.norm(high - low)) + 2.0 * float(geometry.radii.max())
    distance = max(extent, 2.0) / (2.0 * np.tan(np.radians(view.opts["fov"]) / 2.0)) * 1.1
    view.setCameraPosition(pos=pg.Vector(*center), distance=distance, elevation=20, azimuth=-60)


class AtomGLView(gl.GLViewWidget):
    """GLViewWidget that reports clicks and hovers on atoms (by ray casting).

    Signals:
        atomClicked(int, bool): original atom index (-1 for empty space) and whether
            Ctrl/Shift was held (add to the selection).
        atomHovered(int, QPointF): atom under the mouse (-1 for none) and the global position.
    """

    atomClicked = Signal(int, bool)
    atomHovered = Signal(int, QPointF)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.geometry_: SceneGeometry | None = None
        self._press: QPointF | None = None

    def mvp_matrix(self) -> np.ndarray:
        """Projection × view matrix exactly as pyqtgraph uses to draw the whole widget."""
        viewport = self.getViewport()
        projection = qmatrix_to_numpy(self.projectionMatrix(viewport, viewport))
        return projection @ qmatrix_to_numpy(self.viewMatrix())

    def pick(self, x: float, y: float) -> int:
        """Original atom index under widget pixel (x, y), or -1."""
        geometry = self.geometry_
        if geometry is None or self.width() <= 0 or self.height() <= 0:
            return -1
        origin, direction = camera_ray(self.mvp_matrix(), x, y, self.width(), self.height())
        hit = ray_pick(origin, direction, geometry.positions, geometry.radii)
        return -1 if hit is None else int(geometry.atom_index[hit])

    def screen_position(self, displayed: int) -> tuple[float, float]:
        """Widget pixel position of displayed atom ``displayed`` (for tests and tooltips)."""
        assert self.geometry_ is not None
        x, y = project_points(self.mvp_matrix(), self.geometry_.positions[displayed], self.width(), self.height())[0]
        return float(x), float(y)

    def mousePressEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self._press = ev.position()
        super().mousePressEvent(ev)

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        press, self._press = self._press, None
        if press is not None and ev.button() == Qt.MouseButton.LeftButton:
            moved = ev.position() - press
            # A drag orbits the view; only a (nearly) still press is a click.
            if abs(moved.x()) + abs(moved.y()) <= 4:
                add = bool(ev.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))
                self.atomClicked.emit(self.pick(ev.position().x(), ev.position().y()), add)
        super().mouseReleaseEvent(ev)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        if ev.buttons() == Qt.MouseButton.NoButton:
            pos = ev.position()
            self.atomHovered.emit(self.pick(pos.x(), pos.y()), ev.globalPosition())
        super().mouseMoveEvent(ev)


class GradientLegend(QWidget):
    """A small vertical colour bar with min/max labels (attention or attribution colouring)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedWidth(70)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self._cmap = pg.colormap.get(ATTENTION_COLORMAP)
        self._range = (0.0, 1.0)
        self.title = "attention"

    def set_range(self, low: float, high: float, title: str | None = None) -> None:
        self._range = (float(low), float(high))
        if title is not None:
            self.title = title
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(255, 255, 255))
        bar = QRectF(8, 22, 16, max(self.height() - 44, 10))
        gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for stop, color in zip(*self._cmap.getStops(mode="qcolor")):
            gradient.setColorAt(float(stop), color)
        painter.fillRect(bar, gradient)
        painter.setPen(QColor(0, 0, 0))
        painter.drawRect(bar)
        painter.drawText(QRectF(0, 2, self.width(), 18), Qt.AlignmentFlag.AlignHCenter, self.title)
        painter.drawText(QRectF(28, bar.top() - 6, 42, 14), Qt.AlignmentFlag.AlignLeft, f"{self._range[1]:.3g}")
        painter.drawText(QRectF(28, bar.bottom() - 8, 42, 14), Qt.AlignmentFlag.AlignLeft, f"{self._range[0]:.3g}")
        painter.end()


class StructureView(QWidget):
    """The 3-D panel: GL view, display options, colour bar; synced with the app state."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.view = AtomGLView(self)
        self.view.setBackgroundColor((255, 255, 255, 255))
        self.view.opts["fov"] = 35
        self.legend = GradientLegend(self)
        self.legend.setVisible(False)
        self.reset_button = QPushButton("Reset", self)
        self.reset_button.setToolTip("Reset the view: centre and fit the structure")
        self.bonds_check = QCheckBox("Bonds", self)
        self.cell_check = QCheckBox("Cell", self)
        self.color_combo = QComboBox(self)
        self.color_combo.setToolTip("Colour atoms by element, by the model's attention or by the attribution "
                                    "computed in the Attention panel")
        self.color_combo.addItem("Elements", "element")
        self.color_combo.addItem("Attention", "attention")
        self.color_combo.addItem("Attribution", "attribution")
        self.repeat_spins = []
        # A tool bar, not a row layout: in a narrow column the controls that do
        # not fit go behind its extension button instead of widening the view,
        # so the spectra keep the larger share of the window.
        self.toolbar = QToolBar(self)
        for widget in (self.reset_button, self.bonds_check, self.cell_check, QLabel(" Cells:", self)):
            self.toolbar.addWidget(widget)
        for _ in range(3):
            spin = QSpinBox(self)
            spin.setRange(1, 6)
            spin.setToolTip("Supercell: repeats along a, b, c")
            self.repeat_spins.append(spin)
            self.toolbar.addWidget(spin)
        self.toolbar.addWidget(self.color_combo)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.view, 1)
        body.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addLayout(body, 1)

        # Every GL item is created once here; showing another structure only updates their data.
        self.atoms = SphereImpostors(glOptions="opaque")
        self.highlight = SphereImpostors(glOptions="translucent")
        self.bonds = gl.GLLinePlotItem(mode="lines", width=2.5, antialias=True, glOptions="opaque")
        self.cell = gl.GLLinePlotItem(mode="lines", width=1.5, color=(0.2, 0.2, 0.2, 1.0), antialias=True,
                                      glOptions="opaque")
        self.axes = gl.GLAxisItem()
        for item in (self.atoms, self.bonds, self.cell, self.axes, self.highlight):
            item.setVisible(False)
            self.view.addItem(item)

        self._doc: StructureDoc | None = None
        self._built_repeats: tuple[int, int, int] = (1, 1, 1)
        self._geometry: SceneGeometry | None = None
        self._syncing = False
        self._color_mode = ""  # the colour mode last applied: the hint comes once per switch
        self.reset_button.clicked.connect(self.reset_view)
        self.bonds_check.toggled.connect(lambda on: self._set_view_option(show_bonds=on))
        self.cell_check.toggled.connect(lambda on: self._set_view_option(show_cell=on))
        self.color_combo.currentIndexChanged.connect(
            lambda i: self._set_view_option(color_mode=self.color_combo.itemData(i)))
        for spin in self.repeat_spins:
            spin.valueChanged.connect(self._on_repeat)
        self.view.atomClicked.connect(self._on_atom_clicked)
        self.view.atomHovered.connect(self._on_atom_hovered)
        state.structures.currentStructureChanged.connect(self._on_current)
        state.structures.selectionChanged.connect(self._on_selection)
        state.view.viewSettingsChanged.connect(self._on_view_settings)
        state.predictions.predictionReady.connect(
            lambda doc_id, _p: doc_id == state.structures.current_id and self._update_colors())
        state.attributions.attributionReady.connect(
            lambda doc_id, *_: doc_id == state.structures.current_id and self._update_colors())
        self._on_view_settings(state.view.settings, rebuild=False)
        self._on_current(state.structures.current_id)

    # --------------------------------------------------------------- settings
    def _set_view_option(self, **changes) -> None:
        if not self._syncing:
            self.state.view.set_view(**changes)

    def _on_repeat(self, _value: int) -> None:
        self._set_view_option(supercell=tuple(s.value() for s in self.repeat_spins))

    def _on_view_settings(self, view, rebuild: bool = True) -> None:
        switched_to_attribution = view.color_mode == "attribution" and self._color_mode != "attribution"
        if switched_to_attribution and self.attribution_values() is None:
            self.state.messages.status(ATTRIBUTION_HINT)
        self._color_mode = view.color_mode
        self._syncing = True
        try:
            self.bonds_check.setChecked(view.show_bonds)
            self.cell_check.setChecked(view.show_cell)
            self.color_combo.setCurrentIndex(max(self.color_combo.findData(view.color_mode), 0))
            for spin, n in zip(self.repeat_spins, view.supercell):
                spin.setValue(n)
        finally:
            self._syncing = False
        if rebuild and self._doc is not None:
            if self._repeats() != self._built_repeats:
                self._rebuild(reset_camera=True)
            else:
                self._update_static()
                self._update_colors()

    # -------------------------------------------------------------- structure
    @property
    def geometry(self) -> SceneGeometry | None:
        return self._geometry

    def _repeats(self) -> tuple[int, int, int]:
        doc = self._doc
        return tuple(self.state.view.settings.supercell) if doc is not None and doc.structure.is_periodic else (1, 1, 1)

    def _on_current(self, doc_id: str) -> None:
        self._doc = self.state.structures.document(doc_id)
        periodic = self._doc is not None and self._doc.structure.is_periodic
        for spin in self.repeat_spins:
            spin.setEnabled(periodic)
        self._rebuild(reset_camera=True)

    def _rebuild(self, reset_camera: bool = False) -> None:
        doc = self._doc
        if doc is None:
            self._geometry = None
            self.view.geometry_ = None
            for item in (self.atoms, self.bonds, self.cell, self.axes, self.highlight):
                item.setVisible(False)
            return
        self._built_repeats = self._repeats()
        self._geometry = SceneGeometry.build(doc.structure, self._built_repeats, with_bonds=True)
        self.view.geometry_ = self._geometry
        self._update_static()
        self._update_colors()
        if reset_camera:
            self.reset_view()

    def _update_static(self) -> None:
        geometry, doc, view = self._geometry, self._doc, self.state.view.settings
        if geometry is None or doc is None:
            return
        if view.show_bonds and len(geometry.bonds):
            pos, col = bond_segments(geometry.positions, geometry.bonds, geometry.colors)
            self.bonds.setData(pos=pos, color=col, antialias=len(geometry.bonds) <= SMOOTH_BONDS_MAX)
            self.bonds.setVisible(True)
        else:
            self.bonds.setVisible(False)
        if view.show_cell and doc.structure.cell is not None and doc.structure.is_periodic:
            self.cell.setData(pos=cell_edges(doc.structure.cell))
            self.cell.setVisible(True)
        else:
            self.cell.setVisible(False)
        size = float(np.clip(0.25 * np.ptp(geometry.positions, axis=0).max(initial=0.0), 1.0, 5.0))
        self.axes.setSize(size, size, size)
        self.axes.setVisible(True)

    def atom_colors(self) -> np.ndarray:
        """(D, 4) colours of the displayed atoms for the current colour mode."""
        geometry, doc = self._geometry, self._doc
        assert geometry is not None and doc is not None
        mode = self.state.view.settings.color_mode
        if mode not in LEGEND_TITLES:
            self.legend.setVisible(False)
            return geometry.colors
        values = self.attention_weights() if mode == "attention" else self.attribution_values()
        self.legend.setVisible(True)
        grey = np.tile(np.array([NO_VALUE_COLOR], dtype=np.float32), (len(geometry.positions), 1))
        known = None if values is None else np.isfinite(values)
        if values is None or not known.any():
            self.legend.set_range(0, 0, LEGEND_TITLES[mode])
            return grey
        high = float(values[known].max()) or 1.0
        self.legend.set_range(0.0, high, LEGEND_TITLES[mode])
        cmap = pg.colormap.get(ATTENTION_COLORMAP)
        shown = values[geometry.atom_index]
        has_value = np.isfinite(shown)
        grey[has_value] = cmap.map(shown[has_value] / high, mode="float").astype(np.float32)
        return grey

    def _chosen_site(self) -> tuple[Prediction, int] | None:
        """The shown prediction and the position in it of the chosen site (the first one by default)."""
        doc = self._doc
        prediction: Prediction | None = self.state.predictions.shown_prediction(doc.id) if doc else None
        if prediction is None or not len(prediction.site_indices):
            return None
        sites = [int(i) for i in prediction.site_indices]
        wanted = self.state.view.settings.attention_site
        return prediction, sites.index(wanted) if wanted in sites else 0

    def attention_weights(self) -> np.ndarray | None:
        """(N,) attention per original atom for the chosen site of the shown prediction."""
        chosen = self._chosen_site()
        if chosen is None or not chosen[0].attention:
            return None
        prediction, k = chosen
        return prediction.attention[k].per_atom(self._doc.structure.n_atoms)

    def attribution_values(self) -> np.ndarray | None:
        """(N,) stored attribution per original atom for the chosen site (summed over periodic
        images; NaN for atoms outside the site's graph and for the absorber), None when none was computed."""
        chosen = self._chosen_site()
        if chosen is None:
            return None
        prediction, k = chosen
        result = self.state.attributions.get(self._doc.id, prediction.model_name, int(prediction.site_indices[k]))
        if result is None:
            return None
        n_atoms = self._doc.structure.n_atoms
        values = result.per_atom(n_atoms)
        values[~np.isin(np.arange(n_atoms), result.atom_index)] = np.nan
        return values

    def _update_colors(self) -> None:
        geometry = self._geometry
        if geometry is None:
            return
        self.atoms.set_spheres(geometry.positions, geometry.radii, self.atom_colors())
        self.atoms.setVisible(True)
        self._update_highlight()

    def _update_highlight(self) -> None:
        geometry, doc = self._geometry, self._doc
        if geometry is None or doc is None:
            return
        selected = np.isin(geometry.atom_index, doc.selection.indices)
        if not np.any(selected):
            self.highlight.setVisible(False)
            return
        centers = geometry.positions[selected]
        radii = geometry.radii[selected] * HIGHLIGHT_SCALE
        colors = np.tile(np.array([HIGHLIGHT_COLOR], dtype=np.float32), (len(centers), 1))
        self.highlight.set_spheres(centers, radii, colors)
        self.highlight.setVisible(True)

    def _on_selection(self, doc_id: str, _indices) -> None:
        if self._doc is not None and doc_id == self._doc.id:
            self._doc = self.state.structures.document(doc_id)
            self._update_highlight()

    def reset_view(self) -> None:
        """Centre the structure and fit it in the view."""
        if self._geometry is not None:
            fit_camera(self.view, self._geometry)

    def grab_image(self):
        """The rendered view as a QImage (for PNG export)."""
        return self.view.grabFramebuffer()

    # ------------------------------------------------------------------ mouse
    def _on_atom_clicked(self, atom: int, add: bool) -> None:
        doc = self._doc
        if doc is None:
            return
        current = [int(i) for i in doc.selection.indices]
        if atom < 0:
            if not add:
                self.state.structures.set_selection(doc.id, [])
            return
        if add:
            selection = [i for i in current if i != atom] if atom in current else current + [atom]
        else:
            selection = [atom]
        self.state.structures.set_selection(doc.id, selection)

    def _on_atom_hovered(self, atom: int, global_pos: QPointF) -> None:
        if atom < 0 or self._doc is None:
            QToolTip.hideText()
            return
        QToolTip.showText(global_pos.toPoint(), self.describe_atom(atom), self.view)

    def describe_atom(self, atom: int) -> str:
        """Tooltip text: index, element, Wyckoff letter, Cartesian and fractional coordinates."""
        doc = self._doc
        assert doc is not None
        s = doc.structure
        x, y, z = s.positions[atom]
        wyckoff = doc.symmetry.wyckoff[atom] if atom < len(doc.symmetry.wyckoff) else ""
        lines = [f"#{atom} {s.symbols[atom]}" + (f" · Wyckoff {wyckoff}" if wyckoff else ""),
                 f"x, y, z = {x:.3f}, {y:.3f}, {z:.3f} Å"]
        if s.cell is not None and s.is_periodic:
            frac = np.linalg.solve(np.asarray(s.cell).T, s.positions[atom])
            lines.append("frac = {:.4f}, {:.4f}, {:.4f}".format(*frac))
        if np.isfinite(doc.coordination[atom]):
            lines.append(f"CN {doc.coordination[atom]:g}, nearest {doc.nearest[atom]:.3f} Å")
        return "\n".join(lines)
