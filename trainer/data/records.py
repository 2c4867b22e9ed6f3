"""One training example: an absorber site of a structure with its raw spectrum."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from model_core.types import Structure


@dataclass(frozen=True, eq=False)
class SpectrumRecord:
    """A simulated spectrum of one absorber site, before normalization.

    Attributes:
        record_id: unique id, e.g. ``"mp-1005792_008"`` (FEFF) or the complex name (FDMNES).
        group_id: the material / complex the site belongs to; splits must keep a
            group on one side.
        structure: the structure the site index refers to.
        site_index: 0-based index of the absorber in ``structure``.
        energy_rel_ev: (G,) float64 energies in eV relative to the edge, increasing.
        mu_raw: (G,) float64 absorption as the simulation wrote it.
        e0_abs_ev: absolute E0 target in eV (FEFF: its edge energy omega - e;
            FDMNES: E_edge + E_cut, the Fermi level), or None when unknown.
        source: the file the spectrum came from (``archive::member`` for archives).
        metadata: extra provenance (``e_edge_ev``, ``fermi_rel_ev``, ``code`` ...).
    """

    record_id: str
    group_id: str
    structure: Structure
    site_index: int
    energy_rel_ev: np.ndarray
    mu_raw: np.ndarray
    e0_abs_ev: float | None
    source: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        energy = np.array(self.energy_rel_ev, dtype=np.float64)
        mu = np.array(self.mu_raw, dtype=np.float64)
        if energy.ndim != 1 or energy.shape != mu.shape:
            raise ValueError(f"{self.record_id}: energy and mu must be 1-D of equal length")
        if not 0 <= int(self.site_index) < self.structure.n_atoms:
            raise ValueError(f"{self.record_id}: site index {self.site_index} outside the structure "
                             f"({self.structure.n_atoms} atoms)")
        energy.setflags(write=False)
        mu.setflags(write=False)
        object.__setattr__(self, "energy_rel_ev", energy)
        object.__setattr__(self, "mu_raw", mu)
        object.__setattr__(self, "site_index", int(self.site_index))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def absorber_z(self) -> int:
        """Atomic number of the absorber."""
        return int(self.structure.atomic_numbers[self.site_index])
