"""3-D view: geometry helpers (pure numpy) and, under a real OpenGL context, picking and big meshes."""

from __future__ import annotations


import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QMatrix4x4, QVector3D

from model_core.types import Structure
from tests.xanes_gui.fakes import cu4o_cluster, simple_read
from xanes_gui.glatoms import impostor_quads
from xanes_gui.picking import camera_ray, project_points, qmatrix_to_numpy, ray_pick
from xanes_gui.scene3d import bond_segments, cell_edges, find_bonds, supercell


def test_impostor_quads_give_one_square_per_sphere():
    centers = np.array([[0, 0, 0], [5, 0, 0]], dtype=float)
    positions, corners, colors, faces = impostor_quads(centers, np.array([1.0, 2.0]),
                                                       np.array([[1, 0, 0, 1], [0, 1, 0, 1]]))
    assert positions.shape == (8, 3) and corners.shape == (8, 3) and colors.shape == (8, 4)
    assert faces.shape == (4, 3) and faces.dtype == np.uint32
    np.testing.assert_allclose(positions[4:], np.tile(centers[1], (4, 1)))
    np.testing.assert_allclose(corners[:, 2], [1, 1, 1, 1, 2, 2, 2, 2])  # the radius rides on every corner
    np.testing.assert_allclose(np.abs(corners[:, :2]), 1.0)
    assert set(faces[2:].ravel()) == {4, 5, 6, 7}  # the second square indexes its own vertices
    np.testing.assert_allclose(colors[4:], np.tile([0, 1, 0, 1], (4, 1)))


def test_ray_pick_returns_nearest_hit():
    centers = np.array([[0, 0, 0], [0, 0, -5], [3, 0, 0]], dtype=float)
    radii = np.array([1.0, 1.0, 1.0])
    origin, direction = np.array([0.0, 0.0, 10.0]), np.array([0.0, 0.0, -1.0])
    assert ray_pick(origin, direction, centers, radii) == 0
    assert ray_pick(np.array([3.0, 0.5, 10.0]), direction, centers, radii) == 2
    assert ray_pick(np.array([10.0, 10.0, 10.0]), direction, centers, radii) is None
    assert ray_pick(origin, -direction, centers, radii) is None  # atoms behind the camera


def test_camera_ray_inverts_projection():
    projection = QMatrix4x4()
    projection.perspective(40.0, 1.5, 0.1, 1000.0)
    view = QMatrix4x4()
    view.lookAt(QVector3D(8, -6, 5), QVector3D(0, 0, 0), QVector3D(0, 0, 1))
    mvp = qmatrix_to_numpy(projection) @ qmatrix_to_numpy(view)
    point = np.array([0.7, -0.3, 0.4])
    (x, y), = project_points(mvp, point, 600, 400)
    origin, direction = camera_ray(mvp, x, y, 600, 400)
    # The ray passes through the projected point.
    closest = origin + direction * np.dot(point - origin, direction)
    np.testing.assert_allclose(closest, point, atol=1e-6)


def test_bonds_supercell_and_cell(tmp_path):
    structure = simple_read(cu4o_cluster(tmp_path / "a.xyz"))
    radii = np.array([0.66, 1.32, 1.32, 1.32, 1.32])
    bonds = find_bonds(structure.positions, radii)
    assert sorted(map(tuple, np.sort(bonds, axis=1))) == [(0, 1), (0, 2), (0, 3), (0, 4)]
    pos, col = bond_segments(structure.positions, bonds, np.ones((5, 4)))
    assert pos.shape == (16, 3) and col.shape == (16, 4)
    crystal = Structure([11, 17], [[0, 0, 0], [2.8, 0, 0]], cell=np.eye(3) * 5.6, pbc=(True, True, True))
    positions, index = supercell(crystal, (2, 2, 1))
    assert positions.shape == (8, 3) and list(index) == [0, 1] * 4
    assert cell_edges(crystal.cell).shape == (24, 3)


def random_crystal(n: int, seed: int = 0) -> Structure:
    rng = np.random.default_rng(seed)
    side = (n * 12.0) ** (1 / 3)
    z = rng.choice([8, 26, 29], size=n)
    return Structure(z, rng.random((n, 3)) * side, cell=np.eye(3) * side, pbc=(True, True, True), name="random")


# ----------------------------------------------------------------- real OpenGL
@pytest.fixture
def gl_view(qtbot, gl_ok, state, tmp_path):
    from xanes_gui.viewer3d import StructureView

    view = StructureView(state)
    view.resize(800, 600)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _front_atom(view):
    """Displayed atom nearest to the camera (never hidden behind another)."""
    camera = np.array(view.view.cameraPosition())
    distances = np.linalg.norm(view.geometry.positions - camera, axis=1)
    return int(np.argmin(distances))


@pytest.mark.gl
def test_pick_atom_at_its_projected_position(qtbot, gl_view, state, tmp_path):
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    view = gl_view.view
    for atom in range(5):
        x, y = view.screen_position(atom)
        picked = view.pick(x, y)
        # Nearer atoms may cover farther ones; the pick must be an atom whose sphere covers the pixel.
        assert picked == atom or np.linalg.norm(view.screen_position(picked) - np.array([x, y])) < 80
    front = _front_atom(gl_view)
    x, y = view.screen_position(front)
    assert view.pick(x, y) == front
    # A real click on it selects it; Ctrl-click on another adds it.
    with qtbot.waitSignal(state.structures.selectionChanged) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(x), round(y)))
    assert list(blocker.args[1]) == [front]
    other = 0 if front != 0 else 1
    ox, oy = view.screen_position(other)
    if view.pick(ox, oy) == other:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                         pos=QPoint(round(ox), round(oy)))
        assert sorted(state.structures.selection()) == sorted([front, other])
    # Clicking empty space clears the selection.
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert list(state.structures.selection()) == []


@pytest.mark.gl
def test_rendered_pixels_show_the_atom(qtbot, gl_view, state, tmp_path):
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    state.structures.set_selection(state.structures.current_id, [])
    image = gl_view.grab_image()
    front = _front_atom(gl_view)
    x, y = gl_view.view.screen_position(front)
    ratio = image.width() / gl_view.view.width()
    pixel = image.pixelColor(round(x * ratio), round(y * ratio))
    assert (pixel.red(), pixel.green(), pixel.blue()) != (255, 255, 255)  # not background
    corner = image.pixelColor(2, 2)
    assert (corner.red(), corner.green(), corner.blue()) == (255, 255, 255)


@pytest.mark.gl
def test_five_thousand_atoms_are_one_item(qtbot, gl_view, state):
    items_before = list(gl_view.view.items)
    state.structures.add_structure(random_crystal(5000))
    assert gl_view.view.items == items_before  # no per-atom items: the same five GL items
    meshdata = gl_view.atoms.opts["meshdata"]
    assert meshdata.vertexes().shape == (5000 * 4, 3)  # one impostor square per atom
    assert not gl_view.grab_image().isNull()  # how fast: benchmarks/gui.py
    x, y = gl_view.view.screen_position(_front_atom(gl_view))
    assert gl_view.view.pick(x, y) == _front_atom(gl_view)


@pytest.mark.gl
def test_attention_colouring_and_tooltip(qtbot, gl_view, state, tmp_path):
    with qtbot.waitSignal(state.structures.fileOpened, timeout=10000):
        state.structures.open_files([cu4o_cluster(tmp_path / "a.xyz")])
    with qtbot.waitSignal(state.predictions.predictionReady, timeout=10000):
        state.predictions.predict()
    element_colors = gl_view.atom_colors().copy()
    state.view.set_view(color_mode="attention")
    assert gl_view.legend.isVisible()
    colors = gl_view.atom_colors()
    assert not np.allclose(colors, element_colors)
    weights = gl_view.attention_weights()
    assert weights.argmax() == 0  # the O in the middle is the closest neighbour
    assert "Cu" in gl_view.describe_atom(1) and "#1" in gl_view.describe_atom(1)
    state.view.set_view(supercell=(2, 1, 1))  # molecule: repeats are ignored
    assert len(gl_view.geometry.positions) == 5


@pytest.mark.gl
def test_supercell_of_a_crystal(qtbot, gl_view, state):
    crystal = Structure([11, 17], [[0, 0, 0], [2.82, 2.82, 2.82]], cell=np.eye(3) * 5.64, pbc=(True,) * 3)
    state.structures.add_structure(crystal)
    state.view.set_view(supercell=(2, 2, 2))
    assert len(gl_view.geometry.positions) == 16
    assert gl_view.cell.visible()
    x, y = gl_view.view.screen_position(_front_atom(gl_view))
    assert gl_view.view.pick(x, y) in (0, 1)


def _green_over_red(image, view, x, y) -> float:
    ratio = image.width() / view.width()
    pixel = image.pixelColor(round(x * ratio), round(y * ratio))
    return pixel.green() / max(pixel.red(), 1)


@pytest.mark.gl
def test_impostors_hide_the_sphere_behind(qtbot, gl_view, state):
    # O (red) and Cu (copper, much greener) overlap along x; whichever is nearer the camera covers the other.
    state.structures.add_structure(Structure([8, 29], [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]], name="pair"))
    view = gl_view.view
    for azimuth, front, back in ((0, 1, 0), (180, 0, 1)):  # azimuth 0 looks from +x
        view.setCameraPosition(pos=pg.Vector(0.25, 0, 0), distance=8, elevation=0, azimuth=azimuth)
        image = gl_view.grab_image()
        x, y = view.screen_position(back)  # the far atom's centre lies behind the near one
        covered = _green_over_red(image, view, x, y)
        assert (covered > 0.3) if front == 1 else (covered < 0.2), (azimuth, covered)
