"""Channel guessing: which columns are energy, I0, It, If or mu, and how they make mu(E).

Also the energy of monochromator (Bragg) angles, E = hc / (2 d sin θ), and the
``--columns`` text syntax of the CLIs (:func:`parse_column_spec`,
:func:`choice_from_spec`), which produce the same :class:`ChannelChoice` the
GUI's column chooser does.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from model_core.spectra.measured.base import ChannelChoice, fail, key

#: hc in eV·Å (CODATA 2018), for E = hc / λ with λ = 2 d sin θ.
HC_EV_ANGSTROM = 12398.419843320026

# Column names (lower case, only letters and digits) recognised for each role,
# in order of preference.
ENERGY_NAMES = ("energy", "energyev", "e", "ev", "omega", "en", "eev", "photonenergy", "energykev")
#: Monochromator angles in degrees. The observed (encoder) angle is preferred to the
#: calculated (requested) one: it is where the crystal actually was.
ANGLE_NAMES = ("angleo", "anglec", "angle", "theta", "braggangle", "monoangle", "thetadeg", "angledeg")
MU_NAMES = ("mu", "xmu", "mutrans", "mufluor", "mufl", "mue", "norm", "flat", "absorption")
I0_NAMES = ("i0", "io", "izero", "mon", "monitor")
IT_NAMES = ("it", "itrans", "i1", "trans", "transmission")
IF_NAMES = ("if", "ifluor", "ifl", "fluor", "fluorescence", "iff", "lytle", "pips")
#: Numbered fluorescence detector channels, summed when no single If column exists
#: (SCA1, SCA2, ... of single-channel analysers; SSD/SDD elements; "ICR" rates are not signals).
_FLUOR_CHANNEL = re.compile(r"^(sca|ssd|sdd|mca|roi|fluor|ifluor|if|fl|lytle|pips|vortex|ge)\d+$")

#: Energies are increasing in at least this fraction of steps (else not an energy column).
MAX_DESCENT_FRACTION = 0.1
#: keV scans: largest energy below this and span below KEV_MAX_SPAN (see repairs).
KEV_MAX_ENERGY = 200.0
KEV_MAX_SPAN = 5.0


def bragg_energy_ev(angle_deg: np.ndarray, d_spacing_a: float) -> np.ndarray:
    """Photon energy (eV) of Bragg angles ``angle_deg`` (degrees) on a crystal of spacing ``d_spacing_a`` (Å).

    E = hc / (2 d sin θ). Angles outside (0°, 90°) give NaN (dropped later as bad rows).
    """
    theta = np.radians(np.asarray(angle_deg, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        energy = HC_EV_ANGSTROM / (2.0 * d_spacing_a * np.sin(theta))
    return np.where((theta > 0) & (theta < math.pi / 2), energy, np.nan)


def is_angle_column(name: str) -> bool:
    """Whether a column is named like a monochromator angle ("Angle(o)", "theta", ...)."""
    return key(name) in ANGLE_NAMES


def find(columns: Mapping[str, np.ndarray], wanted: Sequence[str], exclude: Sequence[str] = ()) -> str | None:
    """The first column whose reduced name is in ``wanted`` (in ``wanted``'s order)."""
    by_key: dict[str, str] = {}
    for name in columns:
        if name not in exclude:
            by_key.setdefault(key(name), name)
    for candidate in wanted:
        if candidate in by_key:
            return by_key[candidate]
    return None


def _one_column(columns: Mapping[str, np.ndarray], name: str, source: Path) -> str:
    if name in columns:
        return name
    for existing in columns:
        if key(existing) == key(name):
            return existing
    raise fail(source, f"no column {name!r} (columns: {', '.join(columns)})")


def column(columns: Mapping[str, np.ndarray], name: str, source: Path) -> str:
    """The file's spelling of column ``name`` (case and punctuation-insensitive);
    "A+B" names a sum of columns (unless a column is called exactly that)."""
    if name in columns or "+" not in name:
        return _one_column(columns, name, source)
    return "+".join(_one_column(columns, part.strip(), source) for part in name.split("+"))


def values(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The values of a resolved column name, summing "A+B" sums."""
    if name in columns:
        return np.asarray(columns[name], dtype=np.float64)
    return np.sum([np.asarray(columns[part], dtype=np.float64) for part in name.split("+")], axis=0)


def looks_like_energy(data: np.ndarray) -> bool:
    """Mostly increasing values in an eV (100 eV - 200 keV) or keV range."""
    finite = data[np.isfinite(data)]
    if len(finite) < 3:
        return False
    steps = np.diff(finite)
    if np.count_nonzero(steps < 0) > MAX_DESCENT_FRACTION * len(steps) or finite[-1] <= finite[0]:
        return False
    low, high = float(finite.min()), float(finite.max())
    in_ev = 100.0 <= low and high <= 200_000.0
    in_kev = 0.1 <= low and high < KEV_MAX_ENERGY and high - low < KEV_MAX_SPAN
    return in_ev or in_kev


def _choose_energy(columns: Mapping[str, np.ndarray], d_spacing_a: float | None, source: Path,
                   notes: list[str]) -> tuple[str, float | None]:
    name = find(columns, ENERGY_NAMES)
    if name is None:
        # "Energy_readback"-like names rank after an exact "energy".
        name = next((n for n in columns if key(n).startswith("energy")), None)
    if name is not None:
        return name, None
    angle = find(columns, ANGLE_NAMES)
    if angle is not None:
        if d_spacing_a is None:
            raise fail(source, f"the energy is given as monochromator angles ({angle!r}) but the file gives "
                               "no crystal d-spacing (a header line like 'Mono : Si(111) D= 3.13551 A'); "
                               "give the d-spacing explicitly")
        others = [n for n in columns if is_angle_column(n) and n != angle]
        if others:
            notes.append(f"energy from the observed angle {angle!r}, not {others[0]!r}")
        return angle, d_spacing_a
    for candidate, data in columns.items():
        if looks_like_energy(data):
            notes.append(f"no column named energy; using {candidate!r} (increasing values in an energy range)")
            return candidate, None
    raise fail(source, f"no energy column (columns: {', '.join(columns)}; name one 'energy' "
                       "or choose it explicitly)")


def _fluorescence_sum(columns: Mapping[str, np.ndarray], exclude: Sequence[str]) -> str | None:
    channels = [n for n in columns if n not in exclude and _FLUOR_CHANNEL.match(key(n))]
    return "+".join(channels) if channels else None


def _guess_channel(columns: Mapping[str, np.ndarray], energy: str, others: tuple[str, ...], source: Path,
                   notes: list[str]) -> tuple[str, str | None, str]:
    mu_name = find(columns, MU_NAMES, exclude=(energy,))
    i0 = find(columns, I0_NAMES, exclude=(energy,))
    it = find(columns, IT_NAMES, exclude=(energy,))
    fl = find(columns, IF_NAMES, exclude=(energy,))
    if mu_name is not None:
        return mu_name, None, "mu"
    if i0 is not None and it is not None:
        return it, i0, "transmission"
    if i0 is not None and fl is not None:
        return fl, i0, "fluorescence"
    summed = _fluorescence_sum(columns, (energy, i0)) if i0 is not None else None
    if summed is not None:
        if "+" in summed:
            notes.append(f"summed {summed.count('+') + 1} fluorescence channels ({summed})")
        return summed, i0, "fluorescence"
    if len(others) == 1:
        notes.append(f"assuming column {others[0]!r} is mu")
        return others[0], None, "mu"
    unnamed = all(re.fullmatch(r"col\d+", n) for n in others)
    if unnamed and others:
        notes.append(f"columns are unnamed; assuming {others[0]!r} is mu")
        return others[0], None, "mu"
    raise fail(source, f"no mu column and no i0 with itrans/ifluor columns (columns: "
                       f"{', '.join(columns)}); choose the columns explicitly")


def resolve_choice(columns: Mapping[str, np.ndarray], choice: ChannelChoice | None, source: Path,
                   notes: list[str], d_spacing_a: float | None = None) -> ChannelChoice:
    """Complete ``choice`` (None: choose everything) with the file's column names.

    Args:
        columns: the file's columns.
        choice: what the user chose; unset fields are guessed by column names.
        source: the file, for messages.
        notes: receives one line per guess.
        d_spacing_a: the crystal d-spacing the file's header gives, if any.

    Returns:
        A choice naming existing columns (sums as "A+B"), with ``d_spacing_a``
        set when the energy column holds angles.

    Raises:
        MeasuredReadError: a named column does not exist, or nothing can be guessed.
    """
    choice = choice or ChannelChoice()
    if choice.energy:
        energy = column(columns, choice.energy, source)
        d = choice.d_spacing_a
        if d is None and is_angle_column(energy):
            if d_spacing_a is None:
                raise fail(source, f"column {energy!r} holds monochromator angles but the file gives no "
                                   "crystal d-spacing; give the d-spacing explicitly")
            d = d_spacing_a
    else:
        energy, d = _choose_energy(columns, choice.d_spacing_a or d_spacing_a, source, notes)
    others = tuple(n for n in columns if n != energy)
    numerator = column(columns, choice.numerator, source) if choice.numerator else None
    denominator = column(columns, choice.denominator, source) if choice.denominator else None
    mode = choice.mode
    if numerator is None:
        if mode == "mu":
            numerator, denominator, mode = _guess_channel(columns, energy, others, source, notes)
            return ChannelChoice(energy, numerator, denominator, mode, d)
        names = IT_NAMES if mode == "transmission" else IF_NAMES
        numerator = find(columns, names, exclude=(energy,))
        if numerator is None and mode == "fluorescence":
            numerator = _fluorescence_sum(columns, (energy, denominator or ""))
        if numerator is None:
            raise fail(source, f"no {'transmitted' if mode == 'transmission' else 'fluorescence'} "
                               f"intensity column (columns: {', '.join(columns)})")
    if mode != "mu" and denominator is None:
        denominator = find(columns, I0_NAMES, exclude=(energy, numerator))
        if denominator is None and choice.numerator is None:
            raise fail(source, f"no i0 column (columns: {', '.join(columns)})")
        if denominator is None:
            notes.append(f"no i0 column; using {numerator!r} without dividing by I0")
    if mode == "mu":
        denominator = None
    if numerator == energy:
        raise fail(source, f"column {numerator!r} is the energy column, not an absorption channel")
    return ChannelChoice(energy, numerator, denominator, mode, d)


def absorption(columns: Mapping[str, np.ndarray], choice: ChannelChoice) -> np.ndarray:
    """mu of a resolved choice, NaN where it is undefined (dropped later as bad rows)."""
    numerator = values(columns, choice.numerator)
    if choice.mode == "mu":
        return numerator.copy()
    denominator = values(columns, choice.denominator) if choice.denominator else np.ones_like(numerator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
        if choice.mode == "transmission":
            return -np.log(np.where(ratio > 0, ratio, np.nan))
        return np.where(denominator != 0, ratio, np.nan)


def energy_of(columns: Mapping[str, np.ndarray], choice: ChannelChoice, notes: list[str]) -> np.ndarray:
    """The energies (eV or keV) of a resolved choice, converting angles; the conversion is noted."""
    data = values(columns, choice.energy)
    if choice.d_spacing_a is None:
        return data
    notes.append(f"energy from the monochromator angle {choice.energy!r} (degrees) with crystal "
                 f"d = {choice.d_spacing_a:g} Å: E = hc / (2 d sin θ)")
    return bragg_energy_ev(data, choice.d_spacing_a)


# --------------------------------------------------------------------------- --columns syntax

COLUMN_SPEC_HELP = (
    "which columns make mu(E), when guessing fails: comma-separated ROLE=COLUMN with roles "
    "energy, mu, i0, it (transmission, -ln(it/i0)) and if (fluorescence, if/i0), plus d=ANGSTROM "
    "(crystal d-spacing when energy is a monochromator angle); COLUMN is a column name as in "
    "the file (case-insensitive) or a 1-based column number, and A+B sums columns. Examples: "
    "energy=1,mu=3; energy=Angle(o),i0=I0,if=SCA1+SCA2; i0=2,it=3")

_ROLE_ALIASES = {"energy": "energy", "e": "energy", "mu": "mu", "i0": "i0", "it": "it", "itrans": "it",
                 "i1": "it", "trans": "it", "if": "if", "ifluor": "if", "fluor": "if", "fl": "if", "d": "d"}


def parse_column_spec(text: str) -> dict[str, object]:
    """Parse ``--columns`` text into roles -> column references (and ``d`` -> float).

    Returns:
        e.g. ``{"energy": ("Angle(o)",), "i0": ("I0",), "if": ("SCA1", "SCA2")}``.

    Raises:
        ValueError: the text breaks the syntax of :data:`COLUMN_SPEC_HELP`.
    """
    spec: dict[str, object] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        role, sep, value = part.partition("=")
        role = _ROLE_ALIASES.get(role.strip().lower())
        if not sep or role is None or not value.strip():
            raise ValueError(f"expected ROLE=COLUMN with ROLE energy, mu, i0, it, if or d; got {part!r}")
        if role in spec:
            raise ValueError(f"{role} is given twice")
        if role == "d":
            try:
                d = float(value)
            except ValueError as exc:
                raise ValueError(f"d= expects a d-spacing in Å, got {value.strip()!r}") from exc
            if not (math.isfinite(d) and d > 0):
                raise ValueError(f"d= must be a positive d-spacing in Å, got {value.strip()!r}")
            spec[role] = d
            continue
        refs = tuple(v.strip() for v in value.split("+"))
        if any(not r for r in refs):
            raise ValueError(f"empty column in {part!r}")
        if role in ("energy", "i0") and len(refs) > 1:
            raise ValueError(f"{role} takes one column, got {value.strip()!r}")
        spec[role] = refs
    signals = [r for r in ("mu", "it", "if") if r in spec]
    if len(signals) != 1:
        raise ValueError("give exactly one of mu=, it= or if=")
    if "mu" in spec and "i0" in spec:
        raise ValueError("i0= goes with it= or if=, not with mu=")
    return spec


def choice_from_spec(spec: Mapping[str, object], names: Sequence[str], source: str | Path) -> ChannelChoice:
    """The :class:`ChannelChoice` of a parsed ``--columns`` spec for a file with columns ``names``.

    Column numbers are 1-based positions in ``names``; names are kept as
    written (matched to the file's spelling when the file is read).

    Raises:
        MeasuredReadError: a column number is out of range.
    """
    def ref(text: str) -> str:
        if re.fullmatch(r"\d+", text) and text not in names:
            index = int(text)
            if not 1 <= index <= len(names):
                raise fail(source, f"column {index} does not exist (the file has {len(names)} columns: "
                                   f"{', '.join(names)})")
            return names[index - 1]
        return text

    def refs(role: str) -> str | None:
        given = spec.get(role)
        return "+".join(ref(r) for r in given) if given else None

    mode, signal = next((m, r) for r, m in (("mu", "mu"), ("it", "transmission"), ("if", "fluorescence"))
                        if r in spec)
    return ChannelChoice(energy=refs("energy"), numerator=refs(signal),
                         denominator=refs("i0"), mode=mode, d_spacing_a=spec.get("d"))
