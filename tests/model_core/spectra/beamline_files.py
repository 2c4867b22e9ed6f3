"""Synthetic beamline files: the KEK-PF "9809" layout (BL9A), written from a known mu(E).

The layout follows what the PF/SPring-8/Aichi acquisition programs write (a fixed
header of 9809 / sample / comment / Ring / Mono lines, the scan blocks, the detector
crate line, then "Angle(c) Angle(o) time/s" and numbered channels with their "Mode"
and "Offset" lines); no real file was available, so the values are invented.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.model_core.spectra.synthetic_spectra import edge_energy, edge_mu

HC = 12398.419843320026
D_SI111 = 3.13551
#: The encoder reads this much more than the requested angle (degrees).
ENCODER_OFFSET_DEG = 0.0004


def bragg_angle_deg(energy_ev: np.ndarray, d: float = D_SI111) -> np.ndarray:
    return np.degrees(np.arcsin(HC / (2.0 * d * np.asarray(energy_ev))))


def write_bl9a(path: Path, *, mode: str = "fluorescence", named: bool = False, mono_line: bool = True,
               e0: float = 8979.0, n_sca: int = 3) -> dict[str, np.ndarray]:
    """Write a BL9A-style 9809 file; returns the true arrays (energy of the observed angle, mu, ...).

    Args:
        mode: "fluorescence" (I0, I1, Lytle-less: ``n_sca`` SCA channels and their ICR rates)
            or "transmission" (I0, I1 only).
        named: channels labelled I0, I1, SCA1, ... instead of numbers with a Mode line.
        mono_line: write the "Mono : Si(111) D= 3.13551 A" line (the d-spacing).
    """
    energy_requested = edge_energy(8879.0, 9179.0, 301)[::-1]  # scans run from high to low angle
    angle_c = bragg_angle_deg(energy_requested)
    angle_o = angle_c + ENCODER_OFFSET_DEG
    energy = HC / (2.0 * D_SI111 * np.sin(np.radians(angle_o)))
    mu = edge_mu(energy, e0=e0)
    i0 = 2.0e5 * (1.0 + 0.02 * np.cos(energy / 11.0))
    i1 = i0 * np.exp(-mu)
    channels = [i0, i1]
    modes = [1, 2]
    labels = ["I0", "I1"]
    if mode == "fluorescence":
        for k in range(n_sca):
            channels.append(i0 * mu * (0.01 + 0.002 * k))
            modes.append(4)
            labels.append(f"SCA{k + 1}")
        for k in range(n_sca):
            channels.append(np.full_like(i0, 5.0e4 + 100 * k))
            modes.append(104)
            labels.append(f"ICR{k + 1}")
    kind = "Fluorescence( 3)" if mode == "fluorescence" else "Transmission( 2)"
    header = [
        "  9809     KEK-PF   BL9A",
        f" {path.name}     21.06.15 10:12 - 21.06.15 10:58",
        "  CuO pellet, BN diluted",
        " Ring :  2.50 GeV  450.2 mA -  449.6 mA",
        (" Mono :   Si(111)     D= 3.13551 A    Initial angle= 13.00000 deg" if mono_line
         else " Mono :   Si(111)     Initial angle= 13.00000 deg"),
        f" BL9A       {kind}   Repetition=  1   Points=  {len(energy)}",
        " Param file : cu_k.prm   angle axis (deg)  Block =  1",
        "",
        " Block      Init-Ang  Final-Ang     Step/deg     Time/s       Num",
        f"     1       {angle_c[0]:8.5f}   {angle_c[-1]:8.5f}    {angle_c[1] - angle_c[0]:9.6f}"
        f"       1.00       {len(energy)}",
        f" ORTEC( 3)     NDCH = {len(channels):2d}",
        "  Angle(c)  Angle(o)    time/s" + "".join(f"{(lab if named else str(k + 1)):>10}"
                                            for k, lab in enumerate(labels)),
    ]
    if not named:
        header.append("      Mode         0         0" + "".join(f"{m:>10}" for m in modes))
        header.append("    Offset         0         0" + "".join(f"{0.0:>10.3f}" for _ in modes))
    rows = [f"{c:10.5f}{o:10.5f}{1.0:10.2f}" + "".join(f"{ch[k]:12.1f}" for ch in channels)
            for k, (c, o) in enumerate(zip(angle_c, angle_o))]
    path.write_text("\n".join(header + rows) + "\n", encoding="ascii")
    return {"energy": energy, "mu": mu, "angle_o": angle_o, "angle_c": angle_c, "i0": i0, "i1": i1,
            "fluor": sum(channels[2:2 + n_sca]) if mode == "fluorescence" else None}
