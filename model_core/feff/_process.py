"""The FEFF10 process of one site: ``python -m model_core.feff._process FEFF_INP WORK_DIR``.

Started by :func:`model_core.feff.process.run_feff` in its own process group so that it
and the per-stage worker processes feff10 starts can be killed together. Exit codes:
0 success, 3 the ``feff10`` package cannot be imported, 4 FEFF reported an error
(message on stderr), 5 anything else.
"""

from __future__ import annotations

import sys

EXIT_UNAVAILABLE = 3
EXIT_FEFF_ERROR = 4
EXIT_OTHER = 5


def main(argv: list[str] | None = None) -> int:
    """Run FEFF10 on ``argv[0]`` (a feff.inp) in ``argv[1]`` (the work folder)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m model_core.feff._process FEFF_INP WORK_DIR", file=sys.stderr)
        return 2
    try:
        import feff10
    except Exception as exc:  # noqa: BLE001 - a broken native extension raises more than ImportError
        print(f"feff10 import failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        feff10.run(args[0], args[1])
    except feff10.FeffError as exc:
        print(f"FEFF error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FEFF_ERROR
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_OTHER
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    raise SystemExit(main())
