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
from typing import Any, Mapping, Sequence

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


@dataclass(frozen=True, eq=False)
class Prediction:
    """Model prediction for a set of absorber sites of one structure.

    Attributes:
        energy_ev: (G,) model grid, eV relative to the edge.
        site_indices: (M,) absorber indices into the structure.
        weights: (M,) weight of each site in the average.
        mu: (M, G) predicted normalized absorption per site.
        average: (G,) weighted mean over the sites.
        e0_ev: (M,) predicted absolute edge energies in eV, or None without an E0 head.
        attention: one :class:`SiteAttention` per site (empty when the model has none).
        model_name: name of the model that made it.
        trained: False when the model has no trained weights.
        element: absorbing element symbol.
        edge: absorption edge ("K").
        mu_spread: (M, G) standard deviation over the members of an ensemble model
            (their disagreement, a rough uncertainty), or None for a single model.
        mu_lo, mu_hi: (M, G) calibrated central interval per site (see ``band``), or None
            when the model carries no spread calibration (then only the raw, uncalibrated
            ``mu_spread`` exists).
        band: level and method of ``mu_lo``/``mu_hi`` (None without them).
        domain_score: (M,) distance of each site's learned environment to the training
            data, scaled so 95% of validation sites score <= 1 (> 1: outside the model's
            domain; see :mod:`model_core.trust.domain`), or None without a domain index.
        e0_spread_ev: (M,) standard deviation of ``e0_ev`` over the members of an ensemble
            (eV), or None for a single model or without an E0 head.
        e0_lo_ev, e0_hi_ev: (M,) calibrated central interval of each site's absolute E0 in
            eV (see ``e0_band``), or None when the model carries no E0 calibration.
        e0_band: level and method of ``e0_lo_ev``/``e0_hi_ev`` (None without them).
        grid_origin_ev: the absolute energy of the grid's zero when the model's grid is
            relative to one fixed energy (FDMNES data: the tabulated edge, 7112 eV for Fe,
            while ``e0_ev`` is the Fermi level); None when each site's grid is relative to
            its own E0 (FEFF). Every placement on the absolute axis goes through
            :attr:`site_zero_ev`.
    """

    energy_ev: np.ndarray
    site_indices: np.ndarray
    weights: np.ndarray
    mu: np.ndarray
    average: np.ndarray
    e0_ev: np.ndarray | None = None
    attention: tuple[SiteAttention, ...] = ()
    model_name: str = ""
    trained: bool = False
    element: str = ""
    edge: str = "K"
    mu_spread: np.ndarray | None = None
    mu_lo: np.ndarray | None = None
    mu_hi: np.ndarray | None = None
    band: Band | None = None
    domain_score: np.ndarray | None = None
    e0_spread_ev: np.ndarray | None = None
    e0_lo_ev: np.ndarray | None = None
    e0_hi_ev: np.ndarray | None = None
    e0_band: Band | None = None
    grid_origin_ev: float | None = None

    def __post_init__(self) -> None:
        for name, dtype in (("energy_ev", np.float64), ("site_indices", np.int64),
                            ("weights", np.float64), ("mu", np.float64), ("average", np.float64)):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype))
        if (self.mu_lo is None) != (self.band is None) or (self.mu_lo is None) != (self.mu_hi is None):
            raise ValueError("mu_lo, mu_hi and band come together")
        if not (self.e0_lo_ev is None) == (self.e0_hi_ev is None) == (self.e0_band is None):
            raise ValueError("e0_lo_ev, e0_hi_ev and e0_band come together")
        for name in ("e0_ev", "mu_spread", "mu_lo", "mu_hi", "domain_score", "e0_spread_ev", "e0_lo_ev", "e0_hi_ev"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen_array(getattr(self, name), np.float64))
        object.__setattr__(self, "attention", tuple(self.attention))

    @classmethod
    def combine(cls, parts: Sequence["Prediction"], weights: np.ndarray) -> "Prediction":
        """Join single-site predictions into one multi-site Prediction.

        Args:
            parts: single-site predictions of one model on one structure (as :meth:`split` makes).
            weights: (M,) weight of each part in the average.

        Returns:
            The prediction of all the parts' sites: ``average`` is the weighted mean of
            their spectra, as :meth:`Predictor.predict` computes it. ``e0_ev``,
            ``attention``, ``mu_spread``, the band, ``domain_score``, ``e0_spread_ev`` and
            the E0 interval are kept only when every part has them.
        """
        first = parts[0]
        mu = np.stack([p.mu[0] for p in parts])
        weights = np.asarray(weights, dtype=np.float64)
        e0 = None
        if all(p.e0_ev is not None and len(p.e0_ev) for p in parts):
            e0 = np.array([float(p.e0_ev[0]) for p in parts])
        attention = tuple(p.attention[0] for p in parts) if all(p.attention for p in parts) else ()
        def stacked(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.stack([v[0] for v in values])

        spread, lo, hi, score, e0_spread, e0_lo, e0_hi = (stacked(n) for n in (
            "mu_spread", "mu_lo", "mu_hi", "domain_score", "e0_spread_ev", "e0_lo_ev", "e0_hi_ev"))
        band = first.band if lo is not None and hi is not None and all(p.band == first.band for p in parts) else None
        lo, hi = (lo, hi) if band is not None else (None, None)
        e0_band = (first.e0_band if e0_lo is not None and all(p.e0_band == first.e0_band for p in parts)
                   else None)
        e0_lo, e0_hi = (e0_lo, e0_hi) if e0_band is not None else (None, None)
        return cls(
            energy_ev=first.energy_ev, site_indices=np.array([int(p.site_indices[0]) for p in parts]),
            weights=weights, mu=mu, average=np.average(mu, axis=0, weights=weights), e0_ev=e0,
            attention=attention, model_name=first.model_name, trained=first.trained,
            element=first.element, edge=first.edge, mu_spread=spread,
            mu_lo=lo, mu_hi=hi, band=band, domain_score=score,
            e0_spread_ev=e0_spread, e0_lo_ev=e0_lo, e0_hi_ev=e0_hi, e0_band=e0_band,
            grid_origin_ev=first.grid_origin_ev,
        )

    def split(self) -> list["Prediction"]:
        """One single-site Prediction (weight one) per site, in site order; inverse of :meth:`combine`."""
        out = []
        for k in range(len(self.site_indices)):
            out.append(Prediction(
                energy_ev=self.energy_ev, site_indices=self.site_indices[k:k + 1],
                weights=np.ones(1), mu=self.mu[k:k + 1], average=self.mu[k],
                e0_ev=None if self.e0_ev is None else self.e0_ev[k:k + 1],
                attention=(self.attention[k],) if len(self.attention) > k else (),
                model_name=self.model_name, trained=self.trained,
                element=self.element, edge=self.edge,
                mu_spread=None if self.mu_spread is None else self.mu_spread[k:k + 1],
                mu_lo=None if self.mu_lo is None else self.mu_lo[k:k + 1],
                mu_hi=None if self.mu_hi is None else self.mu_hi[k:k + 1], band=self.band,
                domain_score=None if self.domain_score is None else self.domain_score[k:k + 1],
                e0_spread_ev=None if self.e0_spread_ev is None else self.e0_spread_ev[k:k + 1],
                e0_lo_ev=None if self.e0_lo_ev is None else self.e0_lo_ev[k:k + 1],
                e0_hi_ev=None if self.e0_hi_ev is None else self.e0_hi_ev[k:k + 1], e0_band=self.e0_band,
                grid_origin_ev=self.grid_origin_ev,
            ))
        return out

    @property
    def average_spread(self) -> np.ndarray | None:
        """(G,) weighted mean over sites of ``mu_spread`` (None for a single model): an upper
        bound of the members' spread of :attr:`average`."""
        if self.mu_spread is None:
            return None
        return np.average(self.mu_spread, axis=0, weights=self.weights)

    @property
    def average_band(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(G,) lower and upper bounds for :attr:`average`: the weighted means of the sites'
        bounds (None without a band). Conservative: it assumes the sites' errors add up
        rather than partly cancel."""
        if self.mu_lo is None or self.mu_hi is None:
            return None
        return (np.average(self.mu_lo, axis=0, weights=self.weights),
                np.average(self.mu_hi, axis=0, weights=self.weights))

    @property
    def e0_halfwidth_ev(self) -> np.ndarray | None:
        """(M,) half-width in eV of each site's calibrated E0 interval (None without one)."""
        if self.e0_lo_ev is None or self.e0_hi_ev is None:
            return None
        return 0.5 * (self.e0_hi_ev - self.e0_lo_ev)

    @property
    def average_e0_ev(self) -> float | None:
        """Weighted mean over sites of ``e0_ev`` (None without an E0 head)."""
        if self.e0_ev is None or not len(self.e0_ev):
            return None
        return float(np.average(self.e0_ev, weights=self.weights))

    @property
    def average_e0_spread_ev(self) -> float | None:
        """Weighted mean over sites of ``e0_spread_ev``: an upper bound of the members'
        spread of :attr:`average_e0_ev` (None for a single model)."""
        if self.e0_spread_ev is None or not len(self.e0_spread_ev):
            return None
        return float(np.average(self.e0_spread_ev, weights=self.weights))

    @property
    def average_e0_interval_ev(self) -> tuple[float, float] | None:
        """Bounds for :attr:`average_e0_ev`: the weighted means of the sites' E0 bounds (None
        without an E0 calibration); conservative, as :attr:`average_band`."""
        if self.e0_lo_ev is None or self.e0_hi_ev is None or not len(self.e0_lo_ev):
            return None
        return (float(np.average(self.e0_lo_ev, weights=self.weights)),
                float(np.average(self.e0_hi_ev, weights=self.weights)))

    @property
    def site_zero_ev(self) -> np.ndarray | None:
        """(M,) absolute energy of each site's grid zero: where its spectrum goes on the
        absolute axis (``grid_origin_ev`` for every site when the grid has a fixed origin,
        else each site's ``e0_ev``; None when neither is known)."""
        if self.grid_origin_ev is not None:
            return np.full(len(self.site_indices), float(self.grid_origin_ev))
        if self.e0_ev is None or not len(self.e0_ev):
            return None
        return self.e0_ev

    @property
    def average_zero_ev(self) -> float | None:
        """Absolute energy of the zero of :attr:`average` (the weighted mean of
        :attr:`site_zero_ev`), or None."""
        zero = self.site_zero_ev
        return None if zero is None else float(np.average(zero, weights=self.weights))

    def site_spectrum(self, k: int) -> Spectrum:
        """Spectrum of the k-th predicted site (edge-relative energies)."""
        e0 = None if self.e0_ev is None else float(self.e0_ev[k])
        return Spectrum(self.energy_ev, self.mu[k], label=f"site {int(self.site_indices[k])}",
                        energy_reference="edge", e0_ev=e0,
                        metadata={"model": self.model_name, "trained": self.trained},
                        grid_origin_ev=self.grid_origin_ev)

    def average_spectrum(self) -> Spectrum:
        """Multiplicity-weighted average spectrum (edge-relative energies)."""
        return Spectrum(self.energy_ev, self.average, label="average", energy_reference="edge",
                        e0_ev=self.average_e0_ev, metadata={"model": self.model_name, "trained": self.trained},
                        grid_origin_ev=self.grid_origin_ev)
