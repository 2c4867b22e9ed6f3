"""Make docs/screenshots/main_window.png: the main window with a structure and (fake) predicted spectra.

Run under a display with OpenGL (e.g. Xvfb):  python -m tests.xanes_gui.make_screenshot [OUT.png]
Structures are read and analysed by the real model_core; only the model is the
test fake (its spectra are synthetic, as the window's UNTRAINED-style banner
would say for a real untrained model).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else REPO / "docs" / "screenshots" / "main_window.png"
    from PySide6.QtCore import QCoreApplication, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication([])
    import shiboken6

    from tests.xanes_gui.fakes import FakePredictor, fake_backend
    from xanes_gui.backend import default_backend
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    predictor = FakePredictor(name="cu-k-demo", trained=True)
    fake = fake_backend(predictor)
    real = default_backend()
    backend = replace(fake, read_structure=real.read_structure, analyze_symmetry=real.analyze_symmetry,
                      coordination_info=real.coordination_info)
    state = AppState(backend)
    window = MainWindow(state)
    window.resize(1600, 950)
    window.show()

    def wait_for(signal) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(30000, loop.quit)
        loop.exec()

    state.start_engine()
    wait_for(state.predictions.engineReady)
    state.structures.open_files([str(REPO / "resources" / "structures" / "CuO.cif")])
    wait_for(state.structures.fileOpened)
    state.view.set_view(supercell=(2, 2, 2))
    doc = state.structures.current
    # Two Cu atoms; in tenorite they are equivalent, so one representative (weight 2) is predicted.
    state.structures.set_selection(doc.id, [0, 1])
    state.predictions.predict()
    wait_for(state.predictions.predictionReady)
    window.plots.show_crosshair(6.0)
    settle = QEventLoop()
    QTimer.singleShot(300, settle.quit)  # let the deferred dock layout and GL paint finish
    settle.exec()
    out.parent.mkdir(parents=True, exist_ok=True)
    image = window.grab()
    ok = image.save(str(out))
    print(out, ok, image.width(), image.height())
    state.shutdown()
    shiboken6.delete(window)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
