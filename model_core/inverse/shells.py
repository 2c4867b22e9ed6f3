"""The first coordination shell of an absorber-centred cluster.

One definition everywhere in the inverse tools (issue 17): the neighbours closer
than ``FIRST_SHELL_FACTOR`` (1.15) times the nearest-neighbour distance, with the
same 1e-6 Å slack as :func:`model_core.sites.coordination_info` (which uses
1.2 by default for the site table and gives no distances or elements).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from model_core.types import element_symbol

__all__ = ["FIRST_SHELL_FACTOR", "FirstShell", "first_shell"]

FIRST_SHELL_FACTOR = 1.15


@dataclass(frozen=True)
class FirstShell:
    """Coordination number, mean distance (Å; NaN without neighbours) and element counts."""

    coordination_number: int
    distance_a: float
    neighbours: Mapping[str, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbours", MappingProxyType(dict(self.neighbours)))


def first_shell(atomic_numbers: np.ndarray, positions_a: np.ndarray, factor: float = FIRST_SHELL_FACTOR) -> FirstShell:
    """The first shell around atom 0 of a cluster.

    Args:
        atomic_numbers: (n,) atomic numbers, absorber first (rows with 0 are padding and ignored).
        positions_a: (n, 3) Å; distances are measured from row 0.
        factor: shell edge as a multiple of the nearest-neighbour distance.

    Returns:
        :class:`FirstShell`; neighbour counts sorted by element symbol.
    """
    z = np.asarray(atomic_numbers, dtype=np.int64)
    pos = np.asarray(positions_a, dtype=np.float64)
    others = np.flatnonzero(z > 0)
    others = others[others > 0]
    if len(others) == 0:
        return FirstShell(0, float("nan"), {})
    distance = np.linalg.norm(pos[others] - pos[0], axis=1)
    inside = distance < factor * distance.min() + 1e-6
    counts: dict[str, int] = {}
    for value in z[others[inside]]:
        symbol = element_symbol(int(value))
        counts[symbol] = counts.get(symbol, 0) + 1
    return FirstShell(int(inside.sum()), float(distance[inside].mean()), dict(sorted(counts.items())))
