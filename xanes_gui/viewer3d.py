"""3-D structure view: atoms as one shaded sphere mesh, bonds, unit cell, picking.

All atoms are drawn as ONE :class:`~pyqtgraph.opengl.GLMeshItem` built by
instancing a low-poly sphere per atom (numpy, no per-atom items), so thousands
of atoms stay smooth. Picking casts a ray from the camera through the mouse
position (the inverse of the view and projection matrices that pyqtgraph uses
to draw) and intersects it with the atom spheres; the nearest hit wins.

The geometry helpers at the top are plain numpy so they can be tested
without an OpenGL context.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyqtgraph as pg
import pyqtgraph.opengl as gl
from pyqtgraph.opengl import shaders
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox,
                               QToolTip, QVBoxLayout, QWidget)

from model_core.types import Prediction, Structure
from xanes_gui.elements import covalent_radii, jmol_colors
from xanes_gui.state import AppState, StructureDoc

#: Spheres are drawn at this fraction of the covalent radius (ball-and-stick look).
ATOM_SCALE = 0.45
#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_TOLERANCE = 1.15
HIGHLIGHT_SCALE = 1.3
HIGHLIGHT_COLOR = (1.0, 0.8, 0.0, 0.45)
#: Non-metals (H, He, B, C, N, O, F, Ne, Si, P, S, Cl, Ar, As, Se, Br, Kr, Te, I, Xe, At, Rn).
#: Sticks are drawn only when at least one end is one of these: metal-metal
#: contacts in oxides and salts (Cu-Cu 2.9 A in CuO) would otherwise hide the
#: coordination polyhedra. A display choice only.
NON_METALS = frozenset({1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86})
ATTENTION_COLORMAP = "viridis"


# --------------------------------------------------------------------- geometry
@lru_cache(maxsize=4)
def icosphere(subdivisions: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A unit icosphere: (V, 3) float32 vertices on the unit sphere and (F, 3) uint32 faces.

    subdivisions=1 gives 42 vertices / 80 faces: round enough for atoms, cheap to instance.
    """
    t = (1.0 + 5 ** 0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    vertices = [np.array(v, dtype=float) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        midpoints: dict[tuple[int, int], int] = {}

        def midpoint(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in midpoints:
                m = vertices[a] + vertices[b]
                vertices.append(m / np.linalg.norm(m))
                midpoints[key] = len(vertices) - 1
            return midpoints[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    v = np.array(vertices, dtype=np.float32)
    f = np.array(faces, dtype=np.uint32)
    v.setflags(write=False)
    f.setflags(write=False)
    return v, f


def sphere_mesh(centers: np.ndarray, radii: np.ndarray, colors: np.ndarray,
                subdivisions: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Instance a unit sphere at every center: one combined mesh.

    Returns:
        (vertices (N·V, 3), faces (N·F, 3), normals (N·V, 3), colours (N·V, 4)), float32/uint32.
    """
    unit, unit_faces = icosphere(subdivisions)
    n, nv = len(centers), len(unit)
    centers = np.asarray(centers, dtype=np.float32)
    radii = np.asarray(radii, dtype=np.float32)
    vertices = (centers[:, None, :] + radii[:, None, None] * unit[None, :, :]).reshape(-1, 3)
    normals = np.broadcast_to(unit, (n, nv, 3)).reshape(-1, 3).astype(np.float32)
    offsets = (np.arange(n, dtype=np.uint32) * nv)[:, None, None]
    faces = (unit_faces[None, :, :] + offsets).reshape(-1, 3)
    vertex_colors = np.repeat(np.asarray(colors, dtype=np.float32), nv, axis=0)
    return vertices, faces, normals, vertex_colors


def supercell(structure: Structure, repeats: tuple[int, int, int] = (1, 1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Positions repeated along the cell vectors and the original atom index of each.

    Returns:
        ((N·na·nb·nc, 3) positions, (N·na·nb·nc,) atom indices into ``structure``).
    """
    positions = np.asarray(structure.positions)
    index = np.arange(structure.n_atoms)
    if structure.cell is None or tuple(repeats) == (1, 1, 1):
        return positions.copy(), index
    # Only periodic directions can be repeated (a slab is not repeated along its normal).
    na, nb, nc = (max(1, int(n)) if periodic else 1 for n, periodic in zip(repeats, structure.pbc))
    shifts = np.array([(i, j, k) for i in range(na) for j in range(nb) for k in range(nc)], dtype=float)
    translations = shifts @ np.asarray(structure.cell)
    out = (positions[None, :, :] + translations[:, None, :]).reshape(-1, 3)
    return out, np.tile(index, len(shifts))


def find_bonds(positions: np.ndarray, radii: np.ndarray, tolerance: float = BOND_TOLERANCE,
               atomic_numbers: np.ndarray | None = None) -> np.ndarray:
    """(B, 2) pairs of displayed atoms closer than ``tolerance`` × the sum of their covalent radii.

    With ``atomic_numbers``, pairs of two metals are left out (see :data:`NON_METALS`).
    """
    from scipy.spatial import cKDTree

    if len(positions) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    cutoff = tolerance * 2.0 * float(np.max(radii))
    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=1)
    keep = (d < tolerance * (radii[pairs[:, 0]] + radii[pairs[:, 1]])) & (d > 0.1)
    if atomic_numbers is not None:
        nonmetal = np.isin(np.asarray(atomic_numbers), list(NON_METALS))
        keep &= nonmetal[pairs[:, 0]] | nonmetal[pairs[:, 1]]
    return pairs[keep]


def bond_segments(positions: np.ndarray, pairs: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-bond line segments (4 vertices per bond) coloured like their atoms, for mode='lines'."""
    a, b = positions[pairs[:, 0]], positions[pairs[:, 1]]
    mid = 0.5 * (a + b)
    pos = np.stack([a, mid, mid, b], axis=1).reshape(-1, 3).astype(np.float32)
    col = np.stack([colors[pairs[:, 0]], colors[pairs[:, 0]], colors[pairs[:, 1]], colors[pairs[:, 1]]],
                   axis=1).reshape(-1, 4).astype(np.float32)
    return pos, col


def cell_edges(cell: np.ndarray) -> np.ndarray:
    """(24, 3) endpoints of the 12 unit-cell edges (for mode='lines')."""
    a, b, c = np.asarray(cell, dtype=float)
    corners = {(i, j, k): i * a + j * b + k * c for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    lines = []
    for (i, j, k), p in corners.items():
        for di, dj, dk in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            q = (i + di, j + dj, k + dk)
            if q in corners:
                lines += [p, corners[q]]
    return np.array(lines, dtype=np.float32)


def qmatrix_to_numpy(matrix) -> np.ndarray:
    """A QMatrix4x4 as a row-major (4, 4) numpy array (Qt stores it column-major)."""
    return np.array(matrix.data(), dtype=float).reshape(4, 4).T


def camera_ray(mvp: np.ndarray, x: float, y: float, width: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray from the camera through widget pixel (x, y), in world coordinates.

    Args:
        mvp: (4, 4) projection × view matrix (row-major).
        x, y: mouse position in widget (logical) pixels, y downwards.
        width, height: widget size in logical pixels (the viewport the projection uses).

    Returns:
        (origin on the near plane, unit direction).
    """
    ndc_x = 2.0 * x / width - 1.0
    ndc_y = 1.0 - 2.0 * y / height
    inverse = np.linalg.inv(mvp)
    near = inverse @ np.array([ndc_x, ndc_y, -1.0, 1.0])
    far = inverse @ np.array([ndc_x, ndc_y, 1.0, 1.0])
    near, far = near[:3] / near[3], far[:3] / far[3]
    direction = far - near
    return near, direction / np.linalg.norm(direction)


def project_points(mvp: np.ndarray, points: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 2) widget pixel positions of world points (inverse of :func:`camera_ray`)."""
    points = np.atleast_2d(points)
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ mvp.T
    ndc = homogeneous[:, :3] / homogeneous[:, 3:4]
    return np.column_stack([(ndc[:, 0] + 1.0) * width / 2.0, (1.0 - ndc[:, 1]) * height / 2.0])


def ray_pick(origin: np.ndarray, direction: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> int | None:
    """Index of the sphere the ray hits first (nearest entry point in front of the origin), or None."""
    if len(centers) == 0:
        return None
    oc = np.asarray(centers, dtype=float) - origin
    along = oc @ direction
    miss2 = np.einsum("ij,ij->i", oc, oc) - along ** 2
    r2 = np.asarray(radii, dtype=float) ** 2
    hit = miss2 <= r2
    if not np.any(hit):
        return None
    t = np.full(len(centers), np.inf)
    depth = along[hit] - np.sqrt(np.maximum(r2[hit] - miss2[hit], 0.0))
    t[hit] = np.where(depth >= 0, depth, np.where(along[hit] >= 0, 0.0, np.inf))
    best = int(np.argmin(t))
    return best if np.isfinite(t[best]) else None


@dataclass(frozen=True, eq=False)
class SceneGeometry:
    """What is drawn for one structure (displayed atoms may repeat in a supercell).

    Attributes:
        positions: (D, 3) displayed atom centres.
        atom_index: (D,) original atom index of each displayed atom.
        radii: (D,) drawn sphere radii (Å).
        colors: (D, 4) element colours.
        bonds: (B, 2) pairs of displayed atoms.
    """

    positions: np.ndarray
    atom_index: np.ndarray
    radii: np.ndarray
    colors: np.ndarray
    bonds: np.ndarray

    @classmethod
    def build(cls, structure: Structure, repeats: tuple[int, int, int] = (1, 1, 1),
              with_bonds: bool = True) -> "SceneGeometry":
        positions, index = supercell(structure, repeats)
        numbers = np.asarray(structure.atomic_numbers)[index]
        covalent = covalent_radii(numbers)
        bonds = find_bonds(positions, covalent, atomic_numbers=numbers) if with_bonds \
            else np.zeros((0, 2), dtype=np.int64)
        return cls(positions, index, ATOM_SCALE * covalent, jmol_colors(numbers), bonds)


# ---------------------------------------------------------------- GL widgets
def _atom_shader() -> shaders.ShaderProgram:
    # Brighter than pyqtgraph's 'shaded' (which is mostly ambient-dark), with a
    # small specular highlight so spheres read as 3-D; light comes from the viewer.
    name = "xanes_atoms"
    for program in shaders.Shaders:
        if program.name == name:
            return program
    program = shaders.ShaderProgram(name, [
        shaders.VertexShader("""
            uniform mat4 u_mvp;
            uniform mat3 u_normal;
            attribute vec4 a_position;
            attribute vec3 a_normal;
            attribute vec4 a_color;
            varying vec4 v_color;
            varying vec3 v_normal;
            void main() {
                v_normal = normalize(u_normal * a_normal);
                v_color = a_color;
                gl_Position = u_mvp * a_position;
            }
        """),
        shaders.FragmentShader("""
            #ifdef GL_ES
            precision mediump float;
            #endif
            varying vec4 v_color;
            varying vec3 v_normal;
            void main() {
                vec3 n = normalize(v_normal);
                vec3 light = normalize(vec3(0.4, 0.5, 1.0));
                float diffuse = max(dot(n, light), 0.0);
                vec3 halfway = normalize(light + vec3(0.0, 0.0, 1.0));
                float specular = pow(max(dot(n, halfway), 0.0), 40.0) * 0.35;
                vec3 rgb = v_color.rgb * (0.35 + 0.65 * diffuse) + vec3(specular);
                gl_FragColor = vec4(rgb, v_color.a);
            }
        """),
    ])
    shaders.Shaders.append(program)
    return program


class _SphereMeshData(gl.MeshData):
    """MeshData with exact sphere normals supplied (pyqtgraph would loop over every vertex in Python)."""

    def __init__(self, vertexes, faces, normals, colors) -> None:
        super().__init__(vertexes=vertexes, faces=faces, vertexColors=colors)
        self._sphere_normals = normals

    def vertexNormals(self, indexed=None):  # noqa: N802 - pyqtgraph API
        if indexed == "faces":
            return self._sphere_normals[self.faces()]
        return self._sphere_normals


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
    """A small vertical colour bar with min/max labels (attention colouring)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFixedWidth(70)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self._cmap = pg.colormap.get(ATTENTION_COLORMAP)
        self._range = (0.0, 1.0)
        self.title = "attention"

    def set_range(self, low: float, high: float) -> None:
        self._range = (float(low), float(high))
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
        self.color_combo.setToolTip("Colour atoms by element or by the model's attention")
        self.color_combo.addItem("Elements", "element")
        self.color_combo.addItem("Attention", "attention")
        self.repeat_spins = []
        controls = QHBoxLayout()
        controls.setContentsMargins(2, 2, 2, 2)
        controls.addWidget(self.reset_button)
        controls.addWidget(self.bonds_check)
        controls.addWidget(self.cell_check)
        controls.addWidget(QLabel("Cells:", self))
        for _ in range(3):
            spin = QSpinBox(self)
            spin.setRange(1, 6)
            spin.setToolTip("Supercell: repeats along a, b, c")
            self.repeat_spins.append(spin)
            controls.addWidget(spin)
        controls.addWidget(self.color_combo)
        controls.addStretch(1)
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.view, 1)
        body.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(body, 1)

        # Every GL item is created once here; showing another structure only updates their data.
        self.atoms = gl.GLMeshItem(smooth=True, shader=_atom_shader(), glOptions="opaque")
        self.highlight = gl.GLMeshItem(smooth=True, shader=_atom_shader(), glOptions="translucent")
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
        self._on_view_settings(state.view.settings, rebuild=False)
        self._on_current(state.structures.current_id)

    # --------------------------------------------------------------- settings
    def _set_view_option(self, **changes) -> None:
        if not self._syncing:
            self.state.view.set_view(**changes)

    def _on_repeat(self, _value: int) -> None:
        self._set_view_option(supercell=tuple(s.value() for s in self.repeat_spins))

    def _on_view_settings(self, view, rebuild: bool = True) -> None:
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
            self.bonds.setData(pos=pos, color=col)
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
        if self.state.view.settings.color_mode != "attention":
            self.legend.setVisible(False)
            return geometry.colors
        weights = self.attention_weights()
        self.legend.setVisible(True)
        if weights is None:
            self.legend.set_range(0, 0)
            return np.tile(np.array([[0.75, 0.75, 0.75, 1.0]], dtype=np.float32), (len(geometry.positions), 1))
        high = float(weights.max()) or 1.0
        self.legend.set_range(0.0, high)
        cmap = pg.colormap.get(ATTENTION_COLORMAP)
        colors = cmap.map(weights[geometry.atom_index] / high, mode="float").astype(np.float32)
        return colors

    def attention_weights(self) -> np.ndarray | None:
        """(N,) attention per original atom for the chosen site of the shown prediction."""
        doc = self._doc
        prediction: Prediction | None = self.state.predictions.shown_prediction(doc.id) if doc else None
        if doc is None or prediction is None or not prediction.attention:
            return None
        sites = [int(i) for i in prediction.site_indices]
        wanted = self.state.view.settings.attention_site
        k = sites.index(wanted) if wanted in sites else 0
        return prediction.attention[k].per_atom(doc.structure.n_atoms)

    def _update_colors(self) -> None:
        geometry = self._geometry
        if geometry is None:
            return
        vertices, faces, normals, colors = sphere_mesh(geometry.positions, geometry.radii, self.atom_colors())
        self.atoms.setMeshData(meshdata=_SphereMeshData(vertices, faces, normals, colors))
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
        vertices, faces, normals, vcolors = sphere_mesh(centers, radii, colors)
        self.highlight.setMeshData(meshdata=_SphereMeshData(vertices, faces, normals, vcolors))
        self.highlight.setVisible(True)

    def _on_selection(self, doc_id: str, _indices) -> None:
        if self._doc is not None and doc_id == self._doc.id:
            self._doc = self.state.structures.document(doc_id)
            self._update_highlight()

    def reset_view(self) -> None:
        """Centre the structure and fit it in the view."""
        geometry = self._geometry
        if geometry is None:
            return
        low, high = geometry.positions.min(axis=0), geometry.positions.max(axis=0)
        center = 0.5 * (low + high)
        extent = float(np.linalg.norm(high - low)) + 2.0 * float(geometry.radii.max())
        distance = max(extent, 2.0) / (2.0 * np.tan(np.radians(self.view.opts["fov"]) / 2.0)) * 1.1
        self.view.setCameraPosition(pos=pg.Vector(*center), distance=distance, elevation=20, azimuth=-60)

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
