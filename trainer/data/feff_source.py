"""FEFF layouts of a training-data source.

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
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath
from typing import Callable, Iterator

import numpy as np

from model_core.spectra.simulated import parse_feff_xmu
from model_core.types import Structure, atomic_number
from trainer.data.records import SpectrumRecord
from trainer.data.trees import LoadReport, SourceTree

__all__ = ["iter_feff", "iter_feff_runs"]

_FEFF_SITE = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<material>[^/]+)/FEFF-XANES/"
                        r"(?P<site>\d+)_(?P<element>[A-Za-z]{1,2})/xmu\.dat$")


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


def iter_feff(tree: SourceTree, element: str | None, report: LoadReport,
               wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    """Records of the OmniXAS layout (``<material>/FEFF-XANES/<NNN>_<El>/xmu.dat``)."""
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


def iter_feff_runs(tree: SourceTree, report: LoadReport,
                    wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    """Records of any other folder with ``feff.inp`` and ``xmu.dat``."""
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
