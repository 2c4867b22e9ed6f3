"""Time showing a ~20,000-atom structure in the 3-D view and the frame time while rotating it.

Usage (needs an OpenGL display; on a headless machine run it under Xvfb)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/gui.py
    python benchmarks/gui.py --repeat 15,15,11 --steps 100

Builds FeO rocksalt repeated 14x14x13 (20,384 atoms) with ASE, writes it to a
temporary extended-XYZ file and opens it in the app's main window as the app
does (``AppState.open_files`` on the real readers). Prints:

* ``read``: open_files until the structure is added (reading, symmetry and
  neighbours, in workers: the window stays responsive meanwhile);
* ``first frame``: from then until every panel has been updated (structure
  list, site table, 3-D view, ...) and the 3-D view has rendered a frame;
* ``show``: the sum, i.e. load to first frame;
* the frame time of ``--steps`` orbit steps (each renders one frame with
  ``grabFramebuffer``, which waits for the GPU): median and 95th percentile.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_structure(repeat: tuple[int, int, int], folder: str) -> tuple[str, int]:
    """FeO rocksalt (8-atom cubic cell) repeated, written as extended XYZ; returns (path, atoms)."""
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("FeO", "rocksalt", a=4.33, cubic=True).repeat(repeat)
    path = os.path.join(folder, "feo-big.xyz")
    write(path, atoms, format="extxyz")
    return path, len(atoms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", default="14,14,13", help="repeats of the 8-atom FeO cell (default 20,384 atoms)")
    parser.add_argument("--steps", type=int, default=50, help="orbit steps to time")
    parser.add_argument("--size", default="1600,1000", help="window size in pixels")
    args = parser.parse_args()
    repeat = tuple(int(n) for n in args.repeat.split(","))
    width, height = (int(n) for n in args.size.split(","))

    from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication(["xanes-gui-benchmark"])
    from xanes_gui.mainwindow import gl_available

    if not gl_available():
        print("no OpenGL context on this display (run under xvfb-run)", file=sys.stderr)
        return 2
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    state = AppState()
    # Connected before the window's own slots, so it runs first: the split
    # between the workers' part and the GUI's part of showing the structure.
    added: list[float] = []
    state.structureAdded.connect(lambda *_: added.append(time.perf_counter()))
    window = MainWindow(state, enable_3d=True)
    window.resize(width, height)
    window.show()
    app.processEvents()
    view = window.structure_view
    view.grab_image()  # compile shaders and make the context before timing

    with tempfile.TemporaryDirectory() as folder:
        path, n_atoms = build_structure(repeat, folder)
        loop = QEventLoop()
        state.structureAdded.connect(lambda *_: loop.quit())
        state.fileFailed.connect(lambda p, message: (print(message, file=sys.stderr), loop.exit(1)))
        QTimer.singleShot(600_000, lambda: loop.exit(1))
        start = time.perf_counter()
        state.open_files([path])
        if loop.exec() != 0:
            return 1
        app.processEvents()  # the panels update on structureAdded / currentStructureChanged
        image = view.grab_image()
        shown = time.perf_counter()
    assert not image.isNull() and view.geometry is not None
    print(f"structure: FeO x {repeat}, {n_atoms} atoms, {len(view.geometry.bonds)} bonds drawn; "
          f"3-D view {view.view.width()}x{view.view.height()} on {app.platformName()}")
    print(f"read:        {1000 * (added[0] - start):8.1f} ms")
    print(f"first frame: {1000 * (shown - added[0]):8.1f} ms")
    print(f"show:        {1000 * (shown - start):8.1f} ms")

    frames = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        view.view.orbit(360.0 / args.steps, 0.0)
        app.processEvents()
        view.grab_image()
        frames.append(1000 * (time.perf_counter() - t0))
    print(f"rotate:      median {np.median(frames):.1f} ms, p95 {np.percentile(frames, 95):.1f} ms "
          f"per frame over {args.steps} orbit steps")
    state.shutdown()
    import shiboken6

    shiboken6.delete(window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
