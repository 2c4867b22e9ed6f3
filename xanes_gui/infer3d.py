"""The best inferred candidates in 3-D, side by side (inside the Infer structure dock).

Each view draws one candidate's absorber-centred cluster as the main 3-D view draws a
structure (:class:`~xanes_gui.scene3d.SceneGeometry`, sphere impostors of
:mod:`xanes_gui.glatoms`, element colours, half-bond sticks) with the absorber under a
halo of the main view's selection colour (drawn over the cluster), and a caption with the
candidate's method, first-shell CN and distance and round-trip MSE. The views and their GL items are created
once; new results only update their data. Importing this module imports PyOpenGL: the
panel imports it only when the window has OpenGL.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyqtgraph.opengl as gl
from OpenGL import GL
from pyqtgraph.opengl.GLGraphicsItem import GLOptions
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from xanes_gui.glatoms import SphereImpostors
from xanes_gui.identifypanel import _number
from xanes_gui.scene3d import SceneGeometry, bond_segments
from xanes_gui.viewer3d import HIGHLIGHT_COLOR, AtomGLView, fit_camera

#: Candidates shown side by side (the best ones).
N_VIEWS = 3
#: Border of the view of the candidate selected in the table (and of the others).
SELECTED_STYLE = "#candidateView { border: 2px solid rgb(224, 160, 0); }"
UNSELECTED_STYLE = "#candidateView { border: 2px solid transparent; }"
#: The absorber sits at the centre, behind the outer shells: its translucent highlight (the
#: main view's selection colour, larger and denser for these small views) is drawn last and
#: without the depth test, so it shows through the cluster.
ABSORBER_GL_OPTIONS = {**GLOptions["translucent"], GL.GL_DEPTH_TEST: False}
ABSORBER_SCALE = 2.2
ABSORBER_COLOR = (*HIGHLIGHT_COLOR[:3], 0.6)


def candidate_caption(rank: int, candidate: Any) -> str:
    """Three short lines under a view (three views fit a narrow dock): rank and method,
    first-shell CN and distance, round-trip MSE."""
    return (f"#{rank} {candidate.method}\nCN {candidate.coordination_number} · "
            f"{_number(candidate.first_shell_distance_a, 4)} Å\nMSE {_number(candidate.roundtrip_mse)}")


class CandidateView(QFrame):
    """One candidate cluster in a small GL view with its caption.

    Signals:
        clicked(): the view was clicked (on an atom or beside the cluster).
    """

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("candidateView")
        self.view = AtomGLView(self)
        self.view.setBackgroundColor((255, 255, 255, 255))
        self.view.opts["fov"] = 35
        self.view.setMinimumSize(90, 110)  # three fit the dock column beside the spectra
        self.caption = QLabel("", self)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)
        self.atoms = SphereImpostors(glOptions="opaque")
        self.absorber = SphereImpostors(glOptions=ABSORBER_GL_OPTIONS)
        self.absorber.setDepthValue(1)
        self.bonds = gl.GLLinePlotItem(mode="lines", width=2.5, antialias=True, glOptions="opaque")
        for item in (self.atoms, self.bonds, self.absorber):
            item.setVisible(False)
            self.view.addItem(item)
        self.geometry: SceneGeometry | None = None
        self.selected = False
        self.set_selected(False)
        self.view.atomClicked.connect(lambda *_args: self.clicked.emit())

    def set_candidate(self, rank: int, candidate: Any | None) -> None:
        """Show ``candidate`` (a :class:`~model_core.inverse.api.Candidate`, absorber first) as
        number ``rank``; None empties the view."""
        if candidate is None:
            self.geometry = self.view.geometry_ = None
            for item in (self.atoms, self.bonds, self.absorber):
                item.setVisible(False)
            self.caption.setText("")
            self.setToolTip("")
            return
        geometry = SceneGeometry.build(candidate.structure())
        self.geometry = self.view.geometry_ = geometry
        self.atoms.set_spheres(geometry.positions, geometry.radii, geometry.colors)
        self.atoms.setVisible(True)
        absorber = geometry.atom_index == 0
        self.absorber.set_spheres(geometry.positions[absorber], geometry.radii[absorber] * ABSORBER_SCALE,
                                  np.tile(np.array([ABSORBER_COLOR], dtype=np.float32), (int(absorber.sum()), 1)))
        self.absorber.setVisible(True)
        if len(geometry.bonds):
            pos, color = bond_segments(geometry.positions, geometry.bonds, geometry.colors)
            self.bonds.setData(pos=pos, color=color)
        self.bonds.setVisible(bool(len(geometry.bonds)))
        self.caption.setText(candidate_caption(rank, candidate))
        neighbours = " ".join(f"{k}{v}" for k, v in candidate.neighbours.items())
        self.setToolTip(f"#{rank} {candidate.method}: first shell {neighbours or '—'}")
        fit_camera(self.view, geometry)

    def set_selected(self, selected: bool) -> None:
        self.selected = bool(selected)
        self.setStyleSheet(SELECTED_STYLE if selected else UNSELECTED_STYLE)


class CandidateGallery(QWidget):
    """The best :data:`N_VIEWS` candidates side by side; the one selected in the table framed.

    Signals:
        candidateClicked(int): the row (rank - 1) of the candidate whose view was clicked.
    """

    candidateClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, n_views: int = N_VIEWS) -> None:
        super().__init__(parent)
        self.views = [CandidateView(self) for _ in range(n_views)]
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for row, view in enumerate(self.views):
            layout.addWidget(view, 1)
            view.clicked.connect(lambda row=row: self.candidateClicked.emit(row))
        self.show_candidates(())

    def show_candidates(self, candidates: Sequence[Any]) -> None:
        """Show the first candidates (best first); views without one are emptied and hidden, and
        the gallery without any."""
        self.setVisible(bool(len(candidates)))
        for row, view in enumerate(self.views):
            candidate = candidates[row] if row < len(candidates) else None
            view.set_candidate(row + 1, candidate)
            view.setVisible(candidate is not None)
        self.set_selected(-1)

    def set_selected(self, row: int) -> None:
        """Frame the view of table row ``row`` (none when it is not among the views)."""
        for k, view in enumerate(self.views):
            view.set_selected(k == row)
