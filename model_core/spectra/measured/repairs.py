"""Repairs of measured energies and absorption: bad rows, keV, order, repeated energies.

Each repair is safe (it cannot change a good spectrum) and reported as one
line; anything beyond them is refused with a :class:`MeasuredReadError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.spectra.measured.base import fail
from model_core.spectra.measured.channels import KEV_MAX_ENERGY, KEV_MAX_SPAN, MAX_DESCENT_FRACTION

#: Fewest data points accepted after repairs (fewer cannot be normalized).
MIN_POINTS = 10

#: Energies closer than this (eV) are duplicates of one measurement point.
DUPLICATE_TOL_EV = 1e-3


def repair(energy: np.ndarray, mu: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Make energies finite, in eV, strictly increasing; average repeated energies.

    keV detection: a scan whose largest energy is below 200 and whose span is
    below 5 is in keV (no absorption edge of interest lies below 200 eV with a
    span under 5 eV, while any keV scan does). More than 10 % backward steps
    are refused rather than sorted: the column is then probably not an energy
    or the rows mix several scans, and sorting would hide that.

    Returns:
        (energy_ev, mu, warnings) with (N',) arrays.

    Raises:
        MeasuredReadError: no rows, fewer than :data:`MIN_POINTS` usable points,
            badly scrambled or mostly repeated energies.
    """
    notes: list[str] = []
    if len(energy) == 0:
        raise fail(source, "no data rows")
    good = np.isfinite(energy) & np.isfinite(mu)
    dropped = int(len(energy) - np.count_nonzero(good))
    if dropped == len(energy):
        raise fail(source, "every row has NaN, infinite or invalid values")
    if dropped:
        energy, mu = energy[good], mu[good]
        notes.append(f"dropped {dropped} row{'s' if dropped > 1 else ''} with NaN, infinite or invalid values")
    if len(energy) < MIN_POINTS:
        raise fail(source, f"only {len(energy)} usable data points (need at least {MIN_POINTS})")

    span = float(energy.max() - energy.min())
    if 0 < float(energy.max()) < KEV_MAX_ENERGY and span < KEV_MAX_SPAN:
        energy = energy * 1000.0
        notes.append("energy given in keV, converted to eV")

    steps = np.diff(energy)
    descents = int(np.count_nonzero(steps < 0))
    if descents and np.all(steps <= 0):
        energy, mu = energy[::-1], mu[::-1]
        notes.append("energies were in decreasing order; reversed")
    elif descents:
        if descents > max(2, MAX_DESCENT_FRACTION * len(steps)):
            raise fail(source, f"energies are badly out of order ({descents} backward steps in "
                               f"{len(energy)} points); not an energy column or mixed scans?")
        order = np.argsort(energy, kind="stable")
        energy, mu = energy[order], mu[order]
        notes.append(f"sorted {descents} non-monotonic point{'s' if descents > 1 else ''}")

    # Group energies within DUPLICATE_TOL_EV of their predecessor and average
    # mu over each group: repeated readings of one monochromator position.
    new_group = np.concatenate([[True], np.diff(energy) > DUPLICATE_TOL_EV])
    n_groups = int(np.count_nonzero(new_group))
    if n_groups < len(energy):
        removed = len(energy) - n_groups
        if removed > len(energy) // 2:
            raise fail(source, f"{removed} of {len(energy)} energies are repeats; not an energy column?")
        ids = np.cumsum(new_group) - 1
        counts = np.bincount(ids)
        energy = np.bincount(ids, weights=energy) / counts
        mu = np.bincount(ids, weights=mu) / counts
        notes.append(f"removed {removed} duplicated energ{'ies' if removed > 1 else 'y'} (mu averaged)")
    if len(energy) < MIN_POINTS:
        raise fail(source, f"only {len(energy)} distinct energies (need at least {MIN_POINTS})")
    if not np.all(np.diff(energy) > 0):  # pragma: no cover - guaranteed by the steps above
        raise fail(source, "energies are not strictly increasing after repair")
    return energy, mu, notes
