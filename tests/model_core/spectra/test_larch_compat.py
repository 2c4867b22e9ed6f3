"""import_larch must leave the process's warnings and logging configuration alone."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings

from model_core.spectra.larch_compat import import_larch, preserved_global_state


def test_import_larch_in_a_fresh_process_preserves_warnings_and_logging() -> None:
    # A fresh interpreter: larch's import side effects happen only on the first import.
    code = textwrap.dedent("""
        import logging, sys, warnings
        warnings.simplefilter("error", UserWarning)
        handler = logging.NullHandler()
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.disable(logging.DEBUG)
        before = (list(warnings.filters), list(root.handlers), root.level, logging.root.manager.disable)
        assert "larch" not in sys.modules
        from model_core.spectra.larch_compat import import_larch
        assert "larch" not in sys.modules, "importing the helper must not import larch"
        larch = import_larch()
        assert hasattr(larch, "xafs") and hasattr(larch.io, "read_xdi")
        after = (list(warnings.filters), list(root.handlers), root.level, logging.root.manager.disable)
        assert before == after, (before, after)
        try:
            warnings.warn("still an error", UserWarning)
        except UserWarning:
            print("OK")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("OK")


def test_preserved_global_state_restores_everything(capsys) -> None:
    import_larch()
    root = logging.getLogger()
    filters = list(warnings.filters)
    handlers = list(root.handlers)
    level = root.level
    disabled = logging.root.manager.disable
    with preserved_global_state():
        warnings.simplefilter("ignore")
        root.addHandler(logging.StreamHandler())
        root.setLevel(logging.CRITICAL)
        logging.disable(logging.WARNING)
        print("swallowed")
    assert warnings.filters == filters
    assert root.handlers == handlers
    assert root.level == level
    assert logging.root.manager.disable == disabled
    assert "swallowed" not in capsys.readouterr().out
