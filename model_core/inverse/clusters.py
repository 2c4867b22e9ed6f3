"""Absorber-centred clusters: padded arrays of element types and positions.

A cluster is the absorber at the origin (row 0) followed by its neighbours
sorted by distance (the node order of :func:`model_core.graph.build_graph`).
Many clusters are stored padded to a common length ``A``; padding rows have
``z = 0`` and position 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.types import Structure

__all__ = ["ClusterSet", "cluster_structure"]


@dataclass(frozen=True, eq=False)
class ClusterSet:
    """N absorber-centred clusters with their spectra on one energy grid.

    Attributes:
        ids: (N,) record ids (str).
        energy_ev: (G,) float64 grid, eV relative to the edge.
        mu: (N, G) float32 spectra, normalized as the forward model's targets.
        z: (N, A) int16 atomic numbers, absorber in column 0, 0 = padding.
        pos: (N, A, 3) float32 Cartesian positions in Å, absorber at the origin.
        radius_a: crop radius in Å: every atom closer than this to the absorber is present.
    """

    ids: np.ndarray
    energy_ev: np.ndarray
    mu: np.ndarray
    z: np.ndarray
    pos: np.ndarray
    radius_a: float

    def __len__(self) -> int:
        return int(len(self.ids))

    @property
    def n_atoms(self) -> np.ndarray:
        """(N,) int64 atoms per cluster, absorber included."""
        return (self.z > 0).sum(axis=1).astype(np.int64)

    def take(self, rows: np.ndarray) -> "ClusterSet":
        """The clusters of ``rows`` (int indices) in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return ClusterSet(self.ids[rows], self.energy_ev, self.mu[rows], self.z[rows], self.pos[rows],
                          self.radius_a)

    def crop(self, radius_a: float) -> "ClusterSet":
        """The same clusters cut to ``radius_a`` (<= the current radius), re-padded."""
        if radius_a > self.radius_a + 1e-9:
            raise ValueError(f"cannot crop {self.radius_a} Å clusters to a larger {radius_a} Å")
        distance = np.linalg.norm(self.pos.astype(np.float64), axis=-1)
        keep = (self.z > 0) & (distance < radius_a + 1e-6)
        keep[:, 0] = self.z[:, 0] > 0
        width = max(1, int(keep.sum(axis=1).max()))
        z = np.zeros((len(self), width), dtype=np.int16)
        pos = np.zeros((len(self), width, 3), dtype=np.float32)
        for i in range(len(self)):
            # Rows are sorted by distance, so the kept atoms stay in order.
            sel = np.flatnonzero(keep[i])
            z[i, :len(sel)] = self.z[i, sel]
            pos[i, :len(sel)] = self.pos[i, sel]
        return ClusterSet(self.ids, self.energy_ev, self.mu, z, pos, float(radius_a))

    def structure(self, i: int) -> Structure:
        """Cluster ``i`` as a molecule-like :class:`Structure` (absorber index 0)."""
        n = int((self.z[i] > 0).sum())
        return cluster_structure(self.z[i, :n], self.pos[i, :n], name=str(self.ids[i]))

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Write a compressed ``.npz`` of plain arrays (loadable with ``allow_pickle=False``).

        ``half`` stores spectra and positions as float16 (positions then carry about
        1e-3 Å of rounding at first-shell distances, 4e-3 Å at 6 Å).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        dtype = np.float16 if half else np.float32
        np.savez_compressed(path, ids=self.ids.astype(str), energy_ev=self.energy_ev, mu=self.mu.astype(dtype),
                            z=self.z, pos=self.pos.astype(dtype), radius_a=np.float64(self.radius_a))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ClusterSet":
        """Read an ``.npz`` written by :meth:`save` (spectra and positions as float32)."""
        with np.load(path, allow_pickle=False) as data:
            return cls(ids=np.asarray(data["ids"]), energy_ev=np.asarray(data["energy_ev"], dtype=np.float64),
                       mu=np.asarray(data["mu"], dtype=np.float32), z=np.asarray(data["z"], dtype=np.int16),
                       pos=np.asarray(data["pos"], dtype=np.float32), radius_a=float(data["radius_a"]))


def cluster_structure(z: np.ndarray, positions_a: np.ndarray, name: str = "") -> Structure:
    """A cluster (absorber first, Å) as a non-periodic :class:`Structure` with absorber index 0."""
    z = np.asarray(z, dtype=np.int64)
    return Structure(atomic_numbers=z, positions=np.asarray(positions_a, dtype=np.float64),
                     absorber_index=0, name=name)
