"""Running FEFF10: one real run, resume, failures, cancellation, local pool and Parsl."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from model_core.types import SiteSelection, Structure
from tests.trainer.feff.fake_tasks import fake_site_task, write_fake_xmu
from tests.trainer.feff.test_inputs import copper_fcc, cuprite, square_planar_cuo4
from trainer.feff import runner
from trainer.feff.inputs import get_preset
from trainer.feff.runner import (FeffCancelledError, FeffRunError, FeffTimeoutError, FeffUnavailableError,
                                 InvalidXmuError, SiteResult, simulate, validate_xmu)

# A cluster of 13 atoms and FMS over the first shell only: the whole FEFF10 pipeline in ~5 s.
TINY = get_preset("fast").with_changes(radius=3.0, FMS="2.6 0")


def three_copper_molecule() -> Structure:
    """Three inequivalent Cu atoms (a molecule: every atom is its own group)."""
    return Structure([29, 29, 29, 8], [[0, 0, 0], [2.5, 0, 0], [0, 2.7, 0], [1.2, 1.2, 0]], name="Cu3O")


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# ---------------------------------------------------------------- the real run


@pytest.mark.slow
def test_real_feff10_run_then_resume(tmp_path):
    pytest.importorskip("feff10")
    structure = copper_fcc(conventional=True)  # 4 equivalent Cu atoms -> one run
    selection = SiteSelection([0, 1, 2, 3])
    events = []
    summary = simulate(structure, selection, tmp_path, TINY, progress=lambda *a: events.append(a))
    assert summary.failed == [] and summary.cancelled == []
    site_dir = tmp_path / "Cu-fcc" / "FEFF-XANES" / "000_Cu"
    assert summary.done == [site_dir]
    assert summary.equivalent_sites == {0: (0, 1, 2, 3)}
    assert events == [(1, 1, events[0][2])] and "done" in events[0][2]
    # The dataset layout: feff.inp and xmu.dat only, the structure beside FEFF-XANES.
    assert sorted(p.name for p in site_dir.iterdir()) == ["feff.inp", "xmu.dat"]
    assert (tmp_path / "Cu-fcc" / "POSCAR").is_file()
    data = validate_xmu(site_dir / "xmu.dat")
    assert data.shape[1] == 6 and len(data) > 100
    from model_core.spectra.simulated import read_feff_xmu

    spectrum = read_feff_xmu(site_dir / "xmu.dat")
    assert 8960 < spectrum.e0_ev < 9000  # Cu K edge, ~8979 eV
    assert np.max(spectrum.mu) > 0.5

    # Resume: the valid result is skipped and not recomputed.
    stamp = (site_dir / "xmu.dat").stat().st_mtime_ns
    again = simulate(structure, selection, tmp_path, TINY)
    assert again.skipped == [site_dir] and again.done == [] and again.ok
    assert (site_dir / "xmu.dat").stat().st_mtime_ns == stamp


def test_feff_error_is_reported_with_log(tmp_path):
    pytest.importorskip("feff10")
    run_dir = tmp_path / "000_Cu"
    run_dir.mkdir()
    (run_dir / "feff.inp").write_text("TITLE broken\nCONTROL 1 1 1 1 1 1\nPOTENTIALS\n 0 29 Cu\nATOMS\nEND\n")
    with pytest.raises(FeffRunError) as info:
        runner.run_feff(run_dir, timeout_s=60)
    assert str(info.value) and "\n" not in str(info.value)
    assert (run_dir / "feff.log").is_file() and not (run_dir / "xmu.dat").exists()
    assert not (run_dir / runner.WORK_DIR_NAME).exists()


# ---------------------------------------------------------------- bookkeeping with fake tasks


def test_inputs_only_for_crystal_and_molecule(tmp_path):
    summary = simulate(cuprite(), SiteSelection([0, 1, 2, 3]), tmp_path, "reference", inputs_only=True)
    assert summary.equivalent_sites == {0: (0, 1, 2, 3)} and len(summary.written) == 1
    assert (tmp_path / "Cu2O" / "FEFF-XANES" / "000_Cu" / "feff.inp").is_file()
    from model_core.io import read_structure

    poscar = read_structure(tmp_path / "Cu2O" / "POSCAR")
    assert poscar.symbols == cuprite().symbols  # NNN indexes the written POSCAR
    np.testing.assert_allclose(poscar.positions, cuprite().positions, atol=1e-6)

    molecule = simulate(square_planar_cuo4(), SiteSelection([0]), tmp_path, "fast", edge="L3", inputs_only=True)
    folder = tmp_path / "CuO4"
    assert (folder / "structure.xyz").is_file() and not (folder / "POSCAR").exists()
    assert "EDGE L3" in (folder / "FEFF-XANES" / "000_Cu" / "feff.inp").read_text()
    assert molecule.written == [folder / "FEFF-XANES" / "000_Cu"] and molecule.done == []


def test_resume_skips_valid_results_and_refuses_other_inputs(tmp_path):
    selection = SiteSelection([0, 1, 2])
    first = simulate(three_copper_molecule(), selection, tmp_path, "fast", site_task=fake_site_task)
    assert len(first.done) == 3
    second = simulate(three_copper_molecule(), selection, tmp_path, "fast", site_task=fake_site_task)
    assert len(second.skipped) == 3 and second.done == []
    # A broken xmu.dat is recomputed.
    (first.done[1] / "xmu.dat").write_text("# nothing\n1 2 3\n")
    third = simulate(three_copper_molecule(), selection, tmp_path, "fast", site_task=fake_site_task)
    assert third.done == [first.done[1]] and len(third.skipped) == 2
    # Results of another preset are not overwritten.
    other = simulate(three_copper_molecule(), selection, tmp_path, "medium", site_task=fake_site_task)
    assert len(other.failed) == 3 and "different FEFF inputs" in other.failed[0][1]


def test_failing_site_is_reported_and_others_go_on(tmp_path, monkeypatch):
    def flaky(task):
        if task.site == 1:
            raise RuntimeError("boom on purpose")
        return fake_site_task(task)

    monkeypatch.setattr(runner, "run_site", flaky)
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1, 2]), tmp_path, "fast")
    bad = tmp_path / "Cu3O" / "FEFF-XANES" / "001_Cu"
    assert summary.failed == [(bad, "RuntimeError: boom on purpose")]
    assert len(summary.done) == 2 and not summary.ok
    assert "FAILED" in summary.describe() and "boom on purpose" in summary.describe()


def test_failed_result_from_task_is_reported(tmp_path):
    def failing(task):
        return SiteResult(task.run_dir, task.site, "failed", "FEFF failed (exit code 4): no potentials")

    summary = simulate(three_copper_molecule(), SiteSelection([0]), tmp_path, "fast", site_task=failing)
    assert summary.failed[0][1] == "FEFF failed (exit code 4): no potentials"


def test_validate_xmu_rejects_bad_files(tmp_path):
    good = tmp_path / "good.dat"
    write_fake_xmu(good)
    assert validate_xmu(good).shape == (120, 6)
    with pytest.raises(InvalidXmuError, match="was not written"):
        validate_xmu(tmp_path / "missing.dat")
    short = tmp_path / "short.dat"
    write_fake_xmu(short, rows=10)
    with pytest.raises(InvalidXmuError, match="data rows"):
        validate_xmu(short)
    nan = tmp_path / "nan.dat"
    nan.write_text(good.read_text().replace("0.000000\n", "nan\n", 1))
    with pytest.raises(InvalidXmuError, match="NaN"):
        validate_xmu(nan)
    stars = tmp_path / "stars.dat"
    stars.write_text(good.read_text() + "8999.0 20.0 2.0 ****** 1.0 0.0\n")
    with pytest.raises(InvalidXmuError, match="unreadable"):
        validate_xmu(stars)


def test_missing_feff10_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "feff10", None)  # "import feff10" now raises ImportError
    with pytest.raises(FeffUnavailableError, match="FEFF10 is not available.*pip install feff10-rs"):
        runner.check_feff_available()
    with pytest.raises(FeffUnavailableError):
        simulate(three_copper_molecule(), SiteSelection([0]), tmp_path, "fast")
    # Writing inputs does not need FEFF.
    assert simulate(three_copper_molecule(), SiteSelection([0]), tmp_path, "fast", inputs_only=True).written


# ---------------------------------------------------------------- cancellation and timeout

_SLEEPER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[1], "a") as handle:
        handle.write(f"{__import__('os').getpid()} {child.pid}\\n")
    time.sleep(120)
""")


def _fake_feff(monkeypatch, pid_file: Path) -> None:
    """Replace the FEFF child by a process that sleeps and has a sleeping child of its own."""
    def command(feff_inp, work_dir):
        return [sys.executable, "-c", _SLEEPER, str(pid_file)]

    monkeypatch.setattr(runner, "_feff_command", command)


def _wait_for_lines(path: Path, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            pids = [int(p) for p in path.read_text().split()]
            if len(pids) >= 2 * count:
                return pids
        time.sleep(0.05)
    raise AssertionError("the fake FEFF process did not start")


def test_cancel_kills_running_feff_and_skips_the_rest(tmp_path, monkeypatch):
    pid_file = tmp_path / "pids.txt"
    _fake_feff(monkeypatch, pid_file)
    monkeypatch.setattr(runner, "check_feff_available", lambda: "fake")
    cancel = threading.Event()
    seen: list[int] = []

    def cancel_when_running():
        seen.extend(_wait_for_lines(pid_file, 1))
        cancel.set()

    watcher = threading.Thread(target=cancel_when_running, daemon=True)
    watcher.start()
    start = time.monotonic()
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1, 2]), tmp_path / "out", "fast",
                       cancel_event=cancel)
    elapsed = time.monotonic() - start
    watcher.join(5)
    assert elapsed < 30
    assert summary.done == [] and summary.failed == [] and len(summary.cancelled) == 3
    assert len(pid_file.read_text().split()) == 2  # only the first site ever started
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in seen):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in seen), "FEFF process (or its child) survived cancellation"
    assert not list((tmp_path / "out").glob("Cu3O/.cancel-*"))


def test_cancel_before_start_runs_nothing(tmp_path):
    cancel = threading.Event()
    cancel.set()
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1]), tmp_path, "fast", cancel_event=cancel,
                       site_task=fake_site_task)
    assert len(summary.cancelled) == 2 and summary.done == []


def test_timeout_kills_feff(tmp_path, monkeypatch):
    pid_file = tmp_path / "pids.txt"
    _fake_feff(monkeypatch, pid_file)
    run_dir = tmp_path / "000_Cu"
    run_dir.mkdir()
    (run_dir / "feff.inp").write_text("fake\n")
    with pytest.raises(FeffTimeoutError, match="within 1 s"):
        runner.run_feff(run_dir, timeout_s=1.0)
    pids = [int(p) for p in pid_file.read_text().split()]
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(FeffCancelledError):
        runner.run_feff(run_dir, cancel=lambda: True)


# ---------------------------------------------------------------- pools


def test_local_process_pool_with_two_workers(tmp_path):
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1, 2]), tmp_path, "fast", workers=2,
                       site_task=fake_site_task)
    assert len(summary.done) == 3 and summary.ok
    pids = {int((run_dir / "worker.pid").read_text()) for run_dir in summary.done}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_parsl_thread_executor_from_config_file(tmp_path):
    pytest.importorskip("parsl")
    config_file = tmp_path / "parsl_local.py"
    config_file.write_text(textwrap.dedent(f"""
        from parsl.config import Config
        from parsl.executors import ThreadPoolExecutor

        config = Config(executors=[ThreadPoolExecutor(label="local", max_threads=2)],
                        run_dir={str(tmp_path / "runinfo")!r}, initialize_logging=False)
    """))
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1, 2]), tmp_path / "out", "fast",
                       parsl_config=config_file, site_task=fake_site_task)
    assert len(summary.done) == 3 and summary.ok
    bad = tmp_path / "bad_config.py"
    bad.write_text("config = 42\n")
    with pytest.raises(ValueError, match="parsl.config.Config"):
        simulate(three_copper_molecule(), SiteSelection([0]), tmp_path / "out2", "fast", parsl_config=bad,
                 site_task=fake_site_task)
