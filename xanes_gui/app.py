"""Entry point of ``xanes-gui [FILES...]``.

The window must appear at once, so nothing heavy is imported here: torch,
e3nn, torch_geometric, pymatgen and larch are only imported by workers
(the start-up worker imports the inference stack and lists models and devices;
file readers import pymatgen/ASE when they first read a file).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xanes-gui", description="Predict and inspect XANES spectra.")
    parser.add_argument("files", nargs="*",
                        help="files to open: structures (CIF, POSCAR, XYZ, feff.inp, PDB, ...) and measured "
                             "spectra (XDI, Athena .prj, column files, ...), sorted as when dropped on the window")
    parser.add_argument("--session", help="restore a saved session (JSON)")
    parser.add_argument("--no-3d", action="store_true", help="do not create the OpenGL view")
    parser.add_argument("--restore", action="store_true",
                        help="restore the most recent autosave left by an instance that did not exit cleanly")
    return parser.parse_args(list(argv))


def schedule_startup(state, window, args: argparse.Namespace) -> None:
    """Queue the start-up work for the event loop, so the window paints first.

    The engine starts; the command line's files are sorted into structures and
    measured spectra exactly as files dropped on the window are
    (``MainWindow.open_any``); a ``--session`` is restored.
    """
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, state.start_engine)
    if args.files:
        QTimer.singleShot(0, lambda: window.open_any(args.files))
    if args.session:
        QTimer.singleShot(0, lambda: window.load_session(args.session))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app; returns the exit status."""
    args = _parse(sys.argv[1:] if argv is None else argv)

    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtWidgets import QApplication

    # Needed before the QApplication exists so a GL widget in a dock can be
    # floated/re-docked without losing its context.
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "xanes-gui"])
    app.setApplicationName("xanes-gui")
    app.setOrganizationName("xanes-gui")

    from xanes_gui import autosave
    from xanes_gui.mainwindow import MainWindow
    from xanes_gui.state import AppState

    state = AppState()
    window = MainWindow(state, enable_3d=False if args.no_3d else None, defer_3d=True)
    autosaver = autosave.install(state, window, restore=args.restore)
    window.show()
    schedule_startup(state, window, args)
    status = app.exec()
    autosaver.close()
    state.shutdown()
    # Delete the window (and its OpenGL items) while the QApplication and the
    # GL context still exist; left to interpreter shutdown, the destruction
    # order is arbitrary and Qt can crash on exit.
    import shiboken6

    shiboken6.delete(window)
    return status


if __name__ == "__main__":
    sys.exit(main())
