"""Shared plumbing of the command-line tools: one-line errors naming paths as given, fast
checks of input paths, negative option values, site and column options, CSV metadata."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Iterable, NoReturn, Sequence, TextIO


class CliError(Exception):
    """An error reported to the user as one line (no traceback)."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def error_message(exc: BaseException, paths: Sequence[str] = ()) -> str:
    """One line for ``exc`` that names its file as the user wrote it in ``paths``.

    Readers name files differently (structure errors by file name, spectrum errors
    by normalized path); the CLIs report every file exactly as it was given.
    """
    message = " ".join(str(exc).split())
    path, problem = getattr(exc, "path", None), getattr(exc, "problem", None)
    if path is not None and problem is not None:  # StructureReadError
        given = next((p for p in paths if _same(p, path)), str(path))
        return f"{given}: {problem}"
    for given in paths:
        for spelling in dict.fromkeys((str(Path(given)), Path(given).name)):
            if spelling != given and message.startswith(f"{spelling}: "):
                return f"{given}{message[len(spelling):]}"
    return message


def wrong_kind(path: str, expected: str) -> str:
    """A hint to append to a read error when ``path`` is of the other kind, by the format registry.

    Args:
        path: the file that failed.
        expected: "structure" or "spectrum", what the option wanted.

    Returns:
        ``" (this looks like a measured spectrum; ...)"``, or "" when the kind fits or is unknown.
    """
    from model_core.formats import classify

    try:
        kind = classify(path)
    except OSError:
        return ""
    if kind == "spectrum" and expected == "structure":
        return " (this looks like a measured spectrum: compare it with xanes-compare STRUCTURE --measured FILE)"
    if kind == "structure" and expected == "spectrum":
        return " (this looks like a structure file, not a spectrum)"
    return ""


def _same(a: str | Path, b: str | Path) -> bool:
    return str(Path(a)) == str(Path(b))


def check_paths(paths: Iterable[str], what: str = "file") -> list[str]:
    """One-line problems of input paths that do not exist or are folders (cheap; no imports).

    Called before the slow imports (torch, larch) so a mistyped path is reported at once.
    """
    problems = []
    for path in paths:
        if not Path(path).exists():
            problems.append(f"{path}: {what} not found")
        elif Path(path).is_dir():
            problems.append(f"{path}: is a folder, not a {what}")
    return problems


def require_paths(paths: Iterable[str], what: str = "file") -> None:
    """Exit with status 2 naming the first path of ``paths`` that is missing or a folder."""
    problems = check_paths(paths, what)
    if problems:
        fail(problems[0])


def join_negative_values(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """``["--window", "-20,80"]`` -> ``["--window=-20,80"]`` for ``options``.

    argparse takes any word that starts with "-" and is not a plain negative
    number for an option, so ``--window -20,80`` would be refused.
    """
    joined: list[str] = []
    args = list(argv)
    k = 0
    while k < len(args):
        word = args[k]
        if word in options and k + 1 < len(args) and re.match(r"-[\d.]", args[k + 1]):
            joined.append(f"{word}={args[k + 1]}")
            k += 2
            continue
        joined.append(word)
        k += 1
    return joined


def column_spec(text: str) -> dict[str, object]:
    """argparse type of ``--columns`` (see :data:`model_core.spectra.measured.COLUMN_SPEC_HELP`)."""
    from model_core.spectra.measured.channels import parse_column_spec

    try:
        return parse_column_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. energy=1,mu=3 or energy=Angle(o),i0=I0,if=SCA1+SCA2)") \
            from exc


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


def nonnegative_ev(option: str, expects: str = "eV"):
    """An argparse ``type`` for an option taking a finite value >= 0 in eV.

    Errors name the option: "``option`` expects ``expects``, got 'x'" for text that is no
    number, "``option`` must be >= 0 eV, got '-1'" for a negative or non-finite one.
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{option} expects {expects}, got {text!r}") from exc
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"{option} must be >= 0 eV, got {text!r}")
        return value

    return parse


def int_at_least(minimum: int):
    """An argparse ``type`` for a whole number >= ``minimum`` (one message for both problems)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse

