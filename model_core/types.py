"""Small immutable data types passed between the layers (readers, model, GUI).

Everything here is numpy; torch tensors never leave :mod:`model_core`'s
internals. Arrays are made read-only on construction so a shared object can
never be changed behind another layer's back; "modifying" methods return new
objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

# Element symbols indexed by atomic number (index 0 is a placeholder for "X").
ELEMENT_SYMBOLS: tuple[str, ...] = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)
_SYMBOL_TO_Z = {s.lower(): z for z, s in enumerate(ELEMENT_SYMBOLS) if z > 0}


def atomic_number(symbol: str | int) -> int:
    """Atomic number of an element symbol ("Cu", "cu") or of a number-like string ("29").

    Raises:
        ValueError: if the symbol is not an element.
    """
    if isinstance(symbol, (int, np.integer)):
        z = int(symbol)
    else:
        text = str(symbol).strip()
        if text.isdigit():
            z = int(text)
        else:
            z = _SYMBOL_TO_Z.get(text.lower(), -1)
    if not 0 < z < len(ELEMENT_SYMBOLS):
        raise ValueError(f"not a chemical element: {symbol!r}")
    return z


def element_symbol(z: int) -> str:
    """Element symbol of atomic number ``z``."""
    return ELEMENT_SYMBOLS[int(z)]


def _frozen_array(values: Any, dtype: Any, shape_tail: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    if shape_tail is not None and array.shape[1:] != shape_tail:
        raise ValueError(f"expected shape (n, {', '.join(map(str, shape_tail))}), got {array.shape}")
    array.setflags(write=False)
    return array


def _frozen_mapping(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, eq=False)
class Structure:
    """An atomic structure: a periodic crystal or a finite molecule/cluster.

    Attributes:
        atomic_numbers: (N,) int64 atomic numbers.
        positions: (N, 3) float64 Cartesian positions in Å.
        cell: (3, 3) float64 lattice vectors as rows in Å, or ``None`` for a molecule.
        pbc: periodicity along each lattice vector.
        source: the path the structure was read from ("" when built in memory).
        name: a short human-readable name (file stem or formula).
        absorber_index: an absorber designated by the file itself (FEFF potential 0), else None.
        info: free-form metadata from the reader (space group from the file, title, ...).
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    pbc: tuple[bool, bool, bool] = (False, False, False)
    source: str = ""
    name: str = ""
    absorber_index: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        numbers = _frozen_array(self.atomic_numbers, np.int64)
        positions = _frozen_array(self.positions, np.float64, (3,))
        if numbers.ndim != 1 or len(numbers) != len(positions):
            raise ValueError("atomic_numbers and positions must have the same length")
        if len(numbers) == 0:
            raise ValueError("a structure needs at least one atom")
        if np.any(numbers < 1) or np.any(numbers >= len(ELEMENT_SYMBOLS)):
            raise ValueError("atomic numbers must be real elements (1..118)")
        if not np.all(np.isfinite(positions)):
            raise ValueError("positions contain NaN or infinite values")
        object.__setattr__(self, "atomic_numbers", numbers)
        object.__setattr__(self, "positions", positions)
        pbc = tuple(bool(p) for p in self.pbc)
        if self.cell is not None:
            cell = _frozen_array(self.cell, np.float64)
            if cell.shape != (3, 3):
                raise ValueError(f"cell must be 3x3, got {cell.shape}")
            if any(pbc) and abs(np.linalg.det(cell)) < 1e-6:
                raise ValueError("the cell has zero volume")
            object.__setattr__(self, "cell", cell)
        elif any(pbc):
            raise ValueError("a periodic structure needs a cell")
        object.__setattr__(self, "pbc", pbc)
        object.__setattr__(self, "info", _frozen_mapping(self.info))

    @property
    def n_atoms(self) -> int:
        return int(len(self.atomic_numbers))

    @property
    def is_periodic(self) -> bool:
        return any(self.pbc)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(ELEMENT_SYMBOLS[z] for z in self.atomic_numbers)

    @property
    def elements(self) -> tuple[str, ...]:
        """Distinct element symbols in order of first appearance."""
        seen: dict[str, None] = {}
        for symbol in self.symbols:
            seen.setdefault(symbol, None)
        return tuple(seen)

    @property
    def formula(self) -> str:
        counts: dict[str, int] = {}
        for symbol in self.symbols:
            counts[symbol] = counts.get(symbol, 0) + 1
        return "".join(f"{s}{n if n > 1 else ''}" for s, n in counts.items())

    def indices_of(self, element: str | int) -> np.ndarray:
        """(M,) indices of all atoms of ``element``."""
        return np.flatnonzero(self.atomic_numbers == atomic_number(element))

    def replace(self, **changes: Any) -> "Structure":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class SiteSymmetry:
    """Symmetry analysis of a structure, one entry per input atom.

    For a molecule every atom is its own group with multiplicity 1 and an empty
    Wyckoff label.

    Attributes:
        group: (N,) int64 id of the symmetry-equivalence group of each atom.
        wyckoff: per-atom Wyckoff label such as "4c" ("" when not periodic).
        multiplicity: (N,) int64 number of atoms in the cell equivalent to each atom.
        spacegroup_symbol: Hermann-Mauguin symbol, or "" for molecules.
        spacegroup_number: International Tables number, or 0.
    """

    group: np.ndarray
    wyckoff: tuple[str, ...]
    multiplicity: np.ndarray
    spacegroup_symbol: str = ""
    spacegroup_number: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", _frozen_array(self.group, np.int64))
        object.__setattr__(self, "multiplicity", _frozen_array(self.multiplicity, np.int64))
        object.__setattr__(self, "wyckoff", tuple(self.wyckoff))

    def representatives(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduce atom indices to one representative per equivalence group.

        Returns:
            (representatives, weights): the first index of each group in ``indices``
            and how many of ``indices`` it stands for.
        """
        reps: dict[int, int] = {}
        counts: dict[int, int] = {}
        for i in np.asarray(indices, dtype=np.int64):
            g = int(self.group[i])
            reps.setdefault(g, int(i))
            counts[g] = counts.get(g, 0) + 1
        order = list(reps)
        return (np.array([reps[g] for g in order], dtype=np.int64),
                np.array([counts[g] for g in order], dtype=np.float64))


@dataclass(frozen=True, eq=False)
class SiteSelection:
    """Absorber sites to predict and their weights in the site average.

    Attributes:
        indices: (M,) int64 0-based indices into the structure's atoms.
        weights: (M,) float64 weights of each site in the average (multiplicities
            when equivalent sites were reduced to one representative; ones otherwise).
    """

    indices: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        indices = _frozen_array(self.indices, np.int64)
        if indices.ndim != 1:
            raise ValueError("site indices must be one-dimensional")
        weights = np.ones(len(indices)) if self.weights is None else self.weights
        weights = _frozen_array(weights, np.float64)
        if weights.shape != indices.shape:
            raise ValueError("one weight per site is needed")
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "weights", weights)

    def __len__(self) -> int:
        return int(len(self.indices))


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One XANES spectrum.

    Attributes:
        energy_ev: (G,) float64 energies in eV, strictly increasing.
        mu: (G,) float64 absorption.
        label: a short name for legends.
        energy_reference: "edge" when ``energy_ev`` is relative to the edge (E - E0),
            "absolute" otherwise.
        e0_ev: the absolute edge energy in eV when known.
        metadata: free-form provenance (source file, model name, normalization parameters, ...).
        grid_origin_ev: for an edge-relative spectrum whose zero is a fixed energy rather
            than its own E0 (FDMNES: the tabulated edge, while E0 is the Fermi level), that
            energy in eV; None when the zero is ``e0_ev``. See :attr:`zero_ev`.
    """

    energy_ev: np.ndarray
    mu: np.ndarray
    label: str = ""
    energy_reference: str = "absolute"
    e0_ev: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    grid_origin_ev: float | None = None

    def __post_init__(self) -> None:
        energy = _frozen_array(self.energy_ev, np.float64)
        mu = _frozen_array(self.mu, np.float64)
        if energy.ndim != 1 or energy.shape != mu.shape:
            raise ValueError(f"energy and mu must be 1-D of equal length, got {energy.shape} and {mu.shape}")
        if self.energy_reference not in ("edge", "absolute"):
            raise ValueError("energy_reference must be 'edge' or 'absolute'")
        object.__setattr__(self, "energy_ev", energy)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))

    def replace(self, **changes: Any) -> "Spectrum":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def zero_ev(self) -> float | None:
        """Absolute energy of ``energy_ev == 0`` of an edge-relative spectrum: where it is
        placed on the absolute axis (``grid_origin_ev`` when set, else ``e0_ev``; None
        when neither is known)."""
        if self.grid_origin_ev is not None:
            return float(self.grid_origin_ev)
        return None if self.e0_ev is None else float(self.e0_ev)


@dataclass(frozen=True, eq=False)
class SiteAttention:
    """Attention of one absorber's readout over the atoms of its local graph.

    Attributes:
        atom_index: (K,) int64 input-atom index of each graph node (periodic images of
            one atom appear several times).
        image: (K, 3) int64 periodic image of each node.
        distance: (K,) float64 distance from the absorber in Å.
        weight: (K,) float64 attention weight (sums to 1 over non-absorber nodes;
            0 for the absorber itself).
    """

    atom_index: np.ndarray
    image: np.ndarray
    distance: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "atom_index", _frozen_array(self.atom_index, np.int64))
        object.__setattr__(self, "image", _frozen_array(self.image, np.int64).reshape(-1, 3))
        object.__setattr__(self, "distance", _frozen_array(self.distance, np.float64))
        object.__setattr__(self, "weight", _frozen_array(self.weight, np.float64))

    def per_atom(self, n_atoms: int) -> np.ndarray:
        """(n_atoms,) attention summed over periodic images of each input atom."""
        return np.bincount(self.atom_index, weights=self.weight, minlength=n_atoms)


@dataclass(frozen=True)
class Band:
    """What the band ``mu_lo..mu_hi`` of a :class:`Prediction` means.

    Attributes:
        level: the central-interval probability it was calibrated for (0.9: nine in ten
            held-out points of the model's own domain fall inside).
        method: how it was calibrated (see :mod:`model_core.trust.calibration`).
    """

    level: float
    method: str = ""

    @property
    def label(self) -> str:
        """Legend text, e.g. "90% band"."""
        return f"{100 * self.level:.0f}% band"


def __getattr__(name: str) -> Any:
    # Prediction lives in model_core.prediction (it needs the types above); importing it
    # lazily keeps ``from model_core.types import Prediction`` working without a cycle.
    if name == "Prediction":
        from model_core.prediction import Prediction

        return Prediction
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
