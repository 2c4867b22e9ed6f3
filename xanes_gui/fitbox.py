"""The comparison panel's fit: one button fitting shift, broadening and scale, and its result.

The fit itself is :func:`model_core.interpret.fit.fit_comparison` (free shift, "free
alignment") or a fit bounded around the element's calibration, run by
:meth:`xanes_gui.state.Interpret.fit_current`; this box only shows the result.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout

from xanes_gui.state import AppState

#: Parameters shown, with their labels and units.
PARAMETER_LABELS = (("shift_ev", "shift", "eV"), ("gaussian_fwhm_ev", "Gaussian FWHM", "eV"),
                    ("lorentzian_fwhm_ev", "Lorentzian FWHM", "eV"), ("scale", "scale", ""),
                    ("background_offset", "background", ""), ("background_slope", "background slope", "/eV"))
METRIC_LABELS = (("mse", "MSE"), ("pearson_r", "r(μ)"), ("pearson_r_deriv", "r(dμ/dE)"))


def value_with_error(value: float, stderr: float, unit: str = "") -> str:
    """``1.23 ± 0.04 eV`` (without the error when it is not finite)."""
    text = f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.3f}"
    if math.isfinite(stderr):
        text += f" ± {stderr:.2g}"
    return f"{text} {unit}".strip()


def metrics_line(before: Mapping[str, float], after: Mapping[str, float]) -> str:
    """One line per metric: ``MSE: 0.012 → 0.003``."""
    return "<br>".join(f"{label}: {before.get(key, math.nan):.4g} → {after.get(key, math.nan):.4g}"
                       for key, label in METRIC_LABELS)


class FitBox(QGroupBox):
    """"Fit shift, broadening, scale" and the fitted parameters ± standard errors, metrics before → after."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__("Fit", parent)
        self.interpret = state.interpret
        self.fit_button = QPushButton("Fit shift, broadening, scale", self)
        self.fit_button.setToolTip("Least-squares fit of the shown prediction to the current measured spectrum "
                                   "over the comparison window; the shift is free unless the element is "
                                   "calibrated (then bounded around the calibration)")
        self.result_label = QLabel("—", self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.fit_button)
        layout.addWidget(self.result_label)
        self.fit_button.clicked.connect(self.interpret.fit_current)
        self.interpret.fitReady.connect(self._show)
        self.interpret.runningChanged.connect(self._on_running)

    def _on_running(self, kind: str, running: bool) -> None:
        if kind == "fit":
            self.fit_button.setEnabled(not running)
            if running:
                self.result_label.setText("Fitting…")
            elif self.result_label.text() == "Fitting…":  # failed or cancelled: the message says why
                self.result_label.setText("—")

    def _show(self, fit: Any) -> None:
        lines = [f"<b>{self.interpret.fit_label()}</b>"]
        for key, label, unit in PARAMETER_LABELS:
            if key in fit.parameters:
                fixed = " (fixed)" if key in fit.fixed else ""
                lines.append(f"{label}: {value_with_error(fit.parameters[key], fit.stderr[key], unit)}{fixed}")
        lines.append(metrics_line(fit.metrics_before, fit.metrics_after))
        if not fit.success:
            lines.append(f"<i>not converged: {fit.message}</i>")
        self.result_label.setText("<br>".join(lines))

    def result_text(self) -> str:
        return self.result_label.text()
