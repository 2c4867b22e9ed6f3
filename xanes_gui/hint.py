"""A centred hint over a widget that is shown only while there is nothing to show."""

from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QWidget


class EmptyHint(QLabel):
    """A word-wrapped label centred over ``over``, visible while ``is_empty()`` is true.

    Args:
        text: the hint.
        over: the widget it is centred over; the hint is a child of its parent
            (a splitter would take a child of its own as a new pane) and follows
            its geometry.
        is_empty: whether there is nothing to show.
        signals: bound signals after which ``is_empty()`` may have changed.
    """

    def __init__(self, text: str, over: QWidget, is_empty: Callable[[], bool], signals: Iterable) -> None:
        super().__init__(text, over.parentWidget())
        self._over = over
        self._is_empty = is_empty
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Drops and clicks go to the widgets underneath (the window accepts dropped files).
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("QLabel { background: rgba(255, 255, 255, 230); color: #333; border: 1px solid #bbb;"
                           " border-radius: 8px; padding: 14px; font-size: 11pt; }")
        over.installEventFilter(self)
        for signal in signals:
            signal.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args) -> None:
        """Show or hide the hint and centre it."""
        area = self._over.geometry()
        width = max(min(520, area.width() - 40), 160)
        self.setFixedSize(width, self.heightForWidth(width))
        self.move(area.x() + (area.width() - self.width()) // 2, area.y() + (area.height() - self.height()) // 2)
        self.setVisible(self._is_empty())
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self.refresh()
        return False
