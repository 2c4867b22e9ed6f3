"""Seconds from a fresh interpreter to the main window on screen (the science stack not yet imported).

    python benchmarks/startup.py [--repeat 5]

Each run is a new Python process that builds ``MainWindow`` as ``xanes_gui.app.main``
does (3-D view deferred) and shows it; prints each time and the median. The target is
1.5 s on an idle laptop; ``tests/xanes_gui/test_startup.py`` checks only that nothing
heavy is imported on the way, since timing inside the test suite depends on the load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from xanes_gui.mainwindow import MainWindow
from xanes_gui.state import AppState
window = MainWindow(AppState(), defer_3d=True)
window.show()
app.processEvents()
print(json.dumps({"elapsed": time.perf_counter() - t0}))
import shiboken6
shiboken6.delete(window)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        times.append(json.loads(out.strip().splitlines()[-1])["elapsed"])
        print(f"window shown after {times[-1]:.2f} s")
    print(f"median {statistics.median(times):.2f} s over {len(times)} starts")


if __name__ == "__main__":
    main()
