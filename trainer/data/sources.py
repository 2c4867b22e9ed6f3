"""Read simulated spectra with their structures from a folder or an archive.

A *source* is a directory or an archive (``.tar.xz``, ``.tar.gz``, ``.tgz``,
``.tar.bz2``, ``.tar``, ``.zip``). Archives are read member by member into
memory (the shared archives are 15-25 MB compressed, ~200 MB unpacked), never
extracted to the data folder; structure files are handed to
:func:`model_core.io.read_structure` through a private temporary file because
the readers want a path.

Layouts are detected from the file names, anywhere below the root:

FEFF (OmniXAS)
    ``<material>/POSCAR`` and ``<material>/FEFF-XANES/<NNN>_<El>/{feff.inp,xmu.dat}``.
    The structure is the POSCAR with site index NNN (0-based); when the POSCAR is
    missing or unreadable, the ``feff.inp`` cluster with the absorber at
    potential 0. ``record_id = "<material>_<NNN>"``, ``group_id = "<material>"``.
    Energies are the xmu ``e`` column (relative to FEFF's edge); E0 target is
    FEFF's edge ``omega - e``.
FEFF run folder
    any other folder holding ``feff.inp`` and ``xmu.dat`` (what ``xanes-simulate``
    writes): structure and absorber from ``feff.inp``, ids from the folder name.
XANESNET FDMNES
    ``xyz/<name>.xyz`` + ``spectra/<name>.txt`` (convolved: the training target)
    + optional ``raw/<name>.txt`` (unconvolved, carries the header). The absorber
    is the first atom of the absorbing element; that element is the ``element``
    argument, else the raw header's ``Z``, else the element of atom 0 (FDMNES's
    own default absorber is the first atom listed). Energies are ``E - E_edge``
    with ``E_edge`` from the raw header, else the tabulated K-edge energy of the
    element (xraydb). E0 target = ``E_edge + E_cut`` (the Fermi level; see
    :func:`fdmnes_e0`).

Every record that cannot be read is listed in the :class:`LoadReport` with the
reason and skipped; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tarfile
import tempfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np

from model_core.io import read_structure
from model_core.spectra.simulated import parse_fdmnes, parse_feff_xmu
from model_core.types import Structure, atomic_number, element_symbol
from trainer.data.records import SpectrumRecord

__all__ = [
    "ARCHIVE_SUFFIXES",
    "LoadReport",
    "SourceTree",
    "fdmnes_e0",
    "iter_records",
    "k_edge_energy",
    "load_records",
    "open_source",
    "read_splits",
    "source_fingerprint",
]

ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")

_FEFF_SITE = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<material>[^/]+)/FEFF-XANES/"
                        r"(?P<site>\d+)_(?P<element>[A-Za-z]{1,2})/xmu\.dat$")
_XANESNET_SPECTRUM = re.compile(r"^(?P<prefix>(?:.*/)?)spectra/(?P<name>[^/]+)\.txt$")
_XANESNET_OTHER = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<kind>xyz|raw)/(?P<name>[^/]+)\.(?:xyz|txt)$")
_SPLIT = re.compile(r"^(?:.*/)?splits/(?P<name>[^/]+)\.txt$")

# Tabulated K-edge energies (eV, Bearden & Burr as in xraydb) used when xraydb is absent.
_K_EDGES_EV = {"Ti": 4966.0, "V": 5465.0, "Cr": 5989.0, "Mn": 6539.0, "Fe": 7112.0,
               "Co": 7709.0, "Ni": 8333.0, "Cu": 8979.0, "Zn": 9659.0, "Mo": 20000.0}


def k_edge_energy(element: str | int) -> float:
    """Tabulated K-edge energy of an element in eV (xraydb, else a small built-in table).

    Raises:
        ValueError: the element is unknown to both.
    """
    symbol = element_symbol(atomic_number(element))
    try:
        import xraydb

        return float(xraydb.xray_edge(symbol, "K").energy)
    except Exception:  # noqa: BLE001 - xraydb missing or element not tabulated
        if symbol in _K_EDGES_EV:
            return _K_EDGES_EV[symbol]
        raise ValueError(f"no K-edge energy known for {symbol}") from None


def fdmnes_e0(e_edge_ev: float | None, fermi_rel_ev: float | None) -> float | None:
    """Absolute E0 target of an FDMNES calculation: ``E_edge + E_cut``.

    ``E_edge`` is the tabulated edge (the same 7112 eV for every Fe complex, so it
    carries no information); ``E_cut`` in the raw header is the computed Fermi
    level relative to it (-4.7..+0.06 eV in the Fe set), the onset of empty states
    and the quantity XANE(3) regresses. A value of exactly 0.0 (133 of 4079 Fe
    files) is what FDMNES writes when it did not determine a Fermi level, so it
    is treated as unknown.

    Returns:
        The absolute E0 in eV, or None when either part is unknown.
    """
    if e_edge_ev is None or fermi_rel_ev is None or fermi_rel_ev == 0.0:
        return None
    return float(e_edge_ev + fermi_rel_ev)


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


def is_archive(path: str | Path) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


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


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

def _feff_record(tree: SourceTree, xmu_rel: str, record_id: str, group_id: str,
                 structure: Structure, site: int, metadata: dict) -> SpectrumRecord:
    spectrum = parse_feff_xmu(tree.read_text(xmu_rel), tree.display(xmu_rel))
    energy_rel = np.asarray(spectrum.metadata["energy_rel_ev"], dtype=np.float64)
    return SpectrumRecord(
        record_id=record_id, group_id=group_id, structure=structure, site_index=site,
        energy_rel_ev=energy_rel, mu_raw=spectrum.mu, e0_abs_ev=spectrum.e0_ev,
        source=tree.display(xmu_rel),
        metadata={"code": "feff", "e_edge_ev": spectrum.e0_ev, **metadata},
    )


def _iter_feff(tree: SourceTree, element: str | None, report: LoadReport,
               wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    by_material: dict[tuple[str, str], list[re.Match]] = defaultdict(list)
    for rel in tree.paths:
        match = _FEFF_SITE.match(rel)
        if match:
            by_material[(match["prefix"], match["material"])].append(match)
    want_z = atomic_number(element) if element else None
    for (prefix, material), matches in by_material.items():
        matches = [m for m in matches if wanted(f"{material}_{m['site']}")]
        if want_z is not None:
            matches = [m for m in matches if _safe_z(m["element"]) == want_z]
        if not matches:
            continue
        poscar_rel = f"{prefix}{material}/POSCAR"
        poscar: Structure | None = None
        poscar_problem = "no POSCAR"
        if poscar_rel in tree:
            try:
                poscar = tree.read_structure(poscar_rel)
            except ValueError as exc:
                poscar_problem = f"unreadable POSCAR ({exc})"
        for match in sorted(matches, key=lambda m: int(m["site"])):
            record_id = f"{material}_{match['site']}"
            xmu_rel = match.group(0)
            run_dir = xmu_rel.rsplit("/", 1)[0]
            try:
                site = int(match["site"])
                if poscar is not None:
                    if site >= poscar.n_atoms:
                        raise ValueError(f"site {site} beyond the {poscar.n_atoms} atoms of {poscar_rel}")
                    if int(poscar.atomic_numbers[site]) != _safe_z(match["element"]):
                        raise ValueError(f"atom {site} of the POSCAR is {poscar.symbols[site]}, "
                                         f"the folder says {match['element']}")
                    structure, info = poscar, {"structure_from": "POSCAR"}
                else:
                    structure, site = _feff_inp_structure(tree, f"{run_dir}/feff.inp")
                    info = {"structure_from": "feff.inp", "poscar_problem": poscar_problem}
                yield _feff_record(tree, xmu_rel, record_id, material, structure, site, info)
            except (ValueError, KeyError, OSError) as exc:
                report.add_problem(record_id, f"unreadable: {exc}")


def _safe_z(symbol: str) -> int:
    try:
        return atomic_number(symbol)
    except ValueError:
        return -1


def _feff_inp_structure(tree: SourceTree, inp_rel: str) -> tuple[Structure, int]:
    if inp_rel not in tree:
        raise ValueError(f"no structure: neither a POSCAR nor {tree.display(inp_rel)}")
    structure = tree.read_structure(inp_rel)
    if structure.absorber_index is None:
        raise ValueError(f"{tree.display(inp_rel)} names no absorber (potential 0)")
    return structure, int(structure.absorber_index)


def _iter_feff_runs(tree: SourceTree, report: LoadReport,
                    wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    for rel in tree.paths:
        if not (rel == "xmu.dat" or rel.endswith("/xmu.dat")) or _FEFF_SITE.match(rel):
            continue
        run_dir = rel[: -len("xmu.dat")].rstrip("/")
        record_id = PurePosixPath(run_dir).name if run_dir else tree.root.name
        if not wanted(record_id):
            continue
        try:
            structure, site = _feff_inp_structure(tree, f"{run_dir}/feff.inp" if run_dir else "feff.inp")
            yield _feff_record(tree, rel, record_id, record_id, structure, site,
                               {"structure_from": "feff.inp"})
        except (ValueError, KeyError, OSError) as exc:
            report.add_problem(record_id, f"unreadable: {exc}")


def _iter_xanesnet(tree: SourceTree, element: str | None, report: LoadReport,
                   wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    spectra: dict[tuple[str, str], str] = {}
    others: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for rel in tree.paths:
        match = _XANESNET_SPECTRUM.match(rel)
        if match:
            spectra[(match["prefix"], match["name"])] = rel
            continue
        match = _XANESNET_OTHER.match(rel)
        if match:
            others[(match["prefix"], match["name"])][match["kind"]] = rel
    # Only folders that hold a spectra/ folder are XANESNET sets; in them every
    # xyz without a spectrum is reported.
    prefixes = {p for p, _ in spectra}
    for (prefix, name), kinds in sorted(others.items()):
        if prefix in prefixes and (prefix, name) not in spectra and "xyz" in kinds and wanted(name):
            report.add_problem(name, f"unreadable: no spectra/{name}.txt beside {kinds['xyz']}")
    for (prefix, name), spec_rel in sorted(spectra.items()):
        if not wanted(name):
            continue
        try:
            yield _xanesnet_record(tree, prefix, name, spec_rel, others.get((prefix, name), {}), element)
        except (ValueError, KeyError, OSError) as exc:
            report.add_problem(name, f"unreadable: {exc}")


def _xanesnet_record(tree: SourceTree, prefix: str, name: str, spec_rel: str,
                     kinds: dict[str, str], element: str | None) -> SpectrumRecord:
    xyz_rel = kinds.get("xyz", f"{prefix}xyz/{name}.xyz")
    if xyz_rel not in tree:
        raise ValueError(f"no structure {tree.display(xyz_rel)}")
    spectrum = parse_fdmnes(tree.read_text(spec_rel), tree.display(spec_rel))
    raw = None
    if "raw" in kinds:
        raw = parse_fdmnes(tree.read_text(kinds["raw"]), tree.display(kinds["raw"]))
    structure = tree.read_structure(xyz_rel)

    header_z = None
    if raw is not None and isinstance(raw.metadata["header"].get("Z"), float):
        header_z = int(raw.metadata["header"]["Z"])
    if element is not None:
        z = atomic_number(element)
    elif header_z is not None:
        z = header_z
    else:
        z = int(structure.atomic_numbers[0])
    candidates = np.flatnonzero(structure.atomic_numbers == z)
    if len(candidates) == 0:
        raise ValueError(f"no {element_symbol(z)} atom in {tree.display(xyz_rel)}")
    site = int(candidates[0])

    e_edge = spectrum.e0_ev
    if e_edge is None and raw is not None:
        e_edge = raw.e0_ev
    if e_edge is None:
        e_edge = k_edge_energy(z)
    if spectrum.energy_reference == "absolute":
        energy_rel = spectrum.energy_ev - e_edge
    else:
        energy_rel = spectrum.energy_ev
    fermi = raw.metadata["fermi_rel_ev"] if raw is not None else None
    return SpectrumRecord(
        record_id=name, group_id=name, structure=structure, site_index=site,
        energy_rel_ev=energy_rel, mu_raw=spectrum.mu, e0_abs_ev=fdmnes_e0(e_edge, fermi),
        source=tree.display(spec_rel),
        metadata={"code": "fdmnes", "e_edge_ev": e_edge, "fermi_rel_ev": fermi,
                  "raw": tree.display(kinds["raw"]) if "raw" in kinds else ""},
    )


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

    for record in _iter_feff(tree, element, report, wanted):
        report.n_loaded += 1
        yield record
    for record in _iter_feff_runs(tree, report, wanted):
        report.n_loaded += 1
        yield record
    for record in _iter_xanesnet(tree, element, report, wanted):
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
