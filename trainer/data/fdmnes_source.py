"""The XANESNET FDMNES layout of a training-data source.

``xyz/<name>.xyz`` + ``spectra/<name>.txt`` (convolved: the training target)
+ optional ``raw/<name>.txt`` (unconvolved, carries the header). The absorber
is the first atom of the absorbing element; that element is the ``element``
argument, else the raw header's ``Z``, else the element of atom 0 (FDMNES's
own default absorber is the first atom listed). Energies are ``E - E_edge``
with ``E_edge`` from the raw header, else the tabulated K-edge energy of the
element (xraydb). E0 target = ``E_edge + E_cut`` (the Fermi level; see
:func:`fdmnes_e0`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable, Iterator

import numpy as np

from model_core.spectra.simulated import parse_fdmnes
from model_core.types import atomic_number, element_symbol
from trainer.data.records import SpectrumRecord
from trainer.data.trees import LoadReport, SourceTree

__all__ = ["fdmnes_e0", "iter_xanesnet", "k_edge_energy"]

_XANESNET_SPECTRUM = re.compile(r"^(?P<prefix>(?:.*/)?)spectra/(?P<name>[^/]+)\.txt$")
_XANESNET_OTHER = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<kind>xyz|raw)/(?P<name>[^/]+)\.(?:xyz|txt)$")

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


def iter_xanesnet(tree: SourceTree, element: str | None, report: LoadReport,
                   wanted: Callable[[str], bool]) -> Iterator[SpectrumRecord]:
    """Records of XANESNET folders (``xyz/`` + ``spectra/`` [+ ``raw/``])."""
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
