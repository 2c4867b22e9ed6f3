"""Shared plumbing of the command-line tools: one-line errors, site options, CSV metadata."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, NoReturn, TextIO


class CliError(Exception):
    """An error reported to the user as one line (no traceback)."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def parse_site_list(text: str) -> list[int]:
    """Parse "0,3,5-7" into [0, 3, 5, 6, 7] (0-based indices)."""
    sites: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                sites.extend(range(int(lo), int(hi) + 1))
            else:
                sites.append(int(part))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--sites expects 0-based indices like 0,3,5-7, got {text!r}") from exc
    if not sites:
        raise argparse.ArgumentTypeError("--sites is empty")
    if any(s < 0 for s in sites):
        raise argparse.ArgumentTypeError("--sites takes 0-based non-negative indices")
    return sites


def add_site_options(parser: argparse.ArgumentParser, element_default: str = "the model's element") -> None:
    """--element / --sites (mutually exclusive); ``element_default`` says what applies without either."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--element", help=f"absorbing element: every site of it (default: {element_default})")
    group.add_argument("--sites", type=parse_site_list,
                       help="0-based absorber indices in the input's atom order, e.g. 0,3,5-7")


def write_metadata(stream: TextIO, items: Iterable[tuple[str, object]]) -> None:
    """Write ``# key: value`` lines."""
    for key, value in items:
        stream.write(f"# {key}: {value}\n")
