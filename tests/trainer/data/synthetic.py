"""Writers of tiny synthetic FEFF / FDMNES / structure files for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FCC_CU_POSCAR = """Cu4 fcc
1.0
3.61 0.0 0.0
0.0 3.61 0.0
0.0 0.0 3.61
Cu
4
direct
0.0 0.0 0.0 Cu
0.5 0.5 0.0 Cu
0.5 0.0 0.5 Cu
0.0 0.5 0.5 Cu
"""

CLUSTER_FEFF_INP = """TITLE synthetic Cu cluster
EDGE K
POTENTIALS
 0 29 Cu
 1 29 Cu
 2 8 O
ATOMS
 0.000 0.000 0.000 0 Cu 0.000 0
 1.805 1.805 0.000 1 Cu 2.553 1
 -1.805 1.805 0.000 1 Cu 2.553 2
 0.000 0.000 1.900 2 O 1.900 3
 0.000 0.000 -1.900 2 O 1.900 4
END
"""


def step_spectrum(energy_rel: np.ndarray, step: float = 1.0, pre_level: float = 0.0,
                  pre_slope: float = 0.0, edge_width: float = 1.5) -> np.ndarray:
    """Smooth edge: pre-edge line, arctan-like rise of height ``step`` at 0, gentle wiggles after."""
    e = np.asarray(energy_rel, dtype=float)
    rise = 1.0 / (1.0 + np.exp(-e / edge_width))
    wiggle = 0.05 * np.sin(e / 6.0) * rise * np.exp(-np.clip(e, 0, None) / 80.0)
    return pre_level + pre_slope * e + step * (rise + wiggle)


def write_xmu(path: Path, e0: float = 8990.0, start: float = -15.0, stop: float = 130.0,
              step_ev: float = 0.5) -> np.ndarray:
    """A FEFF-style xmu.dat; returns the relative energies."""
    rel = np.arange(start, stop + 1e-9, step_ev)
    mu = step_spectrum(rel)
    lines = ["# synthetic   FEFF 9.9.1", "#  xsedge+ 50, used to normalize mu  1.0000E-04",
             "# -----", "#  omega    e    k    mu    mu0     chi     @#"]
    k = np.sign(rel) * np.sqrt(np.abs(rel) / 3.81)
    for e, m, kk in zip(rel, mu, k):
        lines.append(f"  {e0 + e:10.3f} {e:10.3f} {kk:7.3f} {m:.5E} {m:.5E} {0.0:.5E}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return rel


def write_feff_material(root: Path, material: str = "mp-1", sites: tuple[int, ...] = (0, 1)) -> None:
    """``<material>/POSCAR`` + ``FEFF-XANES/<NNN>_Cu/{feff.inp,xmu.dat}`` per site."""
    folder = root / material
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "POSCAR").write_text(FCC_CU_POSCAR)
    for site in sites:
        run = folder / "FEFF-XANES" / f"{site:03d}_Cu"
        run.mkdir(parents=True, exist_ok=True)
        (run / "feff.inp").write_text(CLUSTER_FEFF_INP)
        write_xmu(run / "xmu.dat", e0=8990.0 + site)


def fdmnes_rows(energy: np.ndarray, mu: np.ndarray) -> str:
    return "\n".join(f"  {e:9.3f}  {m:.7E}" for e, m in zip(energy, mu)) + "\n"


def write_xanesnet_raw(path: Path, e_edge: float = 7112.0, e_cut: float = -1.5, z: int = 26) -> None:
    energy = np.arange(e_edge - 15, e_edge + 60 + 1e-9, 0.2)
    mu = step_spectrum(energy - e_edge - 10, step=0.6, pre_level=0.01)
    head = (f"  {e_edge:.3f}   {z}  1  1  8.99E-02 -5.83E+00 {e_cut:.7E}  1  1  7.2664734E+03  0.0E+00  0.0E+00"
            "  1.99E+00  1.0E+00  0.0E+00 = E_edge, Z, n_edge, j_edge, Abs_before_edge, VO_interstitial, "
            "E_cut, ninitl, ninit1, Epsii, UnitCell_Volume, Surface_ref, f0_forward, natomsym_f, abs_u_i\n"
            "    Energy    <xanes>    \n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + fdmnes_rows(energy, mu))


def write_xanesnet_spectrum(path: Path, e_edge: float = 7112.0, mu_scale: float = 0.6) -> None:
    energy = e_edge + np.linspace(-15, 60, 226)
    mu = step_spectrum(energy - e_edge - 10, step=mu_scale, pre_level=0.01)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("    FDMNES\n    energy     <xanes>\n" + fdmnes_rows(energy, mu))


FE_COMPLEX_XYZ = """7
{name}_bav
26\t0.0000000000\t0.0000000000\t0.0000000000
8\t1.9500000000\t0.0000000000\t0.0000000000
8\t-1.9500000000\t0.0000000000\t0.0000000000
8\t0.0000000000\t1.9500000000\t0.0000000000
8\t0.0000000000\t-1.9500000000\t0.0000000000
7\t0.0000000000\t0.0000000000\t2.0500000000
7\t0.0000000000\t0.0000000000\t-2.0500000000
"""


def write_xanesnet_complex(root: Path, name: str, raw: bool = True, e_cut: float = -1.5) -> None:
    (root / "xyz").mkdir(parents=True, exist_ok=True)
    (root / "xyz" / f"{name}.xyz").write_text(FE_COMPLEX_XYZ.format(name=name))
    write_xanesnet_spectrum(root / "spectra" / f"{name}.txt")
    if raw:
        write_xanesnet_raw(root / "raw" / f"{name}.txt", e_cut=e_cut)
