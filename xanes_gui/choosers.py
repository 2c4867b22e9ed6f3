"""The non-modal choosers a measured file may need before it can be read: the columns of a
plain column file, the groups of an Athena project; and :class:`ImportChoosers`, which
shows them when the measured-spectra part asks and remembers column choices in the settings.
"""

from __future__ import annotations

import json
from typing import Sequence

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QListWidget, QListWidgetItem, QVBoxLayout, QWidget)

from model_core.spectra.measured import CHANNEL_MODES, ChannelChoice
from xanes_gui.comparison import choice_from_dict, choice_to_dict, column_signature
from xanes_gui.state import MeasuredSpectra

#: QSettings key of the remembered column choices (JSON: column signature -> choice).
COLUMN_MEMORY_KEY = "measuredColumnChoices"


class ImportChoosers(QObject):
    """Shows the column and group choosers the measured-spectra part asks for, and imports the choice.

    Column choices are remembered per column names, in the part's ``column_memory``
    and in ``settings`` (loaded here at start).

    Args:
        measured: the measured-spectra part.
        settings: where column choices are kept between runs.
        parent: the window the choosers belong to.

    Attributes:
        column_chooser: the open column chooser (None when none is open).
        group_chooser: the open Athena group chooser (None when none is open).
    """

    def __init__(self, measured: MeasuredSpectra, settings: QSettings, parent: QWidget) -> None:
        super().__init__(parent)
        self._measured = measured
        self._settings = settings
        self._window = parent
        self.column_chooser: ColumnChooser | None = None
        self.group_chooser: GroupChooser | None = None
        measured.column_memory.update(self._load_column_memory())
        measured.measuredNeedsColumns.connect(self.show_column_chooser)
        measured.measuredNeedsGroup.connect(self.show_group_chooser)

    def _load_column_memory(self) -> dict[str, ChannelChoice]:
        try:
            data = json.loads(str(self._settings.value(COLUMN_MEMORY_KEY, "{}") or "{}"))
        except (TypeError, ValueError):
            return {}
        memory = {}
        for key, value in (data.items() if isinstance(data, dict) else ()):
            choice = choice_from_dict(value)
            if choice is not None:
                memory[str(key)] = choice
        return memory

    def _save_column_memory(self) -> None:
        data = {key: choice_to_dict(choice) for key, choice in self._measured.column_memory.items()}
        self._settings.setValue(COLUMN_MEMORY_KEY, json.dumps(data))

    def show_column_chooser(self, path: str, names: list, message: str = "") -> "ColumnChooser":
        """Ask (non-modally, with a live preview) which columns make the spectrum; remembered per column names."""
        from xanes_gui.importdialog import ImportDialog  # it builds on ColumnChooser below

        if self.column_chooser is not None:
            self.column_chooser.close()
        initial = self._measured.column_memory.get(column_signature(names))
        chooser = ImportDialog(path, names, message, initial, self._window)
        chooser.chosen.connect(self._on_columns_chosen)
        chooser.destroyed.connect(lambda *_: setattr(self, "column_chooser", None))
        self.column_chooser = chooser
        chooser.show()
        return chooser

    def _on_columns_chosen(self, path: str, names: list, choice: ChannelChoice) -> None:
        self._measured.remember_columns(names, choice)
        self._save_column_memory()
        self._measured.import_files([path], columns=choice)

    def show_group_chooser(self, path: str, groups: list) -> "GroupChooser":
        """Ask (non-modally) which Athena groups to import."""
        if self.group_chooser is not None:
            self.group_chooser.close()
        chooser = GroupChooser(path, groups, self._window)
        chooser.chosen.connect(lambda p, names: self._measured.import_athena_groups(p, names))
        chooser.destroyed.connect(lambda *_: setattr(self, "group_chooser", None))
        self.group_chooser = chooser
        chooser.show()
        return chooser


class ColumnChooser(QDialog):
    """Non-modal chooser of energy / numerator / denominator columns and the channel mode.

    Signals:
        chosen(str, list, object): path, column names and the ChannelChoice.
    """

    chosen = Signal(str, list, object)

    def __init__(self, path: str, names: Sequence[str], message: str = "",
                 initial: ChannelChoice | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("Choose columns")
        self.path = str(path)
        self.names = [str(n) for n in names]
        self.energy_combo = QComboBox(self)
        self.numerator_combo = QComboBox(self)
        self.denominator_combo = QComboBox(self)
        self.mode_combo = QComboBox(self)
        for combo in (self.energy_combo, self.numerator_combo):
            combo.addItems(self.names)
        self.denominator_combo.addItem("(none)", None)
        for name in self.names:
            self.denominator_combo.addItem(name, name)
        labels = {"mu": "μ (column is absorption)", "transmission": "transmission −ln(num/den)",
                  "fluorescence": "fluorescence num/den"}
        for mode in CHANNEL_MODES:
            self.mode_combo.addItem(labels.get(mode, mode), mode)
        info = QLabel(f"<b>{self.path}</b><br>{message}" if message else f"<b>{self.path}</b>", self)
        info.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Energy:", self.energy_combo)
        form.addRow("Mode:", self.mode_combo)
        form.addRow("Numerator (μ, It or If):", self.numerator_combo)
        form.addRow("Denominator (I0):", self.denominator_combo)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(info)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        self.set_choice(initial or self._guess())

    def _guess(self) -> ChannelChoice:
        # Energy first, then the last two other columns as I0 and the signal:
        # the usual beamline order is energy, I0, It (or If).
        energy = self.names[0]
        others = self.names[1:]
        if len(others) >= 2:
            return ChannelChoice(energy, others[1], others[0], "transmission")
        return ChannelChoice(energy, others[0] if others else energy, None, "mu")

    def set_choice(self, choice: ChannelChoice) -> None:
        """Show a choice (names not in the file are left as they are)."""
        if choice.energy in self.names:
            self.energy_combo.setCurrentText(choice.energy)
        if choice.numerator in self.names:
            self.numerator_combo.setCurrentText(choice.numerator)
        self.denominator_combo.setCurrentIndex(max(0, self.denominator_combo.findData(choice.denominator)))
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(choice.mode)))
        self._on_mode()

    def _on_mode(self, *_args) -> None:
        self.denominator_combo.setEnabled(self.mode_combo.currentData() != "mu")

    def choice(self) -> ChannelChoice:
        mode = str(self.mode_combo.currentData())
        denominator = self.denominator_combo.currentData() if mode != "mu" else None
        return ChannelChoice(self.energy_combo.currentText(), self.numerator_combo.currentText(), denominator, mode)

    def accept(self) -> None:  # noqa: D401 - Qt override
        self.chosen.emit(self.path, list(self.names), self.choice())
        super().accept()


class GroupChooser(QDialog):
    """Non-modal chooser of one or several groups of an Athena project.

    Signals:
        chosen(str, list): path and the checked group names.
    """

    chosen = Signal(str, list)

    def __init__(self, path: str, groups: Sequence[str], parent=None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("Choose Athena groups")
        self.path = str(path)
        self.list = QListWidget(self)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for k, name in enumerate(groups):
            item = QListWidgetItem(str(name))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if k == 0 else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        info = QLabel(f"<b>{self.path}</b><br>Check the groups to import:", self)
        info.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(info)
        layout.addWidget(self.list)
        layout.addWidget(self.buttons)

    def set_checked(self, names: Sequence[str]) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def checked(self) -> list[str]:
        return [self.list.item(r).text() for r in range(self.list.count())
                if self.list.item(r).checkState() == Qt.CheckState.Checked]

    def accept(self) -> None:  # noqa: D401 - Qt override
        self.chosen.emit(self.path, self.checked())
        super().accept()
