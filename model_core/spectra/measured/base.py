"""The types every measured-spectrum reader shares: the error, the channel choice, the data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from model_core.types import Spectrum

#: Ways of turning columns into absorption: a column that already is mu,
#: transmission ``-ln(numerator / denominator)``, fluorescence ``numerator / denominator``.
CHANNEL_MODES = ("mu", "transmission", "fluorescence")


class MeasuredReadError(ValueError):
    """A measured spectrum could not be read; the message is one line naming the file."""


def fail(source: str | Path, problem: str) -> MeasuredReadError:
    """A :class:`MeasuredReadError` for ``source`` (as given) with ``problem`` on one line."""
    return MeasuredReadError(f"{source}: {' '.join(str(problem).split())}")


def key(name: str) -> str:
    """A column name reduced to lower-case letters and digits, for matching ("Angle(o)" -> "angleo")."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass(frozen=True)
class ChannelChoice:
    """Which columns make the absorption spectrum.

    Attributes:
        energy: name of the energy column; None chooses by name, then by values.
        numerator: the mu column (mode "mu") or the transmitted / fluorescence
            intensity; several columns joined by "+" ("SCA1+SCA2") are summed.
            None chooses by name.
        denominator: the incident intensity I0 (transmission/fluorescence); None
            chooses a column named like i0; in an explicit choice with a
            numerator but no i0 column the intensity is used as is.
        mode: "mu", "transmission" (mu = -ln(numerator/denominator)) or
            "fluorescence" (mu = numerator/denominator).
        d_spacing_a: crystal d-spacing in Å when the energy column holds
            monochromator (Bragg) angles in degrees: E = hc / (2 d sin θ).
            None: energies are energies, unless the column is named like an
            angle ("Angle(o)") and the file's header gives the d-spacing.
    """

    energy: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    mode: str = "mu"
    d_spacing_a: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in CHANNEL_MODES:
            raise ValueError(f"channel mode must be one of {', '.join(CHANNEL_MODES)}, got {self.mode!r}")
        if self.d_spacing_a is not None and not (np.isfinite(self.d_spacing_a) and self.d_spacing_a > 0):
            raise ValueError(f"the crystal d-spacing must be a positive number of Å, got {self.d_spacing_a!r}")

    def describe(self) -> str:
        """Human-readable channel, e.g. ``"transmission -ln(itrans/i0)"``."""
        if self.mode == "mu":
            return str(self.numerator)
        num, den = self.numerator, self.denominator
        if self.mode == "transmission":
            return f"transmission -ln({num}/{den})" if den else f"transmission -ln({num})"
        return f"fluorescence {num}/{den}" if den else f"fluorescence {num}"


@dataclass(frozen=True, eq=False)
class MeasuredData:
    """A measured spectrum as read from a file, before normalization.

    Attributes:
        source: path of the file.
        label: short name for legends (sample name, Athena group label or file stem).
        energy_ev: (N,) float64 absolute energies in eV, strictly increasing.
        mu: (N,) float64 raw absorption on ``energy_ev`` (not normalized).
        channel: how mu was obtained, e.g. ``"mutrans"``, ``"transmission -ln(itrans/i0)"``.
        choice: the resolved :class:`ChannelChoice` (column names actually used).
        columns: every column of the file (or group) by name, (R,) float64 arrays in
            file order before any repair, for a column chooser.
        warnings: one line per repair or guess made ("sorted 3 non-monotonic points", ...).
        metadata: ``element`` and ``edge`` when the file says, ``format``, and
            format-specific entries (XDI sample/beamline, Athena E0 and shift,
            ``d_spacing_a`` of a monochromator).
        format: "xdi", "athena", "columns", "pf9809", "feff" or "fdmnes".
        group: the Athena group read, else None.
    """

    source: str
    label: str
    energy_ev: np.ndarray
    mu: np.ndarray
    channel: str
    choice: ChannelChoice = field(default_factory=ChannelChoice)
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    format: str = "columns"
    group: str | None = None

    def __post_init__(self) -> None:
        energy = np.array(self.energy_ev, dtype=np.float64)
        mu = np.array(self.mu, dtype=np.float64)
        if energy.ndim != 1 or energy.shape != mu.shape:
            raise ValueError("energy and mu must be 1-D of equal length")
        if len(energy) > 1 and not np.all(np.diff(energy) > 0):
            raise ValueError("measured energies must be strictly increasing")
        for array in (energy, mu):
            array.setflags(write=False)
        object.__setattr__(self, "energy_ev", energy)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "columns", frozen_columns(self.columns))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the available columns in file order."""
        return tuple(self.columns)

    @property
    def element(self) -> str | None:
        """Absorbing element symbol declared by the file, if any."""
        return self.metadata.get("element")

    @property
    def edge(self) -> str | None:
        """Absorption edge declared by the file ("K", "L3"), if any."""
        return self.metadata.get("edge")

    def to_spectrum(self) -> Spectrum:
        """The raw spectrum as a :class:`~model_core.types.Spectrum` (absolute energies)."""
        return Spectrum(self.energy_ev, self.mu, label=self.label, energy_reference="absolute",
                        metadata={"source": self.source, "channel": self.channel, "format": self.format,
                                  "group": self.group, "warnings": self.warnings})


@dataclass(frozen=True, eq=False)
class ColumnPreview:
    """The columns of a file and the reader's guess, for an import preview.

    Attributes:
        source: path of the file.
        format: the format read ("columns", "xdi", "pf9809", ...).
        columns: every column by name, (R,) float64 arrays in file order, raw
            (angles stay angles); read-only.
        guess: the channel the reader would choose by itself, or None when it
            cannot choose (then ``problem`` says why).
        notes: one line per guess behind ``guess`` ("summed 3 fluorescence channels", ...).
        problem: why nothing could be guessed, else None.
        fixed: the format allows no other choice (FEFF, FDMNES outputs).
        metadata: as in :class:`MeasuredData` (``d_spacing_a`` when the header gives it).
    """

    source: str
    format: str
    columns: Mapping[str, np.ndarray]
    guess: ChannelChoice | None
    notes: tuple[str, ...] = ()
    problem: str | None = None
    fixed: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", frozen_columns(self.columns))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in file order."""
        return tuple(self.columns)


def frozen_columns(columns: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """Read-only float64 copies of ``columns`` in a read-only mapping."""
    frozen = {}
    for name, values in dict(columns).items():
        values = np.array(values, dtype=np.float64)
        values.setflags(write=False)
        frozen[str(name)] = values
    return MappingProxyType(frozen)


@dataclass
class Table:
    """What a format reader returns: the columns and what the file says about them.

    Attributes:
        columns: name -> (R,) float64 values in file order.
        metadata: ``format``, ``element``, ``edge``, ``d_spacing_a``, ...
        label: short name for legends.
        fixed: a choice imposed by the format (Athena groups, FEFF and FDMNES outputs).
        suggested: the format's own reading of its columns (a beamline header's
            detector modes), used when the caller chooses nothing.
        notes: lines for :attr:`MeasuredData.warnings` (format fall-backs, shifts).
        suggestion_notes: the guesses behind ``suggested``, reported only when it is used.
    """

    columns: dict[str, np.ndarray]
    metadata: dict[str, Any]
    label: str
    fixed: ChannelChoice | None = None
    suggested: ChannelChoice | None = None
    notes: list[str] = field(default_factory=list)
    suggestion_notes: list[str] = field(default_factory=list)
