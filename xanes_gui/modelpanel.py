"""Model and prediction panel: model choice (automatic by element or by hand),
model card, untrained/no-model warning, device, Predict with progress and Cancel.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QTextBrowser, QVBoxLayout, QWidget)

from xanes_gui.state import AUTO_MODEL, AppState

UNTRAINED_WARNING = "UNTRAINED — predictions are not meaningful"


class ModelCardDialog(QDialog):
    """Non-modal window showing a model card (markdown)."""

    def __init__(self, title: str, card: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {title}")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(560, 480)
        self.browser = QTextBrowser(self)
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(card or "_This model has no model card._")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)


class ModelPanel(QWidget):
    """Choose the model and device and run predictions.

    Signals:
        simulateRequested(): "Simulate with FEFF10…" was pressed.
    """

    simulateRequested = Signal()

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.predictions, self.structures = state.predictions, state.structures
        self.model_combo = QComboBox(self)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.card_button = QPushButton("Model card", self)
        self.device_combo = QComboBox(self)
        self.absorber_label = QLabel("—", self)
        self.warning_label = QLabel(self)
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("QLabel { color: white; background: #c0392b; padding: 3px; font-weight: bold; }")
        self.warning_label.setVisible(False)
        self.predict_button = QPushButton("Predict", self)
        self.predict_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.simulate_button = QPushButton("Simulate with FEFF10…", self)
        self.simulate_button.setToolTip("First-principles XANES of the selected sites with FEFF10 "
                                        "(also for elements without an ML model)")
        self._card_dialog: ModelCardDialog | None = None

        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.card_button)
        form = QFormLayout()
        form.addRow("Absorber:", self.absorber_label)
        form.addRow("Model:", model_row)
        form.addRow("Device:", self.device_combo)
        run_row = QHBoxLayout()
        run_row.addWidget(self.predict_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.warning_label)
        layout.addLayout(run_row)
        layout.addWidget(self.simulate_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)

        self._updating = False
        self.model_combo.currentIndexChanged.connect(self._on_model_combo)
        self.device_combo.currentIndexChanged.connect(self._on_device_combo)
        self.card_button.clicked.connect(self.show_card)
        self.predict_button.clicked.connect(state.predictions.predict)
        self.cancel_button.clicked.connect(state.predictions.cancel_prediction)
        self.simulate_button.clicked.connect(self.simulateRequested)
        state.predictions.modelsChanged.connect(self._fill_models)
        state.predictions.modelChanged.connect(self._on_model_changed)
        state.predictions.devicesChanged.connect(self._fill_devices)
        state.predictions.deviceChanged.connect(self._on_device_changed)
        state.structures.selectionChanged.connect(lambda *_: self._update_labels())
        state.structures.currentStructureChanged.connect(lambda *_: self._update_labels())
        state.predictions.predictionStarted.connect(self._on_started)
        state.predictions.predictionProgress.connect(self._on_progress)
        state.predictions.predictionFinished.connect(self._on_finished)
        self._fill_models()
        self._fill_devices()

    # ----------------------------------------------------------------- models
    def _fill_models(self) -> None:
        self._updating = True
        try:
            self.model_combo.clear()
            self.model_combo.addItem("Auto (by absorber element)", AUTO_MODEL)
            for model in self.predictions.models:
                self.model_combo.addItem(model.display_name, model.name)
            index = self.model_combo.findData(self.predictions.model_override)
            self.model_combo.setCurrentIndex(max(index, 0))
        finally:
            self._updating = False
        self._update_labels()

    def _on_model_combo(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.predictions.set_model_override(self.model_combo.itemData(index) or AUTO_MODEL)

    def _on_model_changed(self, _name: str) -> None:
        self._updating = True
        try:
            index = self.model_combo.findData(self.predictions.model_override)
            self.model_combo.setCurrentIndex(max(index, 0))
        finally:
            self._updating = False
        self._update_labels()

    def _update_labels(self) -> None:
        doc = self.structures.current
        element = doc.selected_element() if doc else None
        model = self.predictions.model()
        auto = " (auto)" if not self.predictions.model_override and model else ""
        self.absorber_label.setText(
            f"{element} · {len(doc.selection)} atom(s) selected" if doc and element else "select atoms")
        if model is not None:
            self.model_combo.setToolTip(f"{model.display_name}{auto}")
        warning = ""
        if doc is not None and element and model is None:
            warning = (f"No ML model for {element} — you can still simulate with FEFF10 "
                       "(or choose a model by hand)") if self.predictions.engine_ready else "Loading model engine…"
        elif model is not None and not model.trained:
            warning = f"{model.name}: {UNTRAINED_WARNING}"
        elif model is not None and element and element != model.element:
            warning = f"Model {model.name} predicts {model.element}; selected atoms are {element}"
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))
        self.card_button.setEnabled(model is not None)
        self.predict_button.setEnabled(model is not None and doc is not None and not self.predictions.predicting)
        self.simulate_button.setEnabled(doc is not None and len(doc.selection) > 0)

    def show_card(self) -> ModelCardDialog | None:
        """Open the model card of the current model in a non-modal window."""
        model = self.predictions.model()
        if model is None:
            return None
        if self._card_dialog is not None:
            self._card_dialog.close()
        self._card_dialog = ModelCardDialog(model.display_name, model.card, self)
        self._card_dialog.destroyed.connect(lambda *_: setattr(self, "_card_dialog", None))
        self._card_dialog.show()
        return self._card_dialog

    # ---------------------------------------------------------------- devices
    def _fill_devices(self) -> None:
        self._updating = True
        try:
            self.device_combo.clear()
            devices = self.predictions.devices or [("auto", "detecting…")]
            for device, name in devices:
                label = name if name.lower() == device.lower() else f"{name} ({device})"
                self.device_combo.addItem(label, device)
            self.device_combo.setCurrentIndex(max(self.device_combo.findData(self.predictions.device), 0))
            self.device_combo.setEnabled(bool(self.predictions.devices))
        finally:
            self._updating = False

    def _on_device_combo(self, index: int) -> None:
        if not self._updating and index >= 0 and self.predictions.devices:
            self.predictions.set_device(self.device_combo.itemData(index))

    def _on_device_changed(self, device: str) -> None:
        self._updating = True
        try:
            self.device_combo.setCurrentIndex(max(self.device_combo.findData(device), 0))
        finally:
            self._updating = False

    # ------------------------------------------------------------- prediction
    def _on_started(self) -> None:
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the first report (model loading)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_finished(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._update_labels()
