"""GUI test setup: a display for Qt, fake science services, and an app state/window.

Qt can use only one platform per process, chosen before the QApplication
exists, so it is chosen here when pytest loads this file:

* ``QT_QPA_PLATFORM`` already set: respected.
* a ``DISPLAY`` already set: used (real windows and OpenGL).
* an ``Xvfb`` binary: a private virtual X server is started for the session
  (and stopped at the end); OpenGL then works through Mesa (llvmpipe).
* otherwise: ``offscreen``; tests marked ``gl`` skip with a reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_XVFB: subprocess.Popen | None = None


def _start_xvfb() -> str | None:
    """Start Xvfb on a free display; returns ":N" or None."""
    global _XVFB
    binary = shutil.which("Xvfb")
    if binary is None:
        return None
    read_fd, write_fd = os.pipe()
    try:
        # -displayfd: Xvfb picks a free display and writes its number once it
        # accepts connections, so no polling or sleeping is needed.
        _XVFB = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                                  "-nolisten", "tcp", "+extension", "GLX"],
                                 pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
    except OSError:
        return None
    if not number.isdigit():
        _XVFB.kill()
        _XVFB = None
        return None
    return f":{number}"


def pytest_configure(config) -> None:
    from PySide6.QtCore import QCoreApplication, Qt

    # As in xanes_gui.app.main: pyqtgraph compiles each shader once, so every
    # GL view must share one context group (must be set before the QApplication).
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    if os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY"):
        return
    display = _start_xvfb()
    if display:
        os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
    else:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def pytest_unconfigure(config) -> None:
    if _XVFB is not None:
        _XVFB.terminate()
        _XVFB.wait(10)


def _gl_problem() -> str | None:
    """Why an OpenGL context cannot be made here (None when it can)."""
    from PySide6.QtGui import QGuiApplication, QOffscreenSurface, QOpenGLContext

    app = QGuiApplication.instance()
    if app is None:
        return "no QApplication"
    if app.platformName() in ("offscreen", "minimal"):
        return f"Qt platform '{app.platformName()}' has no OpenGL (install xvfb and Mesa: libgl1-mesa-dri)"
    context = QOpenGLContext()
    if not context.create():
        return "could not create an OpenGL context (Mesa missing?)"
    surface = QOffscreenSurface()
    surface.create()
    if not context.makeCurrent(surface):
        return "could not make an OpenGL context current"
    version = context.format().version()
    context.doneCurrent()
    if version < (2, 1):
        return f"OpenGL {version} is too old (need 2.1)"
    return None


@pytest.fixture(scope="session")
def gl_ok(qapp):
    """Skip unless a real OpenGL context can be made."""
    problem = _gl_problem()
    if problem:
        pytest.skip(problem)
    return True


@pytest.fixture
def predictor():
    from tests.xanes_gui.fakes import FakePredictor

    return FakePredictor()


@pytest.fixture
def state(qtbot, predictor):
    """An AppState on the fake backend, engine started (models and devices listed)."""
    from tests.xanes_gui.fakes import fake_backend
    from xanes_gui.state import AppState

    app_state = AppState(fake_backend(predictor))
    with qtbot.waitSignal(app_state.predictions.engineReady, timeout=10000):
        app_state.start_engine()
    yield app_state
    app_state.shutdown()


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, state, settings):
    """The main window without the OpenGL view (widget tests)."""
    from xanes_gui.mainwindow import MainWindow

    win = MainWindow(state, settings=settings, enable_3d=False)
    qtbot.addWidget(win)
    return win
