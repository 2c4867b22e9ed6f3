"""The one exception every structure reader raises for a file it cannot use."""

from __future__ import annotations

from pathlib import Path


class StructureReadError(ValueError):
    """A structure file could not be turned into a :class:`~model_core.types.Structure`.

    ``str(error)`` is a single line naming the file and the problem, ready for a
    status bar or a message box, e.g.
    ``"Cu2O.cif: partial occupancy on sites Cu1 (Cu 0.5, Ni 0.5) — order the structure first"``.

    Attributes:
        path: the file that failed (as given).
        problem: the problem alone, without the file name.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        # Collapse multi-line messages (pymatgen/ASE often produce them) so the
        # GUI can show the error in one line.
        self.problem = "; ".join(part.strip() for part in str(problem).splitlines() if part.strip())
        super().__init__(f"{Path(self.path).name or self.path}: {self.problem}")
