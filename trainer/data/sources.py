"""Read simulated spectra with their structures from a folder or an archive.

A *source* is a directory or an archive, opened as a file tree by
:mod:`trainer.data.trees`. The layouts are read by :mod:`trainer.data.feff_source`
and :mod:`trainer.data.fdmnes_source`; this module runs them all over a tree.

Layouts are detected from the file names, anywhere below the root; each layout module's
docstring describes its files and ids (FEFF/OmniXAS trees and FEFF run folders in
:mod:`trainer.data.feff_source`, XANESNET FDMNES in :mod:`trainer.data.fdmnes_source`).

Every record that cannot be read is listed in the :class:`LoadReport` with the
reason and skipped; nothing is dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from trainer.data.fdmnes_source import iter_xanesnet
from trainer.data.feff_source import iter_feff, iter_feff_runs
from trainer.data.records import SpectrumRecord
from trainer.data.trees import (ARCHIVE_SUFFIXES, LoadReport, SourceTree, open_source, read_splits,
                                source_fingerprint)

__all__ = [
    "ARCHIVE_SUFFIXES",
    "LoadReport",
    "SourceTree",
    "iter_records",
    "load_records",
    "open_source",
    "read_splits",
    "source_fingerprint",
]


def iter_records(tree: SourceTree, report: LoadReport, element: str | None = None,
                 ids: Iterable[str] | None = None) -> Iterator[SpectrumRecord]:
    """Yield every readable record of an opened source; problems go to ``report``.

    Args:
        tree: from :func:`open_source`.
        report: collects (id, reason) of unreadable records.
        element: absorbing element to keep (FEFF) or to use as absorber (FDMNES).
        ids: only these record ids (None: all).
    """
    wanted_set = None if ids is None else set(ids)

    def wanted(record_id: str) -> bool:
        return wanted_set is None or record_id in wanted_set

    for record in iter_feff(tree, element, report, wanted):
        report.n_loaded += 1
        yield record
    for record in iter_feff_runs(tree, report, wanted):
        report.n_loaded += 1
        yield record
    for record in iter_xanesnet(tree, element, report, wanted):
        report.n_loaded += 1
        yield record


def load_records(source: str | Path, element: str | None = None, ids: Iterable[str] | None = None,
                 progress: bool = False) -> tuple[list[SpectrumRecord], LoadReport]:
    """Read all records of a directory or archive.

    Args:
        source: folder or archive path.
        element: absorbing element filter/choice (see :func:`iter_records`).
        ids: only these record ids.
        progress: show a tqdm progress bar.

    Returns:
        (records in source order, report). The report lists every unreadable record.

    Raises:
        ValueError: the source cannot be opened, or holds no recognisable record.
    """
    report = LoadReport(source=str(source))
    with open_source(source) as tree:
        iterator: Iterable[SpectrumRecord] = iter_records(tree, report, element, ids)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc=f"reading {Path(str(source)).name}", unit="rec")
        records = list(iterator)
    if not records and not report.problems:
        raise ValueError(f"{source}: no FEFF (FEFF-XANES/NNN_El/xmu.dat, feff.inp+xmu.dat) or "
                         "XANESNET (xyz/ + spectra/) records found")
    return records, report
