"""Display tables for elements: Jmol colours and covalent radii (Z = 1..96).

These numbers only decide how atoms are drawn (sphere colour and size, which
atom pairs get a bond stick); nothing scientific is computed from them.
Colours are the Jmol/CPK defaults; radii are single-bond covalent radii in Å
(Cordero et al., Dalton Trans. 2008; low-spin values for Mn, Fe, Co).
"""

from __future__ import annotations

import numpy as np

# Jmol colours as hex RGB, index 0 is an unknown-element grey.
_JMOL_HEX: tuple[str, ...] = (
    "FF1493",  # 0 unknown
    "FFFFFF", "D9FFFF", "CC80FF", "C2FF00", "FFB5B5", "909090", "3050F8", "FF0D0D", "90E050",
    "B3E3F5", "AB5CF2", "8AFF00", "BFA6A6", "F0C8A0", "FF8000", "FFFF30", "1FF01F", "80D1E3",
    "8F40D4", "3DFF00", "E6E6E6", "BFC2C7", "A6A6AB", "8A99C7", "9C7AC7", "E06633", "F090A0",
    "50D050", "C88033", "7D80B0", "C28F8F", "668F8F", "BD80E3", "FFA100", "A62929", "5CB8D1",
    "702EB0", "00FF00", "94FFFF", "94E0E0", "73C2C9", "54B5B5", "3B9E9E", "248F8F", "0A7D8C",
    "006985", "C0C0C0", "FFD98F", "A67573", "668080", "9E63B5", "D47A00", "940094", "429EB0",
    "57178F", "00C900", "70D4FF", "FFFFC7", "D9FFC7", "C7FFC7", "A3FFC7", "8FFFC7", "61FFC7",
    "45FFC7", "30FFC7", "1FFFC7", "00FF9C", "00E675", "00D452", "00BF38", "00AB24", "4DC2FF",
    "4DA6FF", "2194D6", "267DAB", "266696", "175487", "D0D0E0", "FFD123", "B8B8D0", "A6544D",
    "575961", "9E4FB5", "AB5C00", "754F45", "428296", "420066", "007D00", "70ABFA", "00BAFF",
    "00A1FF", "008FFF", "0080FF", "006BFF", "545CF2", "785CE3",
)

# Covalent radii in Å, index 0 is a fallback for unknown elements.
_COVALENT_RADII: tuple[float, ...] = (
    1.50,
    0.31, 0.28, 1.28, 0.96, 0.84, 0.76, 0.71, 0.66, 0.57, 0.58,  # H..Ne
    1.66, 1.41, 1.21, 1.11, 1.07, 1.05, 1.02, 1.06,  # Na..Ar
    2.03, 1.76, 1.70, 1.60, 1.53, 1.39, 1.39, 1.32, 1.26, 1.24, 1.32, 1.22,  # K..Zn
    1.22, 1.20, 1.19, 1.20, 1.20, 1.16,  # Ga..Kr
    2.20, 1.95, 1.90, 1.75, 1.64, 1.54, 1.47, 1.46, 1.42, 1.39, 1.45, 1.44,  # Rb..Cd
    1.42, 1.39, 1.39, 1.38, 1.39, 1.40,  # In..Xe
    2.44, 2.15, 2.07, 2.04, 2.03, 2.01, 1.99, 1.98, 1.98, 1.96, 1.94, 1.92, 1.92, 1.89, 1.90,
    1.87, 1.87,  # Cs..Lu
    1.75, 1.70, 1.62, 1.51, 1.44, 1.41, 1.36, 1.36, 1.32,  # Hf..Hg
    1.45, 1.46, 1.48, 1.40, 1.50, 1.50,  # Tl..Rn
    2.60, 2.21, 2.15, 2.06, 2.00, 1.96, 1.90, 1.87, 1.80, 1.69,  # Fr..Cm
)

MAX_Z = 96

assert len(_JMOL_HEX) == MAX_Z + 1 and len(_COVALENT_RADII) == MAX_Z + 1


def _hex_to_rgb(code: str) -> tuple[float, float, float]:
    return tuple(int(code[i:i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


_RGB = np.array([_hex_to_rgb(code) for code in _JMOL_HEX], dtype=np.float32)
_RADII = np.array(_COVALENT_RADII, dtype=np.float64)


def jmol_colors(atomic_numbers: np.ndarray) -> np.ndarray:
    """(N, 4) RGBA float colours of atoms; elements beyond Z=96 get the fallback colour."""
    z = np.asarray(atomic_numbers, dtype=np.int64)
    z = np.where((z >= 1) & (z <= MAX_Z), z, 0)
    rgba = np.ones((len(z), 4), dtype=np.float32)
    rgba[:, :3] = _RGB[z]
    return rgba


def covalent_radii(atomic_numbers: np.ndarray) -> np.ndarray:
    """(N,) covalent radii in Å; elements beyond Z=96 get a generic 1.5 Å."""
    z = np.asarray(atomic_numbers, dtype=np.int64)
    z = np.where((z >= 1) & (z <= MAX_Z), z, 0)
    return _RADII[z]


def color_hex(atomic_number: int) -> str:
    """"#RRGGBB" Jmol colour of one element (for legends and table swatches)."""
    z = int(atomic_number)
    return "#" + (_JMOL_HEX[z] if 1 <= z <= MAX_Z else _JMOL_HEX[0])
