"""Coordination shells of an absorber's neighbours, by distance (used by :mod:`.refine`).

First shell everywhere in the project: the neighbours within 1.15 x the nearest-neighbour
distance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FIRST_SHELL_FACTOR", "SHELL_GAP_A", "find_shells", "first_shell_mask"]

#: Sorted distances are split into shells at gaps larger than this (Å).
SHELL_GAP_A = 0.25
#: First shell: neighbours within this factor times the nearest-neighbour distance.
FIRST_SHELL_FACTOR = 1.15


def find_shells(distances: np.ndarray, gap_a: float = SHELL_GAP_A) -> np.ndarray:
    """(n,) shell number (1, 2, ...) of each distance: sorted distances split at gaps > ``gap_a``."""
    distances = np.asarray(distances, dtype=np.float64)
    order = np.argsort(distances)
    breaks = np.concatenate([[0], np.cumsum(np.diff(distances[order]) > gap_a)])
    shells = np.empty(len(distances), dtype=np.int64)
    shells[order] = breaks + 1
    return shells


def first_shell_mask(distances: np.ndarray) -> np.ndarray:
    """(n,) True for neighbours within FIRST_SHELL_FACTOR x the nearest distance (distances > 0)."""
    distances = np.asarray(distances, dtype=np.float64)
    return distances <= FIRST_SHELL_FACTOR * distances.min() + 1e-9
