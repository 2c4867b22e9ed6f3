"""Import preview for column files: choose the channel and see the spectrum before accepting.

:class:`ImportDialog` is the column chooser (same signal and methods as
:class:`~xanes_gui.choosers.ColumnChooser`) with the raw spectrum plotted
live for the choice shown, every guess and repair listed, and further signal
columns that can be ticked to be summed with the chosen one (several
fluorescence channels): the numerator becomes ``"SCA1+SCA2"``, the reader's
notation for a sum. All reading goes through :func:`preview_columns`, the one
place that knows the reader's API.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QListWidget, QListWidgetItem

from model_core.spectra.measured import ChannelChoice
from xanes_gui.choosers import ColumnChooser


@dataclass(frozen=True, eq=False)
class ColumnPreview:
    """A column file read with one channel choice.

    Attributes:
        choice: the choice resolved by the reader (None when reading failed).
        energy_ev: (N,) absolute energies in eV, empty when reading failed.
        mu: (N,) raw absorption on ``energy_ev``.
        notes: one line per guess or repair the reader made.
        error: one line saying why the file cannot be read this way, else "".
    """

    choice: ChannelChoice | None
    energy_ev: np.ndarray
    mu: np.ndarray
    notes: tuple[str, ...] = ()
    error: str = ""


def preview_columns(path: str | Path, choice: ChannelChoice | None = None) -> ColumnPreview:
    """Read ``path`` with ``choice`` (None: the reader guesses); never raises for bad input."""
    from model_core.spectra.measured import read_measured

    try:
        data = read_measured(path, columns=choice)
    except (OSError, ValueError) as exc:  # MeasuredReadError is a ValueError
        empty = np.zeros(0)
        return ColumnPreview(None, empty, empty, (), str(exc))
    return ColumnPreview(data.choice, data.energy_ev, data.mu, tuple(data.warnings))


#: How the reader writes a sum of columns in ``ChannelChoice.numerator``.
SUM = "+"


def _describe(choice: ChannelChoice) -> str:
    parts = [f"energy = {choice.energy}", f"mode = {choice.mode}", f"signal = {choice.numerator}"]
    if choice.mode != "mu":
        parts.append(f"I0 = {choice.denominator or '(none)'}")
    return ", ".join(parts)


class ImportDialog(ColumnChooser):
    """Non-modal column chooser with a live preview of the spectrum.

    Args:
        path: the column file.
        names: its column names in file order.
        message: why the reader could not choose by itself ("" when opened from the menu).
        initial: a remembered choice for these column names (preselected instead of a guess).

    Signals:
        chosen(str, list, object): path, column names and the ChannelChoice (on OK).
    """

    def __init__(self, path: str, names: Sequence[str], message: str = "",
                 initial: ChannelChoice | None = None, parent=None) -> None:
        self._guess_notes: list[str] = []
        self._shown: ChannelChoice | None = None
        self.sum_list: QListWidget | None = None
        self.curve: pg.PlotDataItem | None = None
        super().__init__(path, names, message, initial, parent)
        self.setWindowTitle("Import with preview")
        self.sum_list = QListWidget(self)
        self.sum_list.setMaximumHeight(90)
        self.sum_list.setToolTip("Tick further columns to add to the signal (e.g. several fluorescence channels)")
        for name in self.names:
            item = QListWidgetItem(name, self.sum_list)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
        form = self.findChild(QFormLayout)
        form.insertRow(form.getWidgetPosition(self.numerator_combo)[0] + 1, "Sum with:", self.sum_list)
        self.set_choice(self._shown)
        if initial is not None:
            self._guess_notes = [f"preselected the choice remembered for these columns: {_describe(initial)}"]
        self.plot = pg.PlotWidget(self)
        self.plot.setBackground("w")
        self.plot.setLabel("bottom", "energy (eV)")
        self.plot.setLabel("left", "raw μ")
        self.plot.setMinimumSize(420, 220)
        self.curve = self.plot.plot(pen=pg.mkPen((31, 119, 180), width=2))
        self.problem = QLabel(self)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020")
        self.notes = QListWidget(self)
        self.notes.setMaximumHeight(110)
        self.notes.setToolTip("Every guess and repair made to read the file this way")
        layout = self.layout()
        for i, widget in enumerate((self.plot, self.problem, self.notes)):
            layout.insertWidget(2 + i, widget)
        for combo in (self.energy_combo, self.numerator_combo, self.denominator_combo, self.mode_combo):
            combo.currentIndexChanged.connect(self.update_preview)
        self.sum_list.itemChanged.connect(self.update_preview)
        self.preview: ColumnPreview | None = None
        self.update_preview()

    def set_choice(self, choice: ChannelChoice) -> None:
        """Show a choice; a summed numerator ("a+b") ticks its further columns."""
        # Kept whole, so fields this dialog does not show (a crystal d-spacing) survive.
        self._shown = choice
        numerator = choice.numerator or ""
        parts = [numerator] if numerator in self.names else [p.strip() for p in numerator.split(SUM) if p.strip()]
        super().set_choice(replace(choice, numerator=parts[0] if parts else None))
        if self.sum_list is not None:
            self.sum_list.blockSignals(True)
            for row in range(self.sum_list.count()):
                item = self.sum_list.item(row)
                item.setCheckState(Qt.CheckState.Checked if item.text() in parts[1:] else Qt.CheckState.Unchecked)
            self.sum_list.blockSignals(False)
            self.update_preview()

    def summed(self) -> list[str]:
        """Columns ticked to be added to the chosen signal column."""
        if self.sum_list is None:
            return []
        signal = self.numerator_combo.currentText()
        return [self.sum_list.item(r).text() for r in range(self.sum_list.count())
                if self.sum_list.item(r).checkState() == Qt.CheckState.Checked
                and self.sum_list.item(r).text() != signal]

    def choice(self) -> ChannelChoice:
        shown = super().choice()
        numerator = SUM.join([shown.numerator, *self.summed()])
        if self._shown is None:
            return replace(shown, numerator=numerator)
        return replace(self._shown, energy=shown.energy, numerator=numerator, denominator=shown.denominator,
                       mode=shown.mode)

    def _guess(self) -> ChannelChoice:
        guess = preview_columns(self.path)
        if guess.choice is not None:
            self._guess_notes = [f"guessed from the column names: {_describe(guess.choice)}"]
            return guess.choice
        choice = super()._guess()
        self._guess_notes = [f"guessed from the column order: {_describe(choice)}"]
        return choice

    def update_preview(self, *_args) -> ColumnPreview | None:
        """Read the file with the choice shown and plot it; list the guesses and repairs."""
        if self.curve is None:
            return None  # still being built
        preview = preview_columns(self.path, self.choice())
        self.preview = preview
        self.curve.setData(preview.energy_ev, preview.mu)
        self.problem.setText(preview.error)
        self.problem.setVisible(bool(preview.error))
        self.notes.clear()
        self.notes.addItems(self._guess_notes + list(preview.notes))
        self.buttons.button(self.buttons.StandardButton.Ok).setEnabled(not preview.error)
        return preview
