"""Retrieval baseline: the training site whose spectrum is nearest, and its environment.

Distance: Euclidean over the concatenation of mu and ``derivative_weight * dmu/dE``
on the model grid (derivative per grid step), where the weight is
std(mu) / std(dmu/dE) over the library, so both halves count about equally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.inverse.clusters import ClusterSet

__all__ = ["RetrievalLibrary", "load_library"]


@dataclass(frozen=True, eq=False)
class RetrievalLibrary:
    """Training clusters (radius ``clusters.radius_a``) with their spectra.

    Attributes:
        clusters: the training sites.
        derivative_weight: weight of dmu/dE in the distance.
        features: (N, 2G) float32 the library's distance features.
    """

    clusters: ClusterSet
    derivative_weight: float
    features: np.ndarray

    @classmethod
    def from_clusters(cls, clusters: ClusterSet) -> "RetrievalLibrary":
        mu = clusters.mu.astype(np.float64)
        weight = float(mu.std() / max(np.gradient(mu, axis=1).std(), 1e-12))
        return cls(clusters, weight, _features(mu, weight).astype(np.float32))

    @property
    def energy_ev(self) -> np.ndarray:
        return self.clusters.energy_ev

    @property
    def edge_offset_ev(self) -> float:
        """Median energy (eV relative to the edge of the library's spectra) of the maximum of
        dmu/dE: where a measured spectrum's E0 (found the same way) belongs on the grid."""
        derivative = np.gradient(self.clusters.mu.astype(np.float64), axis=1)
        return float(np.median(self.energy_ev[derivative.argmax(axis=1)]))

    def nearest(self, mu: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(rows (k,), distances (k,))`` of the k nearest library spectra to (G,) ``mu``, nearest first."""
        query = _features(np.asarray(mu, dtype=np.float64)[None, :], self.derivative_weight)[0]
        distance = np.sqrt(((self.features - query) ** 2).sum(axis=1))
        k = min(int(k), len(distance))
        rows = np.argpartition(distance, k - 1)[:k]
        rows = rows[np.argsort(distance[rows], kind="stable")]
        return rows, distance[rows]


def _features(mu: np.ndarray, weight: float) -> np.ndarray:
    return np.concatenate([mu, weight * np.gradient(mu, axis=1)], axis=1)


def load_library(path: str | Path) -> RetrievalLibrary:
    """The library ``.npz`` written by :meth:`ClusterSet.save`.

    Raises:
        ValueError: missing or unreadable file.
    """
    try:
        return RetrievalLibrary.from_clusters(ClusterSet.load(path))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a retrieval library ({exc})") from exc
