"""Reading measured XAS spectra: XDI, Athena projects, column files, FEFF/FDMNES outputs.

Usage::

    from model_core.spectra.measured import read_measured, ChannelChoice, MeasuredReadError

    data = read_measured("Cu_foil.xdi")                 # -> MeasuredData
    data.energy_ev, data.mu, data.channel, data.warnings
    data = read_measured("scan.dat", columns=ChannelChoice(
        energy="energy", numerator="ifluor", denominator="i0", mode="fluorescence"))
    names = list_athena_groups("project.prj")
    data = read_measured("project.prj", group=names[1])

Parsing is delegated to xraylarch (``read_xdi``, ``read_athena``, ``read_ascii``)
and to :mod:`model_core.spectra.simulated` for FEFF ``xmu.dat`` and FDMNES files;
this module chooses the format, the energy column and the absorption channel,
and repairs what can be repaired safely (NaN rows, keV energies, a few
out-of-order or repeated energies), listing every repair in
:attr:`MeasuredData.warnings`. Anything else raises :class:`MeasuredReadError`,
whose message is one line naming the file and the problem.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from model_core.spectra.larch_compat import import_larch, preserved_global_state
from model_core.types import Spectrum, atomic_number, element_symbol

__all__ = [
    "CHANNEL_MODES",
    "MIN_POINTS",
    "ChannelChoice",
    "MeasuredData",
    "MeasuredReadError",
    "detect_measured_format",
    "list_athena_groups",
    "read_measured",
]

#: Fewest data points accepted after repairs (fewer cannot be normalized).
MIN_POINTS = 10

#: Ways of turning columns into absorption: a column that already is mu,
#: transmission ``-ln(numerator / denominator)``, fluorescence ``numerator / denominator``.
CHANNEL_MODES = ("mu", "transmission", "fluorescence")

# Column names (lower case, only letters and digits) recognised for each role,
# in order of preference.
_ENERGY_NAMES = ("energy", "energyev", "e", "ev", "omega", "en", "eev", "photonenergy", "energykev")
_MU_NAMES = ("mu", "xmu", "mutrans", "mufluor", "mufl", "mue", "norm", "flat", "absorption")
_I0_NAMES = ("i0", "io", "izero", "mon", "monitor")
_IT_NAMES = ("it", "itrans", "i1", "trans", "transmission")
_IF_NAMES = ("if", "ifluor", "ifl", "fluor", "fluorescence", "iff")

#: Energies closer than this (eV) are duplicates of one measurement point.
_DUPLICATE_TOL_EV = 1e-3
#: keV detection: a scan whose largest energy is below this and whose span is
#: below _KEV_MAX_SPAN is in keV (no absorption edge of interest lies below
#: 200 eV in eV units with a span under 5 eV, while any keV scan does).
_KEV_MAX_ENERGY = 200.0
_KEV_MAX_SPAN = 5.0
#: Refuse to sort when more than this fraction of steps go backwards: the
#: energy column is then probably not an energy at all or the rows are mixed
#: from several scans, and sorting would hide that.
_MAX_DESCENT_FRACTION = 0.1


class MeasuredReadError(ValueError):
    """A measured spectrum could not be read; the message is one line naming the file."""


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _fail(source: str | Path, problem: str) -> MeasuredReadError:
    return MeasuredReadError(f"{source}: {' '.join(str(problem).split())}")


@dataclass(frozen=True)
class ChannelChoice:
    """Which columns make the absorption spectrum.

    Attributes:
        energy: name of the energy column; None chooses by name, then by values.
        numerator: the mu column (mode "mu") or the transmitted / fluorescence
            intensity; None chooses by name.
        denominator: the incident intensity I0 (transmission/fluorescence); None
            chooses a column named like i0; in an explicit choice with a
            numerator but no i0 column the intensity is used as is.
        mode: "mu", "transmission" (mu = -ln(numerator/denominator)) or
            "fluorescence" (mu = numerator/denominator).
    """

    energy: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    mode: str = "mu"

    def __post_init__(self) -> None:
        if self.mode not in CHANNEL_MODES:
            raise ValueError(f"channel mode must be one of {', '.join(CHANNEL_MODES)}, got {self.mode!r}")

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
        warnings: one line per repair made ("sorted 3 non-monotonic points", ...).
        metadata: ``element`` and ``edge`` when the file says, ``format``, and
            format-specific entries (XDI sample/beamline, Athena E0 and shift).
        format: "xdi", "athena", "columns", "feff" or "fdmnes".
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
        columns = {}
        for name, values in dict(self.columns).items():
            values = np.array(values, dtype=np.float64)
            values.setflags(write=False)
            columns[str(name)] = values
        object.__setattr__(self, "energy_ev", energy)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "columns", MappingProxyType(columns))
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


# ---------------------------------------------------------------------------
# Format detection
# ---------------------------------------------------------------------------

_FEFF_HEADER = re.compile(r"^#\s*omega\s+e\s+k\s+mu\s+mu0\s+chi", re.IGNORECASE | re.MULTILINE)


def _head(path: Path, size: int = 8192) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def detect_measured_format(path: str | Path) -> str:
    """Guess the format of a spectrum file from its name and first bytes.

    Returns:
        "athena", "xdi", "feff", "fdmnes" or "columns".

    Raises:
        MeasuredReadError: missing, unreadable or empty file.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a folder, not a spectrum file")
    try:
        head = _head(path)
    except OSError as exc:
        raise _fail(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if not head.strip():
        raise _fail(path, "the file is empty")
    if head[:2] == b"\x1f\x8b":
        # Athena writes gzip-compressed projects; nothing else we read is gzipped.
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(8192)
        except (OSError, EOFError) as exc:
            raise _fail(path, f"corrupt gzip file ({exc})") from exc
        if not head.strip():
            raise _fail(path, "the file is empty")
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    if path.suffix.lower() == ".prj" or "athena project" in first.lower():
        return "athena"
    if re.match(r"#\s*XDI", first, re.IGNORECASE):
        return "xdi"
    if path.name.lower() == "xmu.dat" or _FEFF_HEADER.search(text):
        return "feff"
    top = "\n".join(text.splitlines()[:12])
    if "fdmnes" in top.lower() or re.search(r"^\s*energy\s+<xanes>", top, re.IGNORECASE | re.MULTILINE):
        return "fdmnes"
    return "columns"


# ---------------------------------------------------------------------------
# Format readers: each returns (columns, metadata, label, fixed choice or None)
# ---------------------------------------------------------------------------

@dataclass
class _Table:
    columns: dict[str, np.ndarray]
    metadata: dict[str, Any]
    label: str
    fixed: ChannelChoice | None = None  # a choice imposed by the format (Athena, FEFF)
    notes: list[str] = field(default_factory=list)


def _larch_columns(group: Any) -> dict[str, np.ndarray]:
    labels = list(getattr(group, "array_labels", []) or [])
    data = np.asarray(getattr(group, "data", np.empty((0, 0))), dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        return {}
    if len(labels) != data.shape[0]:
        labels = [f"col{i + 1}" for i in range(data.shape[0])]
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(labels, data):
        name = str(name)
        while name in columns:  # keep repeated labels apart rather than overwrite
            name += "_"
        columns[name] = values.copy()
    return columns


def _read_xdi(path: Path) -> _Table:
    larch = import_larch()
    notes: list[str] = []
    try:
        with preserved_global_state():
            group = larch.io.read_xdi(str(path))
        columns = _larch_columns(group)
        attrs = getattr(group, "attrs", {}) or {}
    except Exception as exc:  # noqa: BLE001 - larch raises many types for bad XDI
        # A file that starts like XDI but breaks the spec is usually still a
        # '#'-commented column file; read it that way and say so.
        notes.append(f"not a valid XDI file ({' '.join(str(exc).split())[:80]}); read as plain columns")
        table = _read_columns(path)
        table.notes[:0] = notes
        return table
    metadata: dict[str, Any] = {"format": "xdi"}
    element = attrs.get("element", {}) if isinstance(attrs, dict) else {}
    symbol = str(element.get("symbol", "") or "").strip()
    edge = str(element.get("edge", "") or "").strip()
    if symbol:
        metadata["element"] = symbol.capitalize()
    if edge:
        metadata["edge"] = edge.upper()
    for family, keys in (("sample", ("name", "formula", "prep", "temperature")),
                         ("facility", ("name",)), ("beamline", ("name",))):
        values = attrs.get(family, {}) if isinstance(attrs, dict) else {}
        for key in keys:
            if values.get(key):
                metadata[f"{family}_{key}"] = str(values[key]).strip()
    scan = attrs.get("scanparameters", {}) if isinstance(attrs, dict) else {}
    try:
        metadata["e0_hint_ev"] = float(scan["e0"])
    except (KeyError, TypeError, ValueError):
        pass
    label = metadata.get("sample_name") or path.stem
    return _Table(columns=columns, metadata=metadata, label=str(label), notes=notes)


def _has_numeric_row(path: Path) -> bool:
    number = re.compile(r"^\s*[+-]?(\d|\.\d)")
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if number.match(line):
                return True
    return False


def _read_columns(path: Path) -> _Table:
    larch = import_larch()
    if not _has_numeric_row(path):
        raise _fail(path, "no numeric data rows (not a column file?)")
    try:
        with preserved_global_state():
            group = larch.io.read_ascii(str(path))
    except Exception as exc:  # noqa: BLE001 - larch's parser raises anything
        raise _fail(path, f"cannot read columns ({exc})") from exc
    columns = _larch_columns(group)
    if not columns:
        raise _fail(path, "no numeric data columns")
    header = [str(h) for h in (getattr(group, "header", []) or [])]
    metadata: dict[str, Any] = {"format": "columns"}
    # Old IFEFFIT/Athena column files (".xmu") carry "#%atom:" and "#%edge:" lines;
    # "atom" is sometimes a formula ("Fe2O3"), so only element symbols count.
    for line in header:
        match = re.match(r"^#\s*%?\s*(element|atom|edge)\s*[:=]\s*(\S+)", line, re.IGNORECASE)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "edge":
            metadata["edge"] = value.upper()
            continue
        try:
            metadata["element"] = element_symbol(atomic_number(value))
        except ValueError:
            pass
    return _Table(columns=columns, metadata=metadata, label=path.stem)


_UNUSABLE_ATHENA_FLAGS = ("is_chi", "is_rsp", "is_qsp", "is_bkg", "is_diff", "is_pixel")


def _athena_usable(group: Any) -> bool:
    energy = getattr(group, "energy", None)
    mu = getattr(group, "mu", None)
    if energy is None or mu is None:
        return False
    if np.ndim(energy) != 1 or np.shape(energy) != np.shape(mu) or len(energy) < MIN_POINTS:
        return False
    params = getattr(group, "athena_params", None)
    for flag in _UNUSABLE_ATHENA_FLAGS:
        try:
            if params is not None and int(float(getattr(params, flag, 0) or 0)):
                return False
        except (TypeError, ValueError):
            continue
    return True


def _load_athena(path: Path) -> dict[str, Any]:
    """All groups of an Athena project by larch key (wrapped so tests can mock it)."""
    larch = import_larch()
    try:
        with preserved_global_state():
            project = larch.io.read_athena(str(path), do_preedge=False)
    except Exception as exc:  # noqa: BLE001 - larch's Perl-dump parser raises anything
        raise _fail(path, f"not a readable Athena project ({' '.join(str(exc).split())[:100]})") from exc
    groups = getattr(project, "groups", None)
    if not isinstance(groups, dict):
        raise _fail(path, "not a readable Athena project (no groups)")
    return dict(groups)


def _athena_names(groups: dict[str, Any]) -> dict[str, str]:
    """Display name -> larch key for the usable groups (labels when unique, else keys)."""
    usable = [key for key, group in groups.items() if _athena_usable(group)]
    labels = [str(getattr(groups[key], "label", "") or key) for key in usable]
    if len(set(labels)) == len(labels):
        return dict(zip(labels, usable))
    return {key: key for key in usable}


def list_columns(path: str | Path) -> list[str]:
    """Column names of an XDI or plain column file, in file order (for a column chooser).

    Works when :func:`read_measured` cannot pick a channel by itself.

    Raises:
        MeasuredReadError: the file cannot be read as a table.
    """
    path = Path(path)
    reader = _read_xdi if detect_measured_format(path) == "xdi" else _read_columns
    return list(reader(path).columns)


def list_athena_groups(path: str | Path) -> list[str]:
    """Names of the groups of an Athena project that hold mu(E) data, in file order.

    The names are Athena's group labels (larch's group keys when labels repeat);
    either can be passed to :func:`read_measured` as ``group``.

    Raises:
        MeasuredReadError: unreadable project, or no group with mu(E) data.
    """
    path = Path(path)
    detect_measured_format(path)  # missing/empty file errors
    names = _athena_names(_load_athena(path))
    if not names:
        raise _fail(path, "the Athena project has no usable group (no mu(E) data; only chi(k), "
                          "background or empty groups)")
    return list(names)


def _read_athena(path: Path, group_name: str | None) -> _Table:
    groups = _load_athena(path)
    names = _athena_names(groups)
    if not names:
        raise _fail(path, "the Athena project has no usable group (no mu(E) data; only chi(k), "
                          "background or empty groups)")
    if group_name is None:
        display = next(iter(names))
        key = names[display]
    else:
        key = names.get(group_name)
        display = group_name
        if key is None and group_name in groups:
            key = group_name
            if not _athena_usable(groups[key]):
                raise _fail(path, f"Athena group {group_name!r} holds no mu(E) data")
            # Report the group by the name list_athena_groups() uses for it.
            display = next((name for name, k in names.items() if k == key), group_name)
        elif key is None:
            raise _fail(path, f"no Athena group {group_name!r} (groups: {', '.join(names)})")
    group = groups[key]
    columns = {"energy": np.asarray(group.energy, dtype=np.float64).copy(),
               "mu": np.asarray(group.mu, dtype=np.float64).copy()}
    for name in ("i0", "i1", "it", "ifluor", "ir", "irefer"):
        values = getattr(group, name, None)
        if isinstance(values, np.ndarray) and values.shape == columns["energy"].shape:
            columns[name] = values.astype(np.float64)
    metadata: dict[str, Any] = {"format": "athena", "athena_groups": tuple(names)}
    notes: list[str] = []
    bkg = getattr(getattr(group, "athena_params", None), "bkg", None)
    if bkg is not None:
        symbol = str(getattr(bkg, "z", "") or "").strip()
        if symbol and symbol.isalpha():
            metadata["element"] = symbol.capitalize()
        edge = str(getattr(bkg, "edge", "") or "").strip()
        if edge and edge.lower() != "none":
            metadata["edge"] = edge.upper()
        try:
            metadata["e0_hint_ev"] = float(bkg.e0)
        except (AttributeError, TypeError, ValueError):
            pass
        try:
            eshift = float(getattr(bkg, "eshift", 0.0) or 0.0)
        except (TypeError, ValueError):
            eshift = 0.0
        if eshift:
            # Athena shows (and aligns) the data with this shift applied.
            columns["energy"] = columns["energy"] + eshift
            metadata["athena_eshift_ev"] = eshift
            notes.append(f"applied Athena's energy shift of {eshift:+.3f} eV")
    return _Table(columns=columns, metadata=metadata, label=display,
                  fixed=ChannelChoice(energy="energy", numerator="mu", mode="mu"), notes=notes)


def _read_simulated(path: Path, kind: str) -> _Table:
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
    return _Table(columns={"energy": energy, "mu": np.asarray(spectrum.mu, dtype=np.float64)},
                  metadata=metadata, label=spectrum.label or path.stem,
                  fixed=ChannelChoice(energy="energy", numerator="mu", mode="mu"), notes=notes)


# ---------------------------------------------------------------------------
# Channel choice
# ---------------------------------------------------------------------------

def _find(columns: dict[str, np.ndarray], wanted: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str | None:
    by_key: dict[str, str] = {}
    for name in columns:
        if name not in exclude:
            by_key.setdefault(_key(name), name)
    for candidate in wanted:
        if candidate in by_key:
            return by_key[candidate]
    return None


def _column(columns: dict[str, np.ndarray], name: str, source: Path) -> str:
    if name in columns:
        return name
    for existing in columns:
        if _key(existing) == _key(name):
            return existing
    raise _fail(source, f"no column {name!r} (columns: {', '.join(columns)})")


def _looks_like_energy(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    if len(finite) < 3:
        return False
    steps = np.diff(finite)
    if np.count_nonzero(steps < 0) > _MAX_DESCENT_FRACTION * len(steps) or finite[-1] <= finite[0]:
        return False
    low, high = float(finite.min()), float(finite.max())
    in_ev = 100.0 <= low and high <= 200_000.0
    in_kev = 0.1 <= low and high < _KEV_MAX_ENERGY and high - low < _KEV_MAX_SPAN
    return in_ev or in_kev


def _choose_energy(columns: dict[str, np.ndarray], source: Path, notes: list[str]) -> str:
    name = _find(columns, _ENERGY_NAMES)
    if name is None:
        # "Energy_readback"-like names rank after an exact "energy".
        name = next((n for n in columns if _key(n).startswith("energy")), None)
    if name is not None:
        return name
    for candidate, values in columns.items():
        if _looks_like_energy(values):
            notes.append(f"no column named energy; using {candidate!r} (increasing values in an energy range)")
            return candidate
    raise _fail(source, f"no energy column (columns: {', '.join(columns)}; name one 'energy' "
                        "or choose it explicitly)")


def _resolve_choice(columns: dict[str, np.ndarray], choice: ChannelChoice | None,
                    source: Path, notes: list[str]) -> ChannelChoice:
    choice = choice or ChannelChoice()
    energy = (_column(columns, choice.energy, source) if choice.energy
              else _choose_energy(columns, source, notes))
    others = tuple(n for n in columns if n != energy)
    numerator = _column(columns, choice.numerator, source) if choice.numerator else None
    denominator = _column(columns, choice.denominator, source) if choice.denominator else None
    mode = choice.mode
    if numerator is None:
        if mode == "mu":
            mu_name = _find(columns, _MU_NAMES, exclude=(energy,))
            i0 = _find(columns, _I0_NAMES, exclude=(energy,))
            it = _find(columns, _IT_NAMES, exclude=(energy,))
            fl = _find(columns, _IF_NAMES, exclude=(energy,))
            if mu_name is not None:
                return ChannelChoice(energy, mu_name, None, "mu")
            if i0 is not None and it is not None:
                return ChannelChoice(energy, it, i0, "transmission")
            if i0 is not None and fl is not None:
                return ChannelChoice(energy, fl, i0, "fluorescence")
            if len(others) == 1:
                notes.append(f"assuming column {others[0]!r} is mu")
                return ChannelChoice(energy, others[0], None, "mu")
            unnamed = all(re.fullmatch(r"col\d+", n) for n in others)
            if unnamed and others:
                notes.append(f"columns are unnamed; assuming {others[0]!r} is mu")
                return ChannelChoice(energy, others[0], None, "mu")
            raise _fail(source, f"no mu column and no i0 with itrans/ifluor columns (columns: "
                                f"{', '.join(columns)}); choose the columns explicitly")
        names = _IT_NAMES if mode == "transmission" else _IF_NAMES
        numerator = _find(columns, names, exclude=(energy,))
        if numerator is None:
            raise _fail(source, f"no {'transmitted' if mode == 'transmission' else 'fluorescence'} "
                                f"intensity column (columns: {', '.join(columns)})")
    if mode != "mu" and denominator is None:
        denominator = _find(columns, _I0_NAMES, exclude=(energy, numerator))
        if denominator is None and choice.numerator is None:
            raise _fail(source, f"no i0 column (columns: {', '.join(columns)})")
        if denominator is None:
            notes.append(f"no i0 column; using {numerator!r} without dividing by I0")
    if mode == "mu":
        denominator = None
    if numerator == energy:
        raise _fail(source, f"column {numerator!r} is the energy column, not an absorption channel")
    return ChannelChoice(energy, numerator, denominator, mode)


def _absorption(columns: dict[str, np.ndarray], choice: ChannelChoice) -> np.ndarray:
    numerator = columns[choice.numerator]
    if choice.mode == "mu":
        return numerator.copy()
    denominator = columns[choice.denominator] if choice.denominator else np.ones_like(numerator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
        if choice.mode == "transmission":
            # Non-positive intensities give NaN here and are dropped as bad rows.
            return -np.log(np.where(ratio > 0, ratio, np.nan))
        return np.where(denominator != 0, ratio, np.nan)


# ---------------------------------------------------------------------------
# Repairs
# ---------------------------------------------------------------------------

def _repair(energy: np.ndarray, mu: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Make energies finite, in eV, strictly increasing; average repeated energies.

    Returns:
        (energy_ev, mu, warnings) with (N',) arrays.
    """
    notes: list[str] = []
    if len(energy) == 0:
        raise _fail(source, "no data rows")
    good = np.isfinite(energy) & np.isfinite(mu)
    dropped = int(len(energy) - np.count_nonzero(good))
    if dropped == len(energy):
        raise _fail(source, "every row has NaN, infinite or invalid values")
    if dropped:
        energy, mu = energy[good], mu[good]
        notes.append(f"dropped {dropped} row{'s' if dropped > 1 else ''} with NaN, infinite or invalid values")
    if len(energy) < MIN_POINTS:
        raise _fail(source, f"only {len(energy)} usable data points (need at least {MIN_POINTS})")

    span = float(energy.max() - energy.min())
    if 0 < float(energy.max()) < _KEV_MAX_ENERGY and span < _KEV_MAX_SPAN:
        energy = energy * 1000.0
        notes.append("energy given in keV, converted to eV")

    steps = np.diff(energy)
    descents = int(np.count_nonzero(steps < 0))
    if descents and np.all(steps <= 0):
        energy, mu = energy[::-1], mu[::-1]
        notes.append("energies were in decreasing order; reversed")
    elif descents:
        if descents > max(2, _MAX_DESCENT_FRACTION * len(steps)):
            raise _fail(source, f"energies are badly out of order ({descents} backward steps in "
                                f"{len(energy)} points); not an energy column or mixed scans?")
        order = np.argsort(energy, kind="stable")
        energy, mu = energy[order], mu[order]
        notes.append(f"sorted {descents} non-monotonic point{'s' if descents > 1 else ''}")

    # Group energies within _DUPLICATE_TOL_EV of their predecessor and average
    # mu over each group: repeated readings of one monochromator position.
    new_group = np.concatenate([[True], np.diff(energy) > _DUPLICATE_TOL_EV])
    n_groups = int(np.count_nonzero(new_group))
    if n_groups < len(energy):
        removed = len(energy) - n_groups
        if removed > len(energy) // 2:
            raise _fail(source, f"{removed} of {len(energy)} energies are repeats; not an energy column?")
        ids = np.cumsum(new_group) - 1
        counts = np.bincount(ids)
        energy = np.bincount(ids, weights=energy) / counts
        mu = np.bincount(ids, weights=mu) / counts
        notes.append(f"removed {removed} duplicated energ{'ies' if removed > 1 else 'y'} (mu averaged)")
    if len(energy) < MIN_POINTS:
        raise _fail(source, f"only {len(energy)} distinct energies (need at least {MIN_POINTS})")
    if not np.all(np.diff(energy) > 0):  # pragma: no cover - guaranteed by the steps above
        raise _fail(source, "energies are not strictly increasing after repair")
    return energy, mu, notes


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

def read_measured(path: str | Path, *, group: str | None = None,
                  columns: ChannelChoice | None = None) -> MeasuredData:
    """Read a measured (or simulated, for comparison) XAS spectrum.

    Args:
        path: XDI, Athena project (``.prj``), FEFF ``xmu.dat``, FDMNES output, or a
            column file (whitespace, comma or tab separated; optional header line
            of names or ``#`` comments).
        group: Athena group to read (label or larch key); None takes the first
            group with mu(E) data. Only for Athena projects.
        columns: explicit column choice for XDI and column files; None chooses
            by column names: an energy column ("energy", "e", "omega", ... or
            increasing values in an energy range), then a mu column ("mu",
            "xmu", "mutrans", "mufluor", "norm"), else transmission
            ``-ln(It/I0)`` from i0/itrans, else fluorescence ``If/I0``.

    Returns:
        MeasuredData with (N,) absolute energies in eV (strictly increasing) and raw mu.

    Raises:
        MeasuredReadError: one-line message naming the file and the problem (missing
            or empty file, unknown columns, no energy column, too few points,
            badly scrambled energies, no usable Athena group, ...).
    """
    path = Path(path)
    kind = detect_measured_format(path)
    if group is not None and kind != "athena":
        raise _fail(path, f"a group ({group!r}) can only be chosen in an Athena project")
    try:
        if kind == "athena":
            table = _read_athena(path, group)
        elif kind == "xdi":
            table = _read_xdi(path)
        elif kind in ("feff", "fdmnes"):
            table = _read_simulated(path, kind)
        else:
            table = _read_columns(path)
    except MeasuredReadError:
        raise
    except (OSError, UnicodeError) as exc:
        raise _fail(path, f"cannot read the file ({exc})") from exc
    if not table.columns:
        raise _fail(path, "no data columns")
    lengths = {len(v) for v in table.columns.values()}
    if len(lengths) != 1:
        raise _fail(path, "columns have different lengths")

    notes = list(table.notes)
    if table.fixed is not None and columns is not None:
        if kind == "athena":
            # Athena groups hold mu only; an explicit mu choice of other stored arrays is fine.
            choice = _resolve_choice(table.columns, columns, path, notes)
        else:
            raise _fail(path, f"columns cannot be chosen in a {kind.upper()} file")
    elif table.fixed is not None:
        choice = table.fixed
    else:
        choice = _resolve_choice(table.columns, columns, path, notes)
    mu = _absorption(table.columns, choice)
    energy = np.asarray(table.columns[choice.energy], dtype=np.float64)
    energy, mu, repairs = _repair(energy, mu, path)
    notes.extend(repairs)
    metadata = dict(table.metadata)
    metadata.setdefault("format", kind)
    return MeasuredData(
        source=str(path), label=table.label, energy_ev=energy, mu=mu, channel=choice.describe(),
        choice=choice, columns=table.columns,
        warnings=tuple(notes), metadata=metadata, format=kind,
        group=table.label if kind == "athena" else None,
    )
