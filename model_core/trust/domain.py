"""Domain score: how far a site's learned environment lies from the training data.

The embedding is the first ensemble member's readout vector (``XANE3.forward``'s
``"readout"``, (B, F): the invariant summary of the absorber's environment that the
spectrum head reads). The first member rather than the members' mean because members may
differ in architecture (and so in F), and one member's geometry is enough to tell near from
far; it costs nothing, as that forward pass is made anyway.

Index (fitted by ``xanes-calibrate`` on the training sites):

1. standardize each feature with the training mean and standard deviation;
2. project on the leading principal components of the standardized training embeddings
   (at most ``N_COMPONENTS``: a few MB would be wasted on directions that carry noise);
3. keep the projected training embeddings as float16.

The raw distance of a site is the mean Euclidean distance to its ``k`` nearest training
embeddings in that space; the score divides it by the 95% quantile of the validation sites'
raw distances, so 95% of validation sites score <= 1, and > 1 reads "farther from the
training data than 19 in 20 held-out sites of the model's own kind".

Stored inside the checkpoint as ``"domain_index"`` (see :meth:`DomainIndex.to_dict`), so a
calibrated checkpoint file is self-contained and any checkpoint can be calibrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np

N_COMPONENTS = 32
K_NEIGHBOURS = 5
LEVEL = 0.95
# Rows of the query block in the brute-force distance computation (memory ~ rows * N).
_CHUNK = 1024


@dataclass(frozen=True, eq=False)
class DomainIndex:
    """Training embeddings reduced for nearest-neighbour distances.

    Attributes:
        mean, std: (F,) standardization of the raw embedding.
        components: (F, P) principal directions (columns) of the standardized training set.
        train: (N, P) float16 projected training embeddings.
        k: neighbours averaged.
        threshold: raw distance mapped to score 1 (the ``level`` quantile over validation).
        level: share of validation sites scoring <= 1.
        info: provenance (data, ids, held-out share <= 1).
    """

    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    train: np.ndarray
    k: int = K_NEIGHBOURS
    threshold: float = 1.0
    level: float = LEVEL
    info: Mapping[str, Any] | None = None

    @property
    def n_features(self) -> int:
        return int(len(self.mean))

    @cached_property
    def _train64(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, P) float64 training points and their squared norms, converted once."""
        train = self.train.astype(np.float64)
        return train, np.einsum("ij,ij->i", train, train)

    def project(self, embedding: np.ndarray) -> np.ndarray:
        """(M, F) raw embeddings -> (M, P) standardized, projected."""
        x = (np.asarray(embedding, dtype=np.float64) - self.mean) / self.std
        return x @ self.components

    def distance(self, embedding: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """(M,) mean distance to the ``k`` nearest training embeddings.

        Args:
            embedding: (M, F) raw readout vectors.
            exclude_self: skip the nearest one (for training sites, which are in the index).
        """
        x = self.project(embedding)
        train, train_sq = self._train64
        k = min(self.k + int(exclude_self), len(train))
        out = np.empty(len(x))
        for start in range(0, len(x), _CHUNK):
            block = x[start:start + _CHUNK]
            sq = np.einsum("ij,ij->i", block, block)[:, None] + train_sq[None] - 2 * block @ train.T
            nearest = np.sqrt(np.maximum(np.partition(sq, k - 1, axis=1)[:, :k], 0.0))
            nearest.sort(axis=1)
            out[start:start + _CHUNK] = nearest[:, int(exclude_self):].mean(axis=1)
        return out

    def score(self, embedding: np.ndarray) -> np.ndarray:
        """(M,) domain score: :meth:`distance` / ``threshold`` (> 1: outside the domain)."""
        return self.distance(embedding) / self.threshold

    def with_threshold(self, validation_embedding: np.ndarray, level: float = LEVEL,
                       info: Mapping[str, Any] | None = None) -> "DomainIndex":
        """A copy whose score is <= 1 for ``level`` of the given validation sites."""
        threshold = float(np.quantile(self.distance(validation_embedding), level))
        return DomainIndex(self.mean, self.std, self.components, self.train, self.k,
                           max(threshold, 1e-12), float(level), dict(info or self.info or {}))

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint entry (float16 training points, float32 projection)."""
        import torch

        return {"mean": torch.as_tensor(self.mean, dtype=torch.float32),
                "std": torch.as_tensor(self.std, dtype=torch.float32),
                "components": torch.as_tensor(self.components, dtype=torch.float32),
                "train": torch.as_tensor(self.train, dtype=torch.float16),
                "k": int(self.k), "threshold": float(self.threshold), "level": float(self.level),
                "embedding": "readout of member 0", "info": dict(self.info or {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DomainIndex":
        """Read :meth:`to_dict`'s entry."""
        def array(name: str, dtype: Any = np.float64) -> np.ndarray:
            value = data[name]
            value = value.float().numpy() if hasattr(value, "numpy") else value
            return np.asarray(value, dtype=dtype)

        return cls(mean=array("mean"), std=array("std"), components=array("components"),
                   train=array("train", np.float16), k=int(data.get("k", K_NEIGHBOURS)),
                   threshold=float(data["threshold"]), level=float(data.get("level", LEVEL)),
                   info=dict(data.get("info") or {}))


def fit_domain_index(train_embedding: np.ndarray, validation_embedding: np.ndarray,
                     k: int = K_NEIGHBOURS, n_components: int = N_COMPONENTS, level: float = LEVEL,
                     info: Mapping[str, Any] | None = None) -> DomainIndex:
    """Build the index from training embeddings and scale it on validation embeddings.

    Args:
        train_embedding: (N, F) readout vectors of the training sites.
        validation_embedding: (V, F) readout vectors of validation sites.
        k: neighbours averaged.
        n_components: principal components kept (at most F and N).
        level: share of validation sites to score <= 1.

    Raises:
        ValueError: fewer than ``k + 1`` training sites or mismatched feature counts.
    """
    train = np.asarray(train_embedding, dtype=np.float64)
    val = np.asarray(validation_embedding, dtype=np.float64)
    if train.ndim != 2 or val.ndim != 2 or train.shape[1] != val.shape[1]:
        raise ValueError(f"embeddings must be (N, F) with one F, got {train.shape} and {val.shape}")
    if len(train) <= k or len(val) < 1:
        raise ValueError(f"the domain index needs more than {k} training and one validation site")
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 1e-8 * max(float(std.max()), 1e-30), std, 1.0)  # constant features
    z = (train - mean) / std
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    p = min(int(n_components), vt.shape[0])
    components = vt[:p].T  # (F, P)
    projected = (z @ components).astype(np.float16)
    index = DomainIndex(mean, std, components, projected, int(k), 1.0, float(level), info)
    return index.with_threshold(val, level, info)
