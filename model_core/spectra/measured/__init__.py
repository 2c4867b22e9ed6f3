"""Reading measured XAS spectra: XDI, Athena projects, column files, KEK-PF 9809 files, FEFF/FDMNES outputs.

Usage::

    from model_core.spectra.measured import read_measured, ChannelChoice, MeasuredReadError

    data = read_measured("Cu_foil.xdi")                 # -> MeasuredData
    data.energy_ev, data.mu, data.channel, data.warnings
    data = read_measured("scan.dat", columns=ChannelChoice(
        energy="energy", numerator="ifluor", denominator="i0", mode="fluorescence"))
    names = list_athena_groups("project.prj")
    data = read_measured("project.prj", group=names[1])

    preview = inspect_columns("bl9a_scan.dat")          # -> ColumnPreview (for an import preview)
    preview.names, preview.columns, preview.guess, preview.notes, preview.problem
    data = read_measured("bl9a_scan.dat", columns=preview.guess)

The format comes from the registry in :mod:`model_core.formats`; each family
has its reader module here (:mod:`.xdi`, :mod:`.athena`, :mod:`.columns`,
:mod:`.pf9809`, :mod:`.simulations`), imported only when used, with parsing
delegated to xraylarch and :mod:`model_core.spectra.simulated`. Channel
guessing lives in :mod:`.channels` and the safe repairs (NaN rows, keV
energies, a few out-of-order or repeated energies) in :mod:`.repairs`; every
guess and repair is listed in :attr:`MeasuredData.warnings`. Anything else
raises :class:`MeasuredReadError`, whose message is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from model_core import formats
from model_core.spectra.measured.base import (CHANNEL_MODES, ChannelChoice, ColumnPreview, MeasuredData,
                                              MeasuredReadError, Table, fail)
from model_core.spectra.measured.channels import (COLUMN_SPEC_HELP, HC_EV_ANGSTROM, absorption, bragg_energy_ev,
                                                  choice_from_spec, energy_of, parse_column_spec, resolve_choice)
from model_core.spectra.measured.repairs import MIN_POINTS, repair

__all__ = [
    "CHANNEL_MODES",
    "COLUMN_SPEC_HELP",
    "HC_EV_ANGSTROM",
    "MIN_POINTS",
    "ChannelChoice",
    "ColumnPreview",
    "MeasuredData",
    "MeasuredReadError",
    "bragg_energy_ev",
    "choice_from_spec",
    "detect_measured_format",
    "inspect_columns",
    "list_athena_groups",
    "list_columns",
    "parse_column_spec",
    "read_measured",
]


def detect_measured_format(path: str | Path) -> str:
    """Guess the format of a spectrum file from its name and first bytes.

    Returns:
        A key of :data:`model_core.formats.SPECTRUM_FORMATS`: "athena", "xdi",
        "pf9809", "feff", "fdmnes" or "columns".

    Raises:
        MeasuredReadError: missing, unreadable or empty file.
    """
    path = Path(path)
    if not path.exists():
        raise fail(path, "file not found")
    if path.is_dir():
        raise fail(path, "is a folder, not a spectrum file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(formats.SNIFF_BYTES)
    except OSError as exc:
        raise fail(path, f"cannot read the file ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise fail(path, "the file is empty")
    text = formats.read_head(path)
    if raw[:2] == b"\x1f\x8b":
        if text is None:
            raise fail(path, "corrupt gzip file")
        if not text.strip():
            raise fail(path, "the file is empty")
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff") if text is None else text
    return formats.spectrum_format(path, text)


def _read_table(path: Path, kind: str, group: str | None) -> Table:
    reader = formats.load_reader(formats.SPECTRUM_FORMATS[kind])
    try:
        table = reader(path, group)
    except MeasuredReadError:
        raise
    except (OSError, UnicodeError) as exc:
        raise fail(path, f"cannot read the file ({exc})") from exc
    if not table.columns:
        raise fail(path, "no data columns")
    if len({len(v) for v in table.columns.values()}) != 1:
        raise fail(path, "columns have different lengths")
    return table


def _choose(table: Table, kind: str, columns: ChannelChoice | None, path: Path, notes: list[str]) -> ChannelChoice:
    d_spacing = table.metadata.get("d_spacing_a")
    if table.fixed is not None and columns is not None:
        if kind != "athena":
            raise fail(path, f"columns cannot be chosen in a {kind.upper()} file")
        # Athena groups hold mu only; an explicit mu choice of other stored arrays is fine.
        return resolve_choice(table.columns, columns, path, notes, d_spacing)
    if table.fixed is not None:
        return table.fixed
    if columns is None and table.suggested is not None:
        notes.extend(table.suggestion_notes)
    return resolve_choice(table.columns, columns or table.suggested, path, notes, d_spacing)


def read_measured(path: str | Path, *, group: str | None = None,
                  columns: ChannelChoice | None = None) -> MeasuredData:
    """Read a measured (or simulated, for comparison) XAS spectrum.

    Args:
        path: XDI, Athena project (``.prj``), KEK-PF 9809 file, FEFF ``xmu.dat``,
            FDMNES output, or a column file (whitespace, comma or tab separated;
            optional header line of names or ``#`` comments).
        group: Athena group to read (label or larch key); None takes the first
            group with mu(E) data. Only for Athena projects.
        columns: explicit column choice for XDI, 9809 and column files; None
            chooses by column names: an energy column ("energy", "e", "omega",
            ... ; else a monochromator angle such as "Angle(o)" converted with
            the header's d-spacing; else increasing values in an energy range),
            then a mu column ("mu", "xmu", "mutrans", "mufluor", "norm"), else
            transmission ``-ln(It/I0)`` from i0/itrans, else fluorescence
            ``If/I0`` (numbered detector channels such as SCA1, SCA2 summed).

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
        raise fail(path, f"a group ({group!r}) can only be chosen in an Athena project")
    table = _read_table(path, kind, group)
    notes = list(table.notes)
    choice = _choose(table, kind, columns, path, notes)
    mu = absorption(table.columns, choice)
    energy = energy_of(table.columns, choice, notes)
    energy, mu, repairs = repair(energy, mu, path)
    notes.extend(repairs)
    metadata = dict(table.metadata)
    metadata.setdefault("format", kind)
    return MeasuredData(
        source=str(path), label=table.label, energy_ev=energy, mu=mu, channel=choice.describe(),
        choice=choice, columns=table.columns, warnings=tuple(notes), metadata=metadata, format=kind,
        group=table.label if kind == "athena" else None,
    )


def inspect_columns(path: str | Path, *, group: str | None = None) -> ColumnPreview:
    """Every column of a spectrum file with the channel the reader would choose, for an import preview.

    Reading then goes through ``read_measured(path, columns=choice)`` with the
    preview's ``guess`` or the user's own :class:`ChannelChoice`.

    Raises:
        MeasuredReadError: the file cannot be read as a table (guessing failing
            is not an error: ``guess`` is None and ``problem`` says why).
    """
    path = Path(path)
    kind = detect_measured_format(path)
    table = _read_table(path, kind, group if kind == "athena" else None)
    notes = list(table.notes)
    try:
        guess, problem = _choose(table, kind, None, path, notes), None
    except MeasuredReadError as exc:
        guess, problem = None, str(exc)
    return ColumnPreview(source=str(path), format=kind, columns=table.columns, guess=guess, notes=tuple(notes),
                         problem=problem, fixed=table.fixed is not None, metadata=table.metadata)


def list_columns(path: str | Path) -> list[str]:
    """Column names of a spectrum file, in file order (for a column chooser).

    Works when :func:`read_measured` cannot pick a channel by itself.

    Raises:
        MeasuredReadError: the file cannot be read as a table.
    """
    return list(inspect_columns(path).names)


def list_athena_groups(path: str | Path) -> list[str]:
    """Names of the groups of an Athena project that hold mu(E) data, in file order.

    The names are Athena's group labels (larch's group keys when labels repeat);
    either can be passed to :func:`read_measured` as ``group``.

    Raises:
        MeasuredReadError: unreadable project, or no group with mu(E) data.
    """
    path = Path(path)
    detect_measured_format(path)  # missing/empty file errors
    from model_core.spectra.measured import athena

    return athena.group_names(path)

