"""xanes-gui: the desktop app (PySide6 + pyqtgraph) for predicting and inspecting XANES spectra."""
