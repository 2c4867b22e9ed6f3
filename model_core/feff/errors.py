"""Errors of FEFF runs, each with a one-line message suitable for a report."""

from __future__ import annotations

__all__ = [
    "FeffCancelledError",
    "FeffRunError",
    "FeffTimeoutError",
    "FeffUnavailableError",
    "InvalidXmuError",
    "UNAVAILABLE_HINT",
    "one_line",
]

#: How to fix a missing FEFF10, appended to every :class:`FeffUnavailableError`.
UNAVAILABLE_HINT = "install it with `pip install feff10-rs` (or `pip install xanes-gui[feff]`)"


class FeffUnavailableError(RuntimeError):
    """FEFF10 cannot be run: the ``feff10`` package (feff10-rs) is missing or broken."""


class FeffRunError(RuntimeError):
    """A FEFF run failed; the message is one line suitable for a report."""


class FeffCancelledError(FeffRunError):
    """The run was cancelled and its FEFF processes were killed."""


class FeffTimeoutError(FeffRunError):
    """The run exceeded its time limit and its FEFF processes were killed."""


class InvalidXmuError(FeffRunError, ValueError):
    """An xmu.dat is missing, unreadable, too short or not finite."""


def one_line(exc: BaseException) -> str:
    """The error as one line: our own errors' messages as they are, others prefixed with their type."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (FeffRunError, FeffUnavailableError)) else f"{type(exc).__name__}: {text}"
