"""FEFF ``xmu.dat`` and FDMNES outputs read as spectra to compare with, by :mod:`model_core.spectra.simulated`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.spectra.measured.base import ChannelChoice, MeasuredReadError, Table


def _read(path: Path, kind: str) -> Table:
    from model_core.spectra import simulated

    reader = simulated.read_feff_xmu if kind == "feff" else simulated.read_fdmnes
    try:
        spectrum = reader(path)
    except ValueError as exc:
        message = str(exc)
        raise MeasuredReadError(message if str(path) in message else f"{path}: {message}") from exc
    notes: list[str] = []
    energy = np.asarray(spectrum.energy_ev, dtype=np.float64)
    if spectrum.energy_reference == "edge":
        if spectrum.e0_ev is not None:
            energy = energy + float(spectrum.e0_ev)
            notes.append(f"energies were relative to the edge; added the file's edge energy "
                         f"{spectrum.e0_ev:.2f} eV")
        else:
            notes.append("energies are relative to the edge and the file gives no edge energy")
    metadata = {"format": kind, "e0_hint_ev": spectrum.e0_ev, "simulated": True}
    return Table(columns={"energy": energy, "mu": np.asarray(spectrum.mu, dtype=np.float64)},
                 metadata=metadata, label=spectrum.label or path.stem,
                 fixed=ChannelChoice(energy="energy", numerator="mu", mode="mu"), notes=notes)


def read_feff(path: Path, group: str | None = None) -> Table:
    """A FEFF ``xmu.dat``: absolute energies (omega) and mu."""
    return _read(path, "feff")


def read_fdmnes(path: Path, group: str | None = None) -> Table:
    """An FDMNES output (convolved or raw): energies made absolute with the file's edge energy when given."""
    return _read(path, "fdmnes")
