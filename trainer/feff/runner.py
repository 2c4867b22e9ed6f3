"""Run FEFF10 on many absorber sites: local process pool or Parsl, resumable and cancellable.

Layout of the results, the same as the Cu FEFF 9.9.1 dataset's::

    OUT/<structure name>/POSCAR                       (structure.xyz for a molecule)
    OUT/<structure name>/FEFF-XANES/<NNN>_<El>/feff.inp
    OUT/<structure name>/FEFF-XANES/<NNN>_<El>/xmu.dat   (after a successful run)

``NNN`` is the 0-based index of the absorber in the structure's atom order (the
order of the written POSCAR). Only one representative of each group of
symmetry-equivalent absorbers is computed; :attr:`SimulationSummary.equivalent_sites`
says which atoms each run stands for.

Each site runs FEFF in a child process (``python -m trainer.feff._process``) started in
its own process group, so cancelling or timing out kills FEFF and the per-stage worker
processes feff10 starts, whichever pool the site task runs in. A failed site leaves a
``feff.log`` in its folder; a successful one leaves exactly ``feff.inp`` and ``xmu.dat``.

Usage::

    from model_core.sites import select_sites
    from trainer.feff.runner import simulate

    selection = select_sites(structure, element="Cu")
    summary = simulate(structure, selection, "runs", preset="fast", workers=2)
    print(summary.describe())
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from model_core.types import SiteSelection, SiteSymmetry, Structure, element_symbol
from trainer.feff import _process
from trainer.feff.inputs import FeffPreset, build_site_input, get_preset, normalize_edge, site_dir_name

__all__ = [
    "FeffCancelledError",
    "FeffRunError",
    "FeffTimeoutError",
    "FeffUnavailableError",
    "InvalidXmuError",
    "MIN_XMU_ROWS",
    "SimulationSummary",
    "SiteResult",
    "SiteRun",
    "SiteTask",
    "check_feff_available",
    "is_valid_xmu",
    "run_feff",
    "run_site",
    "simulate",
    "structure_folder_name",
    "validate_xmu",
]

#: Fewest data rows accepted in an xmu.dat. The presets' energy grid gives ~170-200
#: rows; a FEFF run that stopped early writes far fewer.
MIN_XMU_ROWS = 50

#: Name of the scratch folder FEFF runs in, inside the site folder (removed afterwards).
WORK_DIR_NAME = "feff-work"

#: Progress callback: (sites finished so far, total sites, one-line status of the last one).
ProgressCallback = Callable[[int, int, str], None]


class FeffUnavailableError(RuntimeError):
    """FEFF10 cannot be run: the ``feff10`` package (feff10-rs) is missing or broken."""


class FeffRunError(RuntimeError):
    """A FEFF run failed; the message is one line suitable for a report."""


class FeffCancelledError(FeffRunError):
    """The run was cancelled and its FEFF processes were killed."""


class FeffTimeoutError(FeffRunError):
    """The run exceeded its time limit and its FEFF processes were killed."""


class InvalidXmuError(FeffRunError, ValueError):
    """An xmu.dat is missing, unreadable, too short or not finite."""


_UNAVAILABLE_HINT = "install it with `pip install feff10-rs` (or `pip install xanes-gui[feff]`)"


def check_feff_available() -> str:
    """Check that FEFF10 can be imported in this interpreter.

    Returns:
        The feff10-rs version.

    Raises:
        FeffUnavailableError: one message naming the problem and the fix.
    """
    try:
        import feff10
    except Exception as exc:  # noqa: BLE001 - a broken native extension raises more than ImportError
        raise FeffUnavailableError(
            f"FEFF10 is not available: importing 'feff10' failed ({type(exc).__name__}: {exc}); "
            f"{_UNAVAILABLE_HINT}") from exc
    if not callable(getattr(feff10, "run", None)):
        raise FeffUnavailableError(f"FEFF10 is not available: the 'feff10' package has no run(); {_UNAVAILABLE_HINT}")
    return str(getattr(feff10, "__version__", "unknown"))


# --------------------------------------------------------------------------- xmu.dat


def validate_xmu(path: str | Path, min_rows: int = MIN_XMU_ROWS) -> np.ndarray:
    """Read and check a FEFF ``xmu.dat``.

    Args:
        path: the file.
        min_rows: fewest data rows accepted.

    Returns:
        (rows, columns) array: omega, e, k, mu, mu0, chi.

    Raises:
        InvalidXmuError: missing or unreadable file, fewer than 4 columns or
            ``min_rows`` rows, non-finite values, energies not increasing, or mu
            zero everywhere.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidXmuError(f"{path.name} was not written")
    try:
        # FEFF writes "******" for overflowing Fortran fields; loadtxt rejects them.
        data = np.loadtxt(path, comments="#", ndmin=2)
    except (OSError, ValueError) as exc:
        raise InvalidXmuError(f"{path.name} is unreadable: {' '.join(str(exc).split())}") from exc
    if data.shape[1] < 4:
        raise InvalidXmuError(f"{path.name} has {data.shape[1]} columns, expected at least 4")
    if len(data) < min_rows:
        raise InvalidXmuError(f"{path.name} has {len(data)} data rows, expected at least {min_rows}")
    if not np.all(np.isfinite(data)):
        raise InvalidXmuError(f"{path.name} contains NaN or infinite values")
    if np.any(np.diff(data[:, 0]) <= 0):
        raise InvalidXmuError(f"{path.name}: energies are not strictly increasing")
    if not np.any(data[:, 3] != 0):
        raise InvalidXmuError(f"{path.name}: mu is zero everywhere")
    return data


def is_valid_xmu(path: str | Path, min_rows: int = MIN_XMU_ROWS) -> bool:
    """Whether ``path`` is a usable xmu.dat (see :func:`validate_xmu`)."""
    try:
        validate_xmu(path, min_rows)
    except InvalidXmuError:
        return False
    return True


# --------------------------------------------------------------------------- one FEFF run


def _feff_command(feff_inp: Path, work_dir: Path) -> list[str]:
    """Command line of the FEFF child process (a function so tests can substitute it)."""
    return [sys.executable, "-m", "trainer.feff._process", str(feff_inp), str(work_dir)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import trainer even when the project is not installed (a source
    # checkout on a cluster): put the folder holding the package on its path.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    # FEFF-serial is single threaded; stop any OpenMP/BLAS runtime from
    # oversubscribing the cores the other workers use.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the child and every process in its group (feff10's stage workers)."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    else:
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(proc.pid):
                if proc.poll() is None:
                    try:
                        proc.wait(timeout=0.05)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.05)
            if not _group_alive(proc.pid):
                break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not deliver SIGKILL
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _last_message(log_path: Path, limit: int = 300) -> str:
    """The last informative line of a FEFF log (errors come last)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = " ".join(line.split())
        if text:
            return text[:limit]
    return ""


def run_feff(run_dir: str | Path, *, timeout_s: float | None = None,
             cancel: Callable[[], bool] | None = None, poll_s: float = 0.2,
             keep_work: bool = False) -> Path:
    """Run FEFF10 on ``run_dir/feff.inp`` and leave a validated ``run_dir/xmu.dat``.

    FEFF runs in ``run_dir/feff-work`` in a child process group; on success only
    xmu.dat is kept (the dataset layout), on failure the FEFF log is kept as
    ``run_dir/feff.log``.

    Args:
        run_dir: the site folder holding feff.inp.
        timeout_s: wall-time limit in seconds (None: no limit).
        cancel: polled every ``poll_s`` seconds; when it returns True the FEFF
            processes are killed.
        poll_s: polling interval in seconds.
        keep_work: keep FEFF's scratch folder (for debugging).

    Returns:
        The path of xmu.dat.

    Raises:
        FeffUnavailableError: feff10 cannot be imported in the child.
        FeffCancelledError, FeffTimeoutError: the run was stopped.
        FeffRunError: FEFF failed; InvalidXmuError: it wrote no usable xmu.dat.
    """
    run_dir = Path(run_dir).resolve()
    feff_inp = run_dir / "feff.inp"
    if not feff_inp.is_file():
        raise FeffRunError(f"{feff_inp} does not exist")
    work = run_dir / WORK_DIR_NAME
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_path = work / "feff.log"
    xmu_out = run_dir / "xmu.dat"
    xmu_out.unlink(missing_ok=True)  # never leave a stale result beside new inputs
    popen_kwargs: dict[str, Any] = {}
    if os.name == "nt":
        popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        popen_kwargs["start_new_session"] = True
    ok = False
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(_feff_command(feff_inp, work), cwd=work, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=_child_env(), **popen_kwargs)
            start = time.monotonic()
            try:
                while True:
                    try:
                        rc = proc.wait(timeout=poll_s)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if cancel is not None and cancel():
                        _kill_tree(proc)
                        raise FeffCancelledError("cancelled; FEFF was stopped")
                    if timeout_s is not None and time.monotonic() - start > timeout_s:
                        _kill_tree(proc)
                        raise FeffTimeoutError(f"FEFF did not finish within {timeout_s:g} s and was stopped")
            finally:
                # Also on KeyboardInterrupt, and for stage workers outliving their parent.
                _kill_tree(proc)
        if rc == _process.EXIT_UNAVAILABLE:
            raise FeffUnavailableError(f"FEFF10 is not available: {_last_message(log_path)}; {_UNAVAILABLE_HINT}")
        if rc != 0:
            raise FeffRunError(f"FEFF failed (exit code {rc}): {_last_message(log_path) or 'no output'}")
        validate_xmu(work / "xmu.dat")
        # Copy then rename: a valid-looking but truncated xmu.dat would be skipped on resume.
        tmp = run_dir / "xmu.dat.tmp"
        shutil.copyfile(work / "xmu.dat", tmp)
        os.replace(tmp, xmu_out)
        ok = True
    finally:
        saved_log = run_dir / "feff.log"
        if ok:
            saved_log.unlink(missing_ok=True)
        elif log_path.is_file():
            shutil.copyfile(log_path, saved_log)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return xmu_out


# --------------------------------------------------------------------------- site tasks


@dataclass(frozen=True)
class SiteTask:
    """Everything a worker needs to run one site (picklable, paths as strings).

    Attributes:
        run_dir: the site folder holding feff.inp.
        site: 0-based absorber index (for reports).
        timeout_s: wall-time limit of FEFF in seconds, or None.
        cancel_file: when this file exists the run stops (works across processes
            and, on a shared file system, across Parsl nodes).
        keep_work: keep FEFF's scratch folder.
    """

    run_dir: str
    site: int
    timeout_s: float | None = None
    cancel_file: str | None = None
    keep_work: bool = False

    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return bool(self.cancel_file) and os.path.exists(self.cancel_file)


@dataclass(frozen=True)
class SiteResult:
    """Outcome of one :class:`SiteTask`.

    Attributes:
        run_dir: the site folder.
        site: 0-based absorber index.
        status: "done", "failed" or "cancelled".
        reason: one line explaining a failure or cancellation.
        seconds: wall time of the run.
    """

    run_dir: str
    site: int
    status: str
    reason: str = ""
    seconds: float = 0.0


def run_site(task: SiteTask) -> SiteResult:
    """Run FEFF for one site; never raises (failures become a "failed" result).

    This is the function sent to pool workers and Parsl apps.
    """
    start = time.monotonic()
    if task.cancelled():
        return SiteResult(task.run_dir, task.site, "cancelled", "cancelled before start")
    try:
        run_feff(task.run_dir, timeout_s=task.timeout_s, cancel=task.cancelled, keep_work=task.keep_work)
    except FeffCancelledError as exc:
        return SiteResult(task.run_dir, task.site, "cancelled", str(exc), time.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - every failure is reported per site
        return SiteResult(task.run_dir, task.site, "failed", _one_line(exc), time.monotonic() - start)
    return SiteResult(task.run_dir, task.site, "done", "", time.monotonic() - start)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (FeffRunError, FeffUnavailableError)) else f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------- summary


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


# --------------------------------------------------------------------------- simulate


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


def _representatives(structure: Structure, selection: SiteSelection,
                     symmetry: SiteSymmetry | None) -> list[tuple[int, tuple[int, ...]]]:
    """(representative, all equivalent atoms) per equivalence group met in the selection."""
    if symmetry is None:
        from model_core.symmetry import analyze_symmetry

        symmetry = analyze_symmetry(structure)
    groups = np.asarray(symmetry.group)
    reps: dict[int, int] = {}
    for index in selection.indices:
        index = int(index)
        if not 0 <= index < structure.n_atoms:
            raise ValueError(f"site {index} is out of range for {structure.n_atoms} atoms")
        reps.setdefault(int(groups[index]), index)
    return [(rep, tuple(int(i) for i in np.flatnonzero(groups == g))) for g, rep in reps.items()]


def _load_parsl_config(path: str | Path) -> Any:
    """The ``config`` (a parsl.config.Config) defined by a Python file."""
    import runpy

    from parsl.config import Config

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: Parsl config file not found")
    namespace = runpy.run_path(str(path))
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise ValueError(f"{path}: must define `config`, a parsl.config.Config")
    return config


def simulate(structure: Structure, selection: SiteSelection, out_dir: str | Path,
             preset: str | FeffPreset = "reference", edge: str = "K", *, workers: int = 1,
             inputs_only: bool = False, parsl_config: str | Path | None = None,
             progress: ProgressCallback | None = None, cancel_event: threading.Event | None = None,
             timeout_s: float | None = None, symmetry: SiteSymmetry | None = None,
             site_task: Callable[[SiteTask], SiteResult] | None = None,
             keep_work: bool = False) -> SimulationSummary:
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
        preset: preset name or object (:data:`trainer.feff.inputs.PRESETS`).
        edge: "K" or "L3" (any edge in :data:`trainer.feff.inputs.EDGES`).
        workers: parallel FEFF runs on this machine (1: one at a time in a thread
            of this process; more: a spawn-context process pool).
        inputs_only: write feff.inp files (and the structure file) without running FEFF.
        parsl_config: a Python file defining ``config`` (a parsl.config.Config); the
            sites then run as Parsl python_apps instead of in the local pool.
        progress: called after each site with (finished, total, status line).
        cancel_event: when set, running FEFF processes are killed and no new site
            starts; the summary lists those sites as cancelled.
        timeout_s: wall-time limit per site in seconds (None: no limit).
        symmetry: precomputed :func:`model_core.symmetry.analyze_symmetry` result.
        site_task: replaces :func:`run_site` (must be picklable for process pools).
        keep_work: keep FEFF's scratch folders.

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
    groups = _representatives(structure, selection, symmetry)
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
            summary.failed.append((run_dir, f"input generation failed: {_one_line(exc)}"))
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

    if not tasks:
        return summary
    if site_task is None:
        check_feff_available()
    if cancel_event is not None and cancel_event.is_set():
        for task in tasks:
            summary.cancelled.append(Path(task.run_dir))
            report(f"{Path(task.run_dir).name} cancelled")
        return summary

    def record(task: SiteTask, result: SiteResult | None, error: BaseException | None) -> None:
        run_dir = Path(task.run_dir)
        if error is not None:
            summary.failed.append((run_dir, _one_line(error)))
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

    try:
        if parsl_config is not None:
            _run_with_parsl(tasks, parsl_config, site_task, cancel_event, cancel_file, record)
        else:
            _run_locally(tasks, workers, site_task, cancel_event, cancel_file, record)
    finally:
        try:
            cancel_file.unlink(missing_ok=True)
        except OSError:
            pass
    return summary


_Recorder = Callable[[SiteTask, "SiteResult | None", "BaseException | None"], None]


def _default_task(task: SiteTask) -> SiteResult:
    # Looked up at call time so that a replaced module-level run_site is honoured.
    return run_site(task)


def _drain(futures: dict[cf.Future, SiteTask], cancel_event: threading.Event | None, cancel_file: Path,
           record: _Recorder) -> None:
    """Wait for the futures, recording each; on cancellation stop the rest."""
    pending = set(futures)
    cancelling = False
    try:
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                task = futures[future]
                if future.cancelled():
                    record(task, SiteResult(task.run_dir, task.site, "cancelled", "cancelled before start"), None)
                    continue
                error = future.exception()
                record(task, None if error else future.result(), error)
            if not cancelling and cancel_event is not None and cancel_event.is_set():
                cancelling = True
                _request_cancel(cancel_file)
                for future in pending:
                    future.cancel()  # not started yet; Parsl cannot, its tasks see the file
    except BaseException:
        # KeyboardInterrupt in the caller: stop FEFF everywhere before unwinding.
        _request_cancel(cancel_file)
        for future in pending:
            future.cancel()
        raise


def _request_cancel(cancel_file: Path) -> None:
    cancel_file.parent.mkdir(parents=True, exist_ok=True)
    cancel_file.touch()


def _run_locally(tasks: Sequence[SiteTask], workers: int, site_task: Callable | None,
                 cancel_event: threading.Event | None, cancel_file: Path, record: _Recorder) -> None:
    workers = max(1, int(workers))
    function = site_task or _default_task
    if workers == 1:
        # FEFF itself runs in a child process; a thread keeps this process free to
        # watch for cancellation.
        executor: cf.Executor = cf.ThreadPoolExecutor(max_workers=1)
    else:
        # spawn: the same behaviour on Linux, macOS and Windows, and no fork of a
        # process that may hold threads (a GUI, Parsl).
        executor = cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                          mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {executor.submit(function, task): task for task in tasks}
        _drain(futures, cancel_event, cancel_file, record)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _run_with_parsl(tasks: Sequence[SiteTask], parsl_config: str | Path, site_task: Callable | None,
                    cancel_event: threading.Event | None, cancel_file: Path, record: _Recorder) -> None:
    try:
        from parsl import python_app
        from parsl.dataflow.dflow import DataFlowKernel
    except ImportError as exc:
        raise ValueError(f"--parsl-config needs Parsl: pip install parsl ({exc})") from exc
    config = _load_parsl_config(parsl_config)
    # A private DataFlowKernel instead of parsl.load(): no global state, so several
    # simulations (or a GUI session) can run one after another.
    dfk = DataFlowKernel(config)
    try:
        app = python_app(site_task or run_site, data_flow_kernel=dfk)
        futures = {app(task): task for task in tasks}
        _drain(futures, cancel_event, cancel_file, record)
    finally:
        dfk.cleanup()
