"""View settings: how results are displayed (energy axis, hidden curves, 3-D view options)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True)
class ViewSettings:
    """How results are displayed.

    Attributes:
        energy_reference: "edge" (E - E0) or "absolute" (needs predicted E0).
        hidden_curves: labels of curves the user switched off.
        color_mode: "element" (Jmol colours), "attention" or "attribution" (see ``AppState.attributions``).
        supercell: repeats along a, b, c in the 3-D view.
        show_bonds: draw bond sticks.
        show_cell: draw the unit-cell box.
        attention_site: absorber atom whose attention is shown (None: the first predicted site).
    """

    energy_reference: str = "edge"
    hidden_curves: frozenset[str] = frozenset()
    color_mode: str = "element"
    supercell: tuple[int, int, int] = (1, 1, 1)
    show_bonds: bool = True
    show_cell: bool = True
    attention_site: int | None = None


class View(QObject):
    """The view settings part of the app state.

    Attributes:
        settings: the current ViewSettings (replaced, never changed in place).

    Signals:
        viewSettingsChanged(object): new ViewSettings.
    """

    viewSettingsChanged = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = ViewSettings()

    def set_view(self, **changes: Any) -> None:
        """Change view settings (energy_reference, hidden_curves, color_mode, ...)."""
        new = replace(self.settings, **changes)
        if new != self.settings:
            self.settings = new
            self.viewSettingsChanged.emit(new)

    def set_curve_visible(self, label: str, visible: bool) -> None:
        hidden = set(self.settings.hidden_curves)
        (hidden.discard if visible else hidden.add)(label)
        self.set_view(hidden_curves=frozenset(hidden))
