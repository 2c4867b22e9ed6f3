"""Start-up: the window is built without importing the heavy science stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "e3nn", "torch_geometric", "larch", "pymatgen", "ase")

SCRIPT = r"""
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from xanes_gui.mainwindow import MainWindow
from xanes_gui.state import AppState
state = AppState()
window = MainWindow(state, defer_3d=True)   # as xanes_gui.app.main builds it
window.show()
app.processEvents()
for _ in range(3):
    app.processEvents()   # the deferred 3-D view is built now (when this display has OpenGL)
heavy = [m for m in %r if m in sys.modules]
print(json.dumps({"heavy": heavy, "title": window.windowTitle(),
                  "status": window.engine_label.text(), "gl": window.structure_view is not None}))
import shiboken6
shiboken6.delete(window)   # as xanes_gui.app.main does on exit
"""


def test_main_window_imports_no_science_stack():
    # Same display as the other GUI tests (Xvfb when available, else offscreen).
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", SCRIPT % (HEAVY,)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"imported at start-up: {report['heavy']}"
    assert report["status"] == "Loading model engine…"
    # How fast is measured by benchmarks/startup.py, not here: a busy runner makes any
    # time bound flaky.


def test_app_main_parses_arguments():
    from xanes_gui.app import _parse

    args = _parse(["a.cif", "b.xyz", "--no-3d"])
    assert args.files == ["a.cif", "b.xyz"] and args.no_3d
