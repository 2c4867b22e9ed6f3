"""Compute FEFF10 XANES for many absorber sites of a structure: resumable, cancellable.

Layout of the results, the same as the Cu FEFF 9.9.1 dataset's::

    OUT/<structure name>/POSCAR                       (structure.xyz for a molecule)
    OUT/<structure name>/FEFF-XANES/<NNN>_<El>/feff.inp
    OUT/<structure name>/FEFF-XANES/<NNN>_<El>/xmu.dat   (after a successful run)

``NNN`` is the 0-based index of the absorber in the structure's atom order (the
order of the written POSCAR). Only one representative of each group of
symmetry-equivalent absorbers is computed
(:meth:`model_core.types.SiteSymmetry.representatives`);
:attr:`SimulationSummary.equivalent_sites` says which atoms each run stands for.
Each site runs as a :class:`~model_core.feff.tasks.SiteTask` in a local pool or
through Parsl (:mod:`model_core.feff.executors`), FEFF itself in a child process
group (:mod:`model_core.feff.process`).

Usage::

    from model_core.feff.simulation import simulate
    from model_core.sites import select_sites

    selection = select_sites(structure, element="Cu")
    summary = simulate(structure, selection, "runs", preset="fast", workers=2)
    print(summary.describe())
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from model_core.feff.errors import one_line
from model_core.feff.executors import run_locally, run_with_parsl
from model_core.feff.inputs import FeffPreset, build_site_input, get_preset, normalize_edge, site_dir_name
from model_core.feff.process import check_feff_available
from model_core.feff.tasks import SiteResult, SiteTask, run_site
from model_core.feff.xmu import is_valid_xmu
from model_core.types import SiteSelection, SiteSymmetry, Structure, element_symbol

__all__ = [
    "ProgressCallback",
    "SimulationSummary",
    "SiteRun",
    "simulate",
    "structure_folder_name",
]

#: Progress callback: (sites finished so far, total sites, one-line status of the last one).
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SiteRun:
    """One representative site and the atoms it stands for.

    Attributes:
        site: 0-based index of the representative absorber.
        run_dir: its folder ``.../FEFF-XANES/<NNN>_<El>``.
        stands_for: all atoms of the structure equivalent to it (itself included).
    """

    site: int
    run_dir: Path
    stands_for: tuple[int, ...]


@dataclass
class SimulationSummary:
    """What :func:`simulate` did for one structure.

    Attributes:
        structure_name: name of the structure's folder.
        structure_dir: ``OUT/<structure name>``.
        preset: preset name.
        edge: absorption edge.
        runs: the representative sites, in selection order.
        done: site folders computed now.
        skipped: site folders that already held a valid xmu.dat for the same input.
        failed: (site folder, reason) of sites that failed.
        cancelled: site folders not computed because of cancellation.
        written: site folders whose feff.inp was (re)written.
        seconds: wall time of each site computed now, by folder.
        inputs_only: only inputs were written.
    """

    structure_name: str
    structure_dir: Path
    preset: str
    edge: str
    runs: list[SiteRun] = field(default_factory=list)
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    seconds: dict[Path, float] = field(default_factory=dict)
    inputs_only: bool = False

    @property
    def equivalent_sites(self) -> dict[int, tuple[int, ...]]:
        """Representative site -> every atom index it stands for."""
        return {run.site: run.stands_for for run in self.runs}

    @property
    def ok(self) -> bool:
        """True when no site failed or was cancelled."""
        return not self.failed and not self.cancelled

    def describe(self) -> str:
        """A few lines for a terminal: counts, failures with reasons, equivalences."""
        head = (f"{self.structure_name}: {len(self.runs)} site(s) [{self.preset}, {self.edge} edge] -> "
                f"{self.structure_dir}")
        if self.inputs_only:
            counts = f"  inputs written: {len(self.written)}, already computed: {len(self.skipped)}"
        else:
            counts = (f"  done: {len(self.done)}, skipped (already computed): {len(self.skipped)}, "
                      f"failed: {len(self.failed)}, cancelled: {len(self.cancelled)}")
        lines = [head, counts]
        lines += [f"  FAILED {path}: {reason}" for path, reason in self.failed]
        for run in self.runs:
            if len(run.stands_for) > 1:
                others = ",".join(str(i) for i in run.stands_for)
                lines.append(f"  site {run.site} stands for {len(run.stands_for)} equivalent sites: {others}")
        return "\n".join(lines)


def structure_folder_name(structure: Structure) -> str:
    """Folder name of a structure: its name with path separators and odd characters replaced."""
    name = structure.name or structure.formula
    name = re.sub(r"[^A-Za-z0-9._+()\-]+", "_", name).strip("._") or structure.formula
    return name


def _write_structure_file(structure: Structure, folder: Path) -> Path:
    """POSCAR for a crystal (site order kept, so NNN indexes it), xyz for a molecule."""
    folder.mkdir(parents=True, exist_ok=True)
    if structure.is_periodic:
        from pymatgen.io.vasp import Poscar

        from model_core.io.convert import to_pymatgen

        path = folder / "POSCAR"
        text = Poscar(to_pymatgen(structure), comment=structure.name or structure.formula).get_str()
    else:
        path = folder / "structure.xyz"
        rows = [f"{s:<2s} {x:14.8f} {y:14.8f} {z:14.8f}"
                for s, (x, y, z) in zip(structure.symbols, structure.positions)]
        text = "\n".join([str(structure.n_atoms), structure.name or structure.formula, *rows]) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _cards_only(text: str) -> str:
    """The input without its header (comments and TITLEs), to compare two inputs."""
    return "\n".join(line.rstrip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith(("*", "TITLE")))


def _site_groups(structure: Structure, selection: SiteSelection,
                 symmetry: SiteSymmetry | None) -> list[tuple[int, tuple[int, ...]]]:
    """(representative, every atom equivalent to it) per equivalence group met in the selection."""
    for index in selection.indices:
        if not 0 <= int(index) < structure.n_atoms:
            raise ValueError(f"site {int(index)} is out of range for {structure.n_atoms} atoms")
    if symmetry is None:
        from model_core.symmetry import analyze_symmetry

        symmetry = analyze_symmetry(structure)
    representatives, _ = symmetry.representatives(selection.indices)
    return [(int(rep), tuple(int(i) for i in np.flatnonzero(symmetry.group == symmetry.group[rep])))
            for rep in representatives]


def simulate(structure: Structure, selection: SiteSelection, out_dir: str | Path,
             preset: str | FeffPreset = "reference", edge: str = "K", *, workers: int = 1,
             inputs_only: bool = False, parsl_config: str | Path | None = None,
             progress: ProgressCallback | None = None, cancel_event: threading.Event | None = None,
             timeout_s: float | None = None, symmetry: SiteSymmetry | None = None,
             site_task: Callable[[SiteTask], SiteResult] | None = None,
             keep_work: bool = False, prepared: Callable[[int, int], None] | None = None) -> SimulationSummary:
    """Compute FEFF10 XANES for the selected absorbers of one structure.

    Symmetry-equivalent selected sites are computed once. Sites whose folder already
    holds a valid xmu.dat for the same input cards are skipped (resume). A site whose
    folder holds results of *different* inputs (another preset or edge) is reported
    as failed rather than overwritten. Failing sites are reported; the others go on.

    Args:
        structure: the structure.
        selection: absorber sites (e.g. :func:`model_core.sites.select_sites`);
            weights are ignored, equivalence is recomputed.
        out_dir: output root; results go to ``out_dir/<structure name>/``.
        preset: preset name or object (:data:`model_core.feff.inputs.PRESETS`).
        edge: "K" or "L3" (any edge in :data:`model_core.feff.inputs.EDGES`).
        workers: parallel FEFF runs on this machine (1: one at a time in a thread
            of this process; more: a spawn-context process pool).
        inputs_only: write feff.inp files (and the structure file) without running FEFF.
        parsl_config: a Python file defining ``config`` (a parsl.config.Config); the
            sites then run as Parsl python_apps instead of in the local pool.
        progress: called after each site with (finished, total, status line). Sites
            that need no FEFF run now (already computed, inputs written, failed
            input generation) are reported first, while the inputs are prepared.
        cancel_event: when set, running FEFF processes are killed and no new site
            starts; the summary lists those sites as cancelled.
        timeout_s: wall-time limit per site in seconds (None: no limit).
        symmetry: precomputed :func:`model_core.symmetry.analyze_symmetry` result.
        site_task: replaces :func:`run_site` (must be picklable for process pools).
        keep_work: keep FEFF's scratch folders.
        prepared: called once when the inputs are prepared, before the first FEFF
            run starts, with (sites finished so far without a run, total sites); a
            progress display counts those as its start so its rate is that of FEFF runs.

    Returns:
        The summary.

    Raises:
        FeffUnavailableError: FEFF10 is needed and cannot be imported.
        ValueError: bad preset, edge, site index or Parsl config.
    """
    preset = get_preset(preset)
    edge = normalize_edge(edge)
    out_dir = Path(out_dir)
    name = structure_folder_name(structure)
    structure_dir = (out_dir / name).resolve()
    groups = _site_groups(structure, selection, symmetry)
    summary = SimulationSummary(name, structure_dir, preset.name, edge, inputs_only=inputs_only)
    _write_structure_file(structure, structure_dir)
    total = len(groups)
    finished = 0

    def report(status: str) -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, total, status)

    tasks: list[SiteTask] = []
    cancel_file = structure_dir / f".cancel-{uuid.uuid4().hex}"
    for rep, stands_for in groups:
        symbol = element_symbol(structure.atomic_numbers[rep])
        run_dir = structure_dir / "FEFF-XANES" / site_dir_name(rep, symbol)
        summary.runs.append(SiteRun(rep, run_dir, stands_for))
        try:
            text = build_site_input(structure, rep, preset, edge).text
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - pymatgen trouble with one site is that site's failure
            summary.failed.append((run_dir, f"input generation failed: {one_line(exc)}"))
            report(f"{run_dir.name} failed")
            continue
        feff_inp = run_dir / "feff.inp"
        if feff_inp.is_file() and is_valid_xmu(run_dir / "xmu.dat"):
            old = feff_inp.read_text(encoding="utf-8", errors="replace")
            if _cards_only(old) == _cards_only(text):
                summary.skipped.append(run_dir)
                report(f"{run_dir.name} already computed")
            else:
                summary.failed.append((run_dir, "holds results of different FEFF inputs (another preset, edge or "
                                                "structure); use another output folder or delete it"))
                report(f"{run_dir.name} failed")
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / "feff.inp.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, feff_inp)
        summary.written.append(run_dir)
        if inputs_only:
            report(f"{run_dir.name} input written")
            continue
        tasks.append(SiteTask(str(run_dir), rep, timeout_s, str(cancel_file), keep_work))

    if tasks and site_task is None:
        check_feff_available()
    if prepared is not None:
        prepared(finished, total)
    if not tasks:
        return summary
    if cancel_event is not None and cancel_event.is_set():
        for task in tasks:
            summary.cancelled.append(Path(task.run_dir))
            report(f"{Path(task.run_dir).name} cancelled")
        return summary

    def record(task: SiteTask, result: SiteResult | None, error: BaseException | None) -> None:
        run_dir = Path(task.run_dir)
        if error is not None:
            summary.failed.append((run_dir, one_line(error)))
            report(f"{run_dir.name} failed")
        elif result.status == "done":
            summary.done.append(run_dir)
            summary.seconds[run_dir] = result.seconds
            report(f"{run_dir.name} done in {result.seconds:.0f} s")
        elif result.status == "cancelled":
            summary.cancelled.append(run_dir)
            report(f"{run_dir.name} cancelled")
        else:
            summary.failed.append((run_dir, result.reason or "failed"))
            report(f"{run_dir.name} failed")

    # Looked up at call time, so that a stand-in for this module's run_site is used.
    function = site_task or run_site
    try:
        if parsl_config is not None:
            run_with_parsl(tasks, parsl_config, function, cancel_event, cancel_file, record)
        else:
            run_locally(tasks, workers, function, cancel_event, cancel_file, record)
    finally:
        try:
            cancel_file.unlink(missing_ok=True)
        except OSError:
            pass
    return summary
