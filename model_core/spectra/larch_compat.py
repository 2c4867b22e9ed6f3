"""Lazy, side-effect-free access to xraylarch.

Importing :mod:`larch` has global side effects: it appends ``ignore`` entries to
:data:`warnings.filters` (silencing every warning of the process, including
ours and pytest's) and installs a stderr handler on the root logger. It also
takes a few seconds. So larch is never imported at module level anywhere in
:mod:`model_core`; code that needs it calls :func:`import_larch`, which imports
it once and then puts the global warning/logging state back exactly as it was,
and wraps each larch call in :func:`preserved_global_state` in case a larch
function touches that state again at call time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import warnings
from types import ModuleType
from typing import Iterator

__all__ = ["import_larch", "preserved_global_state"]

_lock = threading.Lock()
_larch: ModuleType | None = None


class _Sink(io.StringIO):
    """A discarded stdout that still looks like a console: larch decodes file
    bytes with ``sys.stdout.encoding`` and fails on a plain StringIO (None)."""

    encoding = "utf-8"
    errors = "replace"


@contextlib.contextmanager
def preserved_global_state(quiet: bool = True) -> Iterator[None]:
    """Restore warnings filters and root-logger configuration on exit.

    Saves and restores :data:`warnings.filters`, :func:`warnings.showwarning`,
    the root logger's level and handlers, and the ``logging.disable`` level.

    Args:
        quiet: swallow what the block prints on stdout. Some larch functions
            print notes ("NOTE: nans seen!!"), which would corrupt the CSV or
            JSON a command-line tool writes to stdout.
    """
    filters = list(warnings.filters)
    showwarning = warnings.showwarning
    root = logging.getLogger()
    level = root.level
    handlers = list(root.handlers)
    disabled = logging.root.manager.disable
    try:
        if quiet:
            with contextlib.redirect_stdout(_Sink()):
                yield
        else:
            yield
    finally:
        # Slice assignment keeps the list object that the warnings module (and
        # anything that captured it, e.g. pytest's recwarn) holds a reference to.
        warnings.filters[:] = filters
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:  # invalidates the per-module "already warned" caches
            mutated()
        warnings.showwarning = showwarning
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        logging.disable(disabled)


def import_larch() -> ModuleType:
    """Import xraylarch (with ``larch.xafs`` and ``larch.io``) without its global side effects.

    Returns:
        The :mod:`larch` package; ``larch.xafs`` and ``larch.io`` are loaded.

    Raises:
        ImportError: xraylarch is not installed.
    """
    global _larch
    if _larch is not None:
        return _larch
    with _lock:
        if _larch is None:
            with preserved_global_state(quiet=False):
                import larch
                import larch.io  # noqa: F401  (loaded here so later attribute access has no side effects)
                import larch.xafs  # noqa: F401
            _larch = larch
    return _larch
