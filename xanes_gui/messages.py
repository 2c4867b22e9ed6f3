"""Non-blocking messages: a dismissable banner for the latest problem and a log panel.

Problems are never shown in modal dialogs: a modal box would block the user
(and automated tests) and could hide that other files did load.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QToolButton,
                               QVBoxLayout, QWidget)


class MessageBanner(QFrame):
    """A coloured strip showing the latest error with a close button."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        self.setStyleSheet("#messageBanner { background: #fdecea; border: 1px solid #e57373; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.setVisible(False)

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.setVisible(True)

    def dismiss(self) -> None:
        self.setVisible(False)


class MessageLog(QWidget):
    """Timestamped list of every error and notice of the session."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self.list.clear)
        side = QVBoxLayout()
        side.addWidget(self.clear_button)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(side)

    def add(self, text: str, error: bool = False) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        item = QListWidgetItem(f"{stamp}  {text}")
        if error:
            item.setForeground(QColor(180, 30, 30))
        self.list.addItem(item)
        self.list.scrollToBottom()

    def messages(self) -> list[str]:
        """All messages (without timestamps), oldest first."""
        return [self.list.item(i).text().split("  ", 1)[1] for i in range(self.list.count())]
