"""Messages every part of the app state may send: the status bar, the banner and the log."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Messages(QObject):
    """One channel for the messages of all state parts (the window shows them).

    Signals:
        statusMessage(str): transient information for the status bar.
        errorMessage(str): a problem to show (status bar + message log); never modal.
        noticeMessage(str): something worth keeping in the message log but not an error
            (repairs made while reading a file, normalization windows clipped).
    """

    statusMessage = Signal(str)
    errorMessage = Signal(str)
    noticeMessage = Signal(str)

    def status(self, text: str) -> None:
        self.statusMessage.emit(text)

    def error(self, text: str) -> None:
        self.errorMessage.emit(text)

    def notice(self, text: str) -> None:
        self.noticeMessage.emit(text)
