"""Refine dock: sliders for the local structure and the fit parameters, with a live prediction.

Moving a slider asks :meth:`xanes_gui.state.Interpret.preview` for the model's spectrum
of the distorted structure (:func:`model_core.interpret.refine.predict_distorted`; only
the latest request is answered, so dragging never waits on the model); "Refine" runs
:func:`model_core.interpret.refine.refine_structure` in a worker and sets the sliders
to its result.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout,
                               QWidget)

from xanes_gui.fitbox import metrics_line, value_with_error
from xanes_gui.state import AppState

#: Shells offered (as many as refine_structure refines by default).
MAX_SHELLS = 3
#: name -> (label, lowest, highest, step, start).
RANGES = {
    **{f"shell_{k}_scale": (f"shell {k} scale", 0.8, 1.2, 0.001, 1.0) for k in range(1, MAX_SHELLS + 1)},
    "strain": ("strain", -0.1, 0.1, 0.0005, 0.0),
    "shift_ev": ("shift (eV)", -15.0, 15.0, 0.05, 0.0),  # recentred on the calibration
    "gaussian_fwhm_ev": ("broadening FWHM (eV)", 0.0, 10.0, 0.05, 1.5),
    "scale": ("scale", 0.3, 2.0, 0.005, 1.0),
}


class ParameterSlider:
    """One labelled slider of a float parameter (an int QSlider in steps of ``step``)."""

    def __init__(self, name: str, parent: QWidget) -> None:
        self.name = name
        label, self.lo, self.hi, self.step, self.start = RANGES[name]
        self.label = QLabel(label, parent)
        self.slider = QSlider(Qt.Orientation.Horizontal, parent)
        self.slider.setRange(0, round((self.hi - self.lo) / self.step))
        self.value_label = QLabel("", parent)
        self.value_label.setMinimumWidth(60)
        self.set_value(self.start)
        self.slider.valueChanged.connect(lambda *_: self.value_label.setText(f"{self.value():.4g}"))

    def value(self) -> float:
        return self.lo + self.slider.value() * self.step

    def set_value(self, value: float, quiet: bool = False) -> None:
        """Move the slider (clipped to its range); ``quiet`` moves it without a live prediction."""
        position = round((min(max(float(value), self.lo), self.hi) - self.lo) / self.step)
        blocked = self.slider.blockSignals(quiet)
        self.slider.setValue(position)
        self.slider.blockSignals(blocked)
        self.value_label.setText(f"{self.value():.4g}")

    def recentre(self, centre: float) -> None:
        """Keep the range's width and put its middle at ``centre`` (the shift follows the calibration)."""
        half = 0.5 * (self.hi - self.lo)
        self.lo, self.hi = centre - half, centre + half

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.label, self.slider, self.value_label):
            widget.setEnabled(enabled)


class RefinePanel(QWidget):
    """Shell scales, strain, shift, broadening and scale sliders; Refine with its result."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.interpret = interpret = state.interpret
        self.sliders = {name: ParameterSlider(name, self) for name in RANGES}
        grid = QGridLayout()
        for row, slider in enumerate(self.sliders.values()):
            grid.addWidget(slider.label, row, 0)
            grid.addWidget(slider.slider, row, 1)
            grid.addWidget(slider.value_label, row, 2)
        self.shells_check = QCheckBox("shells", self)
        self.shells_check.setChecked(True)
        self.strain_check = QCheckBox("strain (crystals)", self)
        self.refine_button = QPushButton("Refine", self)
        self.refine_button.setToolTip("Refine the checked parameters (with shift, broadening and scale) against "
                                      "the current measured spectrum through the model")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.reset_button = QPushButton("Reset", self)
        buttons = QHBoxLayout()
        for widget in (self.shells_check, self.strain_check, self.refine_button, self.cancel_button,
                       self.reset_button):
            buttons.addWidget(widget)
        self.shells_label = QLabel("", self)
        self.shells_label.setWordWrap(True)
        self.result_label = QLabel("Predict the selected site(s) and import a measured spectrum to refine.", self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addWidget(self.shells_label)
        layout.addLayout(buttons)
        layout.addWidget(self.result_label)
        layout.addStretch(1)

        for slider in self.sliders.values():
            slider.slider.valueChanged.connect(self.request_preview)
        self.refine_button.clicked.connect(self.refine)
        self.cancel_button.clicked.connect(lambda: interpret.cancel("refine"))
        self.reset_button.clicked.connect(self.reset)
        interpret.previewReady.connect(self._on_preview)
        interpret.refineReady.connect(self._on_refined)
        interpret.runningChanged.connect(self._on_running)
        interpret.calibrationChanged.connect(lambda *_: self.reset(preview=False))
        state.structures.currentStructureChanged.connect(self._on_structure)
        self._on_structure()

    def values(self) -> dict[str, float]:
        return {name: slider.value() for name, slider in self.sliders.items()}

    def _on_structure(self, *_args) -> None:
        doc = self.state.structures.current
        periodic = doc is not None and doc.structure.is_periodic
        self.strain_check.setEnabled(periodic)
        self.strain_check.setChecked(self.strain_check.isChecked() and periodic)
        self.sliders["strain"].set_enabled(periodic)
        self.reset(preview=False)

    def reset(self, *_args, preview: bool = True) -> None:
        """Sliders back to the undistorted structure, the calibration's shift (else the comparison's)
        and default widths."""
        calibration = self.interpret.calibration()
        shift = calibration.shift_ev if calibration is not None else self.state.measured.align.shift_ev
        self.sliders["shift_ev"].recentre(shift)
        for name, slider in self.sliders.items():
            start = shift if name == "shift_ev" else slider.start
            slider.set_value(start, quiet=True)
        if preview:
            self.request_preview()

    def request_preview(self, *_args) -> None:
        """Ask for the live prediction at the sliders' values (when there is a prediction to distort)."""
        if self.state.predictions.shown_prediction() is None:
            return
        v = self.values()
        self.interpret.preview([v[f"shell_{k}_scale"] for k in range(1, MAX_SHELLS + 1)],
                               v["strain"] if self.sliders["strain"].slider.isEnabled() else 0.0,
                               v["shift_ev"], v["gaussian_fwhm_ev"], v["scale"])

    def _on_preview(self, result: tuple[Any, Sequence[Any]]) -> None:
        _overlay, shells = result
        present = {int(s["shell"]) for s in shells}
        for k in range(1, MAX_SHELLS + 1):
            self.sliders[f"shell_{k}_scale"].set_enabled(k in present)
        self.shells_label.setText("; ".join(f"shell {int(s['shell'])}: {int(s['n_atoms'])} atoms, "
                                            f"{s['start_a']:.3f} → {s['distance_a']:.3f} Å" for s in shells))

    def refine(self) -> None:
        params = [p for p, check in (("shells", self.shells_check), ("strain", self.strain_check))
                  if check.isChecked() and check.isEnabled()]
        if not params:
            self.state.messages.error("Check shells and/or strain to refine")
            return
        self.interpret.refine(params)

    def _on_running(self, kind: str, running: bool) -> None:
        if kind == "refine":
            self.refine_button.setEnabled(not running)
            self.cancel_button.setEnabled(running)
            if running:
                self.result_label.setText("Refining…")
            elif self.result_label.text() == "Refining…":  # failed or cancelled: the message says why
                self.result_label.setText("—")

    def _on_refined(self, result: Any) -> None:
        for name, value in result.parameters.items():
            if name in self.sliders:
                self.sliders[name].set_value(value, quiet=True)
        first = result.first_shell
        lines = [f"{name}: {value_with_error(value, result.stderr.get(name, math.nan))}"
                 for name, value in result.parameters.items()]
        distance = value_with_error(first["distance_a"], first["stderr_a"], "Å")
        lines.append(f"first shell: {first['start_a']:.3f} → {distance}")
        lines.append(metrics_line(result.metrics_start, result.metrics_end))
        self.result_label.setText("<br>".join(lines))
        self.shells_label.setText("; ".join(f"shell {int(s['shell'])}: {int(s['n_atoms'])} atoms, "
                                            f"{s['start_a']:.3f} → {s['distance_a']:.3f} Å" for s in result.shells))

    def result_text(self) -> str:
        return self.result_label.text()
