"""The "9809" format of KEK-PF (BL9A, BL12C, NW10A, ...) and of SPring-8, SAGA-LS and Aichi SR.

Layout (fixed-width text, no comment characters)::

      9809     KEK-PF   BL9A
     CuO_fl.dat     21.06.15 10:12 - 21.06.15 10:58
     <comment>
     Ring :  2.50 GeV  450.2 mA -  449.6 mA
     Mono :   Si(111)     D= 3.13551 A    Initial angle= 13.00000 deg
     BL9A       Fluorescence( 3)   Repetition=  1   Points=  120
     Param file : cu_k.prm   angle axis (deg)  Block =  3
     Block      Init-Ang  Final-Ang     Step/deg     Time/s       Num
         1 ...
     ORTEC( 3)     NDCH = 5
      Angle(c)  Angle(o)    time/s         1         2         3         4         5
          Mode         0         0         1         2         3         4         4
        Offset         0         0     12.000     8.000     1.500     1.400     1.600
      13.10000  13.09987      1.00    ...

The columns are the calculated (requested) and observed (encoder) Bragg
angles in degrees, the counting time, then one column per detector channel.
Channels are labelled by number (some beamline programs write names such as
I0, I1, SCA1); the "Mode" line gives each channel's role. Read here as:
mode 1 incident intensity (I0), 2 transmitted (I1), 3 a fluorescence ion
chamber (Lytle), 4 a fluorescence detector element (SCA/SSD channel; several
are summed), anything else (5, 100 and above: count rates and resets) an
auxiliary counter that is never a signal. Without a Mode line the first
channel is I0 and the second I1, as Demeter's PFBL12C plugin assumes.

The energy is computed from the OBSERVED angle, E = hc / (2 d sin θ) with d
from the "D=" of the Mono line: the encoder reading is where the crystal
actually was; the requested angle is kept as a column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_core.spectra.measured.base import ChannelChoice, Table, fail, key
from model_core.spectra.measured.channels import I0_NAMES, IF_NAMES, IT_NAMES, find
from model_core.spectra.measured.columns import d_spacing_from

_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_ROLE_NAMES = {1: "I0", 2: "I1", 3: "Lytle", 4: "SCA"}


def _numbers(line: str) -> list[float] | None:
    fields = line.split()
    if not fields or not all(_NUMBER.match(f) for f in fields):
        return None
    return [float(f) for f in fields]


def _channel_names(labels: list[str], modes: list[int] | None) -> tuple[list[str], str | None]:
    """Names for the detector channels, and a note when they are inferred."""
    if labels and not all(_NUMBER.match(label) for label in labels):
        return labels, None
    n = len(labels)
    if modes is None or len(modes) != n:
        names = ["I0", "I1", *[f"ch{k}" for k in range(3, n + 1)]][:n]
        return names, "no detector Mode line; taking channel 1 as I0 and channel 2 as I1"
    names, counts = [], {}
    for mode in modes:
        role = _ROLE_NAMES.get(mode, "aux")
        counts[role] = counts.get(role, 0) + 1
        names.append(role if role in ("I0", "I1", "Lytle") and counts[role] == 1 else f"{role}{counts[role]}")
    return names, None


def read(path: Path, group: str | None = None) -> Table:
    """Read a 9809 file: angles, time and named detector channels, with the d-spacing and a suggested channel.

    Raises:
        MeasuredReadError: no column header line or no data rows.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header_at = next((i for i, line in enumerate(lines) if re.search(r"angle\s*\(\s*c\s*\)", line, re.I)), None)
    if header_at is None:
        raise fail(path, "a KEK-PF 9809 file without its 'Angle(c) Angle(o) ...' column header line")
    labels = lines[header_at].split()
    modes = None
    rows: list[list[float]] = []
    for line in lines[header_at + 1:]:
        first = line.split()[0].lower() if line.split() else ""
        if first == "mode":
            try:
                modes = [int(float(v)) for v in line.split()[1:]]
            except ValueError:
                modes = None
            continue
        if first == "offset":
            continue
        values = _numbers(line)
        if values is None:
            if rows:
                break  # a trailer after the data
            continue
        rows.append(values)
    if not rows:
        raise fail(path, "no data rows after the column header")
    # Rows of the usual length only: an aborted last point is shorter, and some
    # programs append unlabelled values (energies, encoder readings) to every row.
    lengths = [len(r) for r in rows]
    width = max(set(lengths), key=lengths.count)
    if width < 4:
        raise fail(path, f"data rows have {width} values; expected the two angles, the time and a channel")
    skipped = len(rows) - lengths.count(width)
    data = np.array([r for r in rows if len(r) == width], dtype=np.float64)
    n_channels = min(width, len(labels)) - 3
    channel_modes = modes[-n_channels:] if modes and len(modes) >= n_channels else None
    channels, note = _channel_names(labels[3:3 + n_channels], channel_modes)
    names = ["Angle(c)", "Angle(o)", "Time", *channels,
             *[f"extra{k + 1}" for k in range(width - 3 - n_channels)]]
    columns = {name: data[:, k] for k, name in enumerate(names)}
    head = lines[:header_at]
    metadata = {"format": "pf9809"}
    beamline = head[0].split()[1:] if head else []
    if beamline:
        metadata["beamline_name"] = " ".join(beamline)
    d_spacing = d_spacing_from(head)
    if d_spacing is not None:
        metadata["d_spacing_a"] = d_spacing
    notes = [note] if note else []
    if skipped:
        notes.append(f"skipped {skipped} data row{'s' if skipped > 1 else ''} of unusual length")
    label = (head[1].split()[0] if len(head) > 1 and head[1].split() else path.name).rsplit(".", 1)[0]
    guesses: list[str] = []
    return Table(columns=columns, metadata=metadata, label=label or path.stem,
                 suggested=_suggest(columns, " ".join(head), guesses), notes=notes, suggestion_notes=guesses)


def _suggest(columns: dict[str, np.ndarray], header: str, notes: list[str]) -> ChannelChoice | None:
    """The channel the header describes: fluorescence (summed detectors) / I0, or -ln(I1/I0)."""
    i0 = find(columns, I0_NAMES)
    it = find(columns, IT_NAMES)
    fluorescence = [n for n in columns if re.fullmatch(r"(lytle|sca|ssd|sdd|fluor|if|ifluor|pips)\d*", key(n))]
    if not fluorescence and find(columns, IF_NAMES):
        fluorescence = [find(columns, IF_NAMES)]
    wants_fluorescence = bool(re.search(r"fluo", header, re.IGNORECASE)) or it is None
    if i0 is None:
        return None
    if fluorescence and wants_fluorescence:
        if len(fluorescence) > 1:
            notes.append(f"summed {len(fluorescence)} fluorescence channels ({'+'.join(fluorescence)})")
        return ChannelChoice("Angle(o)", "+".join(fluorescence), i0, "fluorescence")
    if it is not None:
        return ChannelChoice("Angle(o)", it, i0, "transmission")
    return None
