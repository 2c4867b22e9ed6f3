"""Files of a training-data source: a folder, or an archive read into memory.

A *source* is a directory or an archive (``.tar.xz``, ``.tar.gz``, ``.tgz``,
``.tar.bz2``, ``.tar``, ``.zip``). Archives are read member by member into
memory (the shared archives are 15-25 MB compressed, ~200 MB unpacked), never
extracted to the data folder; structure files are handed to
:func:`model_core.io.read_structure` through a private temporary file because
the readers want a path. Also here: the :class:`LoadReport` of a reading and the
``splits/<name>.txt`` id lists of a source.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tarfile
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from model_core.io import read_structure
from model_core.types import Structure

__all__ = ["ARCHIVE_SUFFIXES", "LoadReport", "SourceTree", "open_source", "read_splits", "source_fingerprint"]

ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")

_SPLIT = re.compile(r"^(?:.*/)?splits/(?P<name>[^/]+)\.txt$")


@dataclass
class LoadReport:
    """What happened while loading a source.

    Attributes:
        source: the directory or archive.
        problems: (record id or file, reason) for every record that could not be read.
        dropped: (record id, reason) for readable records removed by preprocessing
            (grid coverage, normalization, screening).
        n_loaded: records read successfully.
        normalization_methods: how many records each normalization method handled.
    """

    source: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    n_loaded: int = 0
    normalization_methods: dict[str, int] = field(default_factory=dict)

    def add_problem(self, item: str, reason: str) -> None:
        self.problems.append((str(item), str(reason)))

    def add_dropped(self, item: str, reason: str) -> None:
        self.dropped.append((str(item), str(reason)))

    def __len__(self) -> int:
        return len(self.problems) + len(self.dropped)

    def reason_counts(self) -> dict[str, int]:
        """Counts per reason category (the text before the first ':' or '(')."""
        counts: Counter[str] = Counter()
        for _, reason in self.problems + self.dropped:
            counts[re.split(r"[:(]", reason, maxsplit=1)[0].strip()] += 1
        return dict(counts.most_common())

    def summary(self) -> str:
        """One line per fact, for logs."""
        lines = [f"{self.source}: {self.n_loaded} records read, {len(self.problems)} unreadable, "
                 f"{len(self.dropped)} dropped by preprocessing"]
        lines += [f"  {n:5d}  {reason}" for reason, n in self.reason_counts().items()]
        if self.normalization_methods:
            lines.append("  normalization: " + ", ".join(f"{k}={v}" for k, v in self.normalization_methods.items()))
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> Path:
        """Write ``stage,item,reason`` rows (stage "load" or "preprocess")."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["stage", "item", "reason"])
            writer.writerows(("load", i, r) for i, r in self.problems)
            writer.writerows(("preprocess", i, r) for i, r in self.dropped)
        return path


# ---------------------------------------------------------------------------
# File trees: a directory or an archive read into memory
# ---------------------------------------------------------------------------

class SourceTree:
    """Read-only view of the files of a source, by relative POSIX path."""

    def __init__(self, root: Path, paths: list[str]):
        self.root = root
        self.paths = sorted(paths)
        self._set = set(self.paths)
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __contains__(self, rel: str) -> bool:
        return rel in self._set

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8", errors="replace")

    def display(self, rel: str) -> str:
        """How a member is named in messages and record sources."""
        return str(self.root / rel)

    def read_structure(self, rel: str) -> Structure:
        """Read a structure file with :func:`model_core.io.read_structure`."""
        return read_structure(self.root / rel)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "SourceTree":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DirectoryTree(SourceTree):
    def __init__(self, root: Path):
        paths = []
        for folder, _dirs, files in os.walk(root):
            rel_folder = Path(folder).relative_to(root)
            paths.extend((rel_folder / f).as_posix() for f in files)
        super().__init__(root, paths)

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()


class _MemoryTree(SourceTree):
    def __init__(self, root: Path, files: dict[str, bytes]):
        super().__init__(root, list(files))
        self._files = files

    def read_bytes(self, rel: str) -> bytes:
        return self._files[rel]

    def display(self, rel: str) -> str:
        return f"{self.root}::{rel}"

    def read_structure(self, rel: str) -> Structure:
        # The structure readers need a file: write the member under its own name
        # (the reader is chosen from the name) into a private temporary folder.
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="xanes-src-")
        folder = Path(self._tmp.name) / hashlib.sha1(rel.encode()).hexdigest()[:16]
        folder.mkdir(exist_ok=True)
        path = folder / PurePosixPath(rel).name
        path.write_bytes(self._files[rel])
        try:
            structure = read_structure(path)
        except ValueError as exc:
            raise ValueError(str(exc).replace(str(path), self.display(rel))) from None
        finally:
            path.unlink(missing_ok=True)
        return structure.replace(source=self.display(rel))


def open_source(path: str | Path) -> SourceTree:
    """Open a directory or archive as a :class:`SourceTree`.

    Raises:
        ValueError: the path does not exist, or is neither a folder nor a supported archive.
    """
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        return _DirectoryTree(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    files: dict[str, bytes] = {}
    lower = path.name.lower()
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        files[info.filename] = archive.read(info)
        elif lower.endswith(ARCHIVE_SUFFIXES):
            # Streaming mode ("r|*") reads the compressed file once, front to back.
            with tarfile.open(path, mode="r|*") as archive:
                for member in archive:
                    if member.isfile():
                        handle = archive.extractfile(member)
                        if handle is not None:
                            files[member.name.removeprefix("./")] = handle.read()
        else:
            raise ValueError(f"{path}: not a folder or a supported archive ({', '.join(ARCHIVE_SUFFIXES)})")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the archive ({exc})") from exc
    return _MemoryTree(path, files)


def source_fingerprint(path: str | Path) -> str:
    """A string that changes when the source's content may have changed.

    Archives: absolute path, size and modification time. Folders: absolute path,
    file count, total size and newest modification time of the files below.
    """
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        count, size, newest = 0, 0, 0
        for folder, _dirs, files in os.walk(path):
            for name in files:
                stat = os.stat(os.path.join(folder, name))
                count += 1
                size += stat.st_size
                newest = max(newest, stat.st_mtime_ns)
        return f"dir:{path}:{count}:{size}:{newest}"
    stat = path.stat()
    return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------

def _splits_from_tree(tree: SourceTree) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    for rel in tree.paths:
        match = _SPLIT.match(rel)
        if match:
            ids = [line.strip() for line in tree.read_text(rel).splitlines()]
            splits[match["name"]] = [i for i in ids if i and not i.startswith("#")]
    return splits


def read_splits(source: str | Path | SourceTree) -> dict[str, list[str]]:
    """Id lists from ``splits/<name>.txt`` files (one id per line), by name.

    Returns:
        e.g. ``{"train": [...], "val": [...], "unscreened": [...]}``; empty when absent.
    """
    if isinstance(source, SourceTree):
        return _splits_from_tree(source)
    with open_source(source) as tree:
        return _splits_from_tree(tree)
