"""Synthetic spectra and small files for the spectra tests (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import erf


def edge_mu(energy: np.ndarray, e0: float = 8979.0, step: float = 1.0, width: float = 2.0,
            white_line: float = 0.5, pre_slope: float = -1e-4, offset: float = 0.3) -> np.ndarray:
    """A K-edge-like mu(E): sloped pre-edge line, erf step at ``e0``, a white line above it."""
    rel = energy - e0
    return (offset + pre_slope * rel + step * 0.5 * (1.0 + erf(rel / width))
            + white_line * step * np.exp(-0.5 * ((rel - 6.0) / 3.0) ** 2))


def edge_energy(lo: float = 8879.0, hi: float = 9179.0, n: int = 601) -> np.ndarray:
    """(n,) evenly spaced energies in eV."""
    return np.linspace(lo, hi, n)


def write_columns(path: Path, names: list[str] | None, columns: list[np.ndarray], sep: str = " ",
                  comment_header: bool = True, preamble: str = "") -> Path:
    """Write a column file; ``names`` go on a '#' line (or a bare line when not comment_header)."""
    lines = [preamble.rstrip("\n")] if preamble else []
    if names:
        lines.append(("# " if comment_header else "") + sep.join(names))
    for row in zip(*columns):
        lines.append(sep.join(f"{v:.6f}" if np.isfinite(v) else "nan" for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def transmission_file(path: Path, e0: float = 8979.0, sep: str = ",") -> Path:
    """A CSV with energy, i0, itrans whose -ln(itrans/i0) is :func:`edge_mu`."""
    energy = edge_energy()
    i0 = np.full_like(energy, 1.0e5)
    itrans = i0 * np.exp(-edge_mu(energy, e0))
    return write_columns(path, ["energy", "i0", "itrans"], [energy, i0, itrans], sep=sep, comment_header=False)


def athena_project_text(groups: list[tuple[str, bool, np.ndarray, np.ndarray]]) -> str:
    """A minimal Athena (Perl dump) project; groups are (label, is_chi, x, y)."""
    lines = ["# Athena project file -- Athena version 0.8.056", "# synthetic test project"]
    for label, is_chi, x, y in groups:
        lines.append(f"$old_group = '{label[:4]}';")
        lines.append(f"@args = ('label','{label}','is_chi',{int(is_chi)},'is_xmu',{int(not is_chi)},"
                     "'bkg_e0',8979,'bkg_eshift',0,'bkg_z','Cu');")
        lines.append("@x = (" + ",".join(f"'{v:.4f}'" for v in x) + ");")
        lines.append("@y = (" + ",".join(f"'{v:.6f}'" for v in y) + ");")
        lines.append("[record]")
        lines.append("")
    lines += ["@journal = ();", "", "1;", ""]
    return "\n".join(lines)
