"""Autosave of the session and recovery after an abnormal exit.

Every instance writes its own file, ``session-<pid>-<start>-<n>.json``, in
:func:`autosave_dir` and holds a :class:`~PySide6.QtCore.QLockFile` beside it
for as long as it runs. The file is written a while after a change (one
single-shot timer: the first change starts it, later changes ride along, so a
save is never more than ``delay_ms`` behind), atomically (temporary file in the
same folder, fsync, :func:`os.replace`), and removed on a clean exit. It is
never the user's own session file, so an explicit save is never overwritten.

An autosave whose lock can be taken belongs to a process that is gone (Qt
detects the dead owner from the pid recorded in the lock): that is an orphan,
offered for restoring at the next start or restored by ``xanes-gui --restore``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal

#: Longest delay between a change and its autosave (the issue asks for at most 30 s).
DEFAULT_DELAY_MS = 30_000
#: Overrides the delay (ms), e.g. for tests that kill the app.
DELAY_ENV = "XANES_GUI_AUTOSAVE_DELAY_MS"
#: AppState signals after which the session file would differ.
SESSION_SIGNALS = ("sessionChanged",)

_COUNTER = itertools.count()


def autosave_dir() -> Path:
    """Where autosaves live: ``$XDG_STATE_HOME/xanes-gui/autosave`` on Linux, else app data + ``/autosave``."""
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        return Path(base) / "xanes-gui" / "autosave"
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(location or os.path.expanduser("~/.xanes-gui")) / "autosave"


def _lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a partial one."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class Autosaver(QObject):
    """Writes ``snapshot()`` to this instance's own autosave file, debounced.

    Args:
        snapshot: returns the session as JSON-able data.
        folder: autosave folder (:func:`autosave_dir` by default).
        delay_ms: longest delay between a change and its save; None reads
            ``$XANES_GUI_AUTOSAVE_DELAY_MS`` (default 30 s).

    Signals:
        saved(str): the autosave file was written.
        failed(str): one line saying why it could not be written.
    """

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, snapshot: Callable[[], dict[str, Any]], folder: str | os.PathLike | None = None,
                 delay_ms: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._snapshot = snapshot
        folder = Path(folder) if folder is not None else autosave_dir()
        # pid + start time + counter: unique across processes and within one.
        self.path = folder / f"session-{os.getpid()}-{int(time.time() * 1000)}-{next(_COUNTER)}.json"
        self._lock = QLockFile(str(_lock_path(self.path)))
        self._lock.setStaleLockTime(0)  # stale only when the owner process is gone
        self._own()
        if delay_ms is None:
            try:
                delay_ms = int(os.environ.get(DELAY_ENV, DEFAULT_DELAY_MS))
            except ValueError:
                delay_ms = DEFAULT_DELAY_MS
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(max(0, int(delay_ms)))
        self._timer.timeout.connect(self.save_now)
        self._closed = False

    def _own(self) -> bool:
        """Make the folder and hold the lock (what keeps other instances off this file)."""
        if not self._lock.isLocked():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return False
            self._lock.tryLock(0)
        return self._lock.isLocked()

    def listen(self, signals: Iterable) -> None:
        """Schedule a save whenever one of ``signals`` (bound Qt signals) fires."""
        for signal in signals:
            signal.connect(self.schedule)

    def schedule(self, *_args) -> None:
        """Save after the delay unless a save is already pending (it will include this change)."""
        if not self._closed and not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> bool:
        """Whether a change waits to be saved."""
        return self._timer.isActive()

    def save_now(self) -> None:
        """Write the session now (a failure is reported, never raised: autosave must not break the app)."""
        self._timer.stop()
        if self._closed:
            return
        if not self._own():
            self.failed.emit(f"Autosave: cannot create or lock {self.path} (is the folder writable?)")
            return
        try:
            write_atomically(self.path, json.dumps(self._snapshot(), indent=1) + "\n")
        except (OSError, TypeError, ValueError) as exc:
            self.failed.emit(f"Autosave to {self.path} failed: {exc}")
            return
        self.saved.emit(str(self.path))

    def close(self) -> None:
        """Clean exit: stop saving and remove this instance's autosave and lock."""
        self._closed = True
        self._timer.stop()
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # never written (the folder could not be made): nothing to remove
        self._lock.unlock()


@dataclass
class Orphan:
    """An autosave left by a process that is gone, locked by this process while held.

    Attributes:
        path: the autosave file.
        mtime: when it was last written (seconds since the epoch).
        lock: its lock, held by this process until :meth:`discard` or :meth:`release`.
    """

    path: Path
    mtime: float
    lock: QLockFile

    def discard(self) -> None:
        """Delete the autosave and its lock."""
        self.path.unlink(missing_ok=True)
        self.lock.unlock()

    def release(self) -> None:
        """Keep the autosave for a later start."""
        self.lock.unlock()


def _is_empty(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # unreadable: let restoring report it rather than deleting it silently
    return isinstance(data, dict) and not data.get("structures") and not data.get("measured")


def claim_orphans(folder: str | os.PathLike | None = None) -> list[Orphan]:
    """Autosaves whose owner process is gone, newest first, each locked by this process.

    Orphans recording no file at all are deleted instead of returned.
    """
    folder = Path(folder) if folder is not None else autosave_dir()
    orphans = []
    for path in folder.glob("session-*.json") if folder.is_dir() else ():
        lock = QLockFile(str(_lock_path(path)))
        lock.setStaleLockTime(0)
        if not lock.tryLock(0):
            continue  # a running instance owns it
        orphan = Orphan(path, path.stat().st_mtime if path.exists() else 0.0, lock)
        if not path.exists() or _is_empty(path):
            orphan.discard()
            continue
        orphans.append(orphan)
    return sorted(orphans, key=lambda o: o.mtime, reverse=True)


def ask_restore(parent, orphan: Orphan, others: int) -> str:
    """Ask whether to restore ``orphan``; returns "restore", "discard" or "later"."""
    from PySide6.QtWidgets import QMessageBox

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(orphan.mtime))
    box = QMessageBox(QMessageBox.Icon.Question, "Restore unsaved work?",
                      f"xanes-gui did not exit cleanly. Restore the session autosaved at {when}?"
                      + (f"\n({others} older autosave(s) will be offered next time.)" if others else ""),
                      parent=parent)
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restore)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else "discard" if clicked is discard else "later"


def recover(state, *, ask: bool = True, chooser: Callable[[Orphan, int], str] | None = None,
            folder: str | os.PathLike | None = None, parent=None):
    """Offer (or, with ``ask=False``, just do) the restore of the newest orphaned autosave.

    Args:
        state: the AppState to restore into (with :func:`xanes_gui.session.load_session`).
        ask: False restores without asking (``xanes-gui --restore``).
        chooser: called with the newest orphan and the number of others; returns
            "restore", "discard" or "later" (a message box over ``parent`` by default).

    Returns:
        The :class:`~xanes_gui.session.SessionRestorer` when restoring, else None.
        The restored autosave is deleted once the restore has finished.
    """
    orphans = claim_orphans(folder)
    if not orphans:
        return None
    newest, others = orphans[0], orphans[1:]
    for orphan in others:
        orphan.release()
    answer = "restore" if not ask else (chooser or (lambda o, n: ask_restore(parent, o, n)))(newest, len(others))
    if answer == "discard":
        newest.discard()
        return None
    if answer != "restore":
        newest.release()
        return None
    from xanes_gui.session import load_session

    try:
        restorer = load_session(state, newest.path)
    except (OSError, ValueError) as exc:
        state.messages.errorMessage.emit(f"Cannot restore the autosave {newest.path}: {exc}")
        newest.release()
        return None
    # The restored work is in this instance's own autosave from now on.
    restorer.finished.connect(lambda *_: newest.discard())
    return restorer


def install(state, window=None, *, restore: bool = False) -> Autosaver:
    """Autosave ``state``'s session and, from the event loop, recover an orphan (the app's wiring).

    ``window`` parents the restore question; ``restore`` restores without asking.
    """
    from xanes_gui.session import session_dict

    saver = Autosaver(lambda: session_dict(state), parent=state)
    saver.listen(getattr(state, name) for name in SESSION_SIGNALS)
    saver.failed.connect(state.messages.errorMessage)
    QTimer.singleShot(0, lambda: recover(state, ask=not restore, parent=window))
    return saver
