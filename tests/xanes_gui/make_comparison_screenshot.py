"""Make docs/screenshots/comparison.png: Cu metal predicted by the shipped model beside a Cu metal measurement.

Run under a display with OpenGL (e.g. Xvfb):
    python -m tests.xanes_gui.make_comparison_screenshot [OUT.png]

Everything is real: resources/structures/Cu.cif (fcc copper) is predicted
with the shipped cu-k-feff ensemble, and the measured spectrum of the same
phase (../shared/data/measured/Cu/cu_metal_rt.xdi, or $XANES_SHARED) is read and
normalized with larch, then aligned by dmu/dE cross-correlation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def measured_file() -> Path:
    shared = Path(os.environ.get("XANES_SHARED") or REPO.parent / "shared")
    return shared / "data" / "measured" / "Cu" / "cu_metal_rt.xdi"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else REPO / "docs" / "screenshots" / "comparison.png"
    from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication([])
    import shiboken6

    from tests.xanes_gui.fakes import write_two_columns
    from xanes_gui.backend import default_backend
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    state = AppState(default_backend())
    settings = QSettings(str(out.with_suffix(".ini")), QSettings.Format.IniFormat)
    window = MainWindow(state, settings=settings)
    window.resize(1600, 950)
    window.show()

    def wait_for(signal, timeout_ms: int = 60000) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    state.start_engine()
    wait_for(state.predictions.engineReady)
    state.structures.open_files([str(REPO / "resources" / "structures" / "Cu.cif")])
    wait_for(state.structures.fileOpened)
    doc = state.structures.current
    state.structures.set_selection(doc.id, [0, 1, 2, 3])
    state.predictions.predict()
    wait_for(state.predictions.predictionReady)
    path = measured_file()
    if not path.is_file():
        import tempfile

        path = Path(write_two_columns(Path(tempfile.mkdtemp()) / "synthetic_cu.dat"))
    state.measured.import_files([str(path)])
    wait_for(state.measured.measuredNormalized)
    state.measured.set_align(window=(8960.0, 9040.0))
    state.measured.auto_align()
    wait_for(state.measured.alignChanged)
    wait_for(state.measured.comparisonsReady, 5000)
    window.measured_dock.raise_()
    window.plots.show_crosshair(8990.0)
    settle = QEventLoop()
    QTimer.singleShot(500, settle.quit)  # let the deferred dock layout and GL paint finish
    settle.exec()
    out.parent.mkdir(parents=True, exist_ok=True)
    image = window.grab()
    ok = image.save(str(out))
    print(out, ok, image.width(), image.height(), f"shift {state.measured.align.shift_ev:+.2f} eV")
    state.shutdown()
    shiboken6.delete(window)
    out.with_suffix(".ini").unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
