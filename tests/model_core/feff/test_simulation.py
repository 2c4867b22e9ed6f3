"""simulate: one real FEFF10 run, resume, failures, cancellation, local pool and Parsl."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from model_core.feff import simulation
from model_core.feff.errors import FeffUnavailableError
from model_core.feff.inputs import get_preset
from model_core.feff.simulation import simulate
from model_core.feff.tasks import SiteResult
from model_core.feff.xmu import validate_xmu
from model_core.types import SiteSelection, Structure
from tests.model_core.feff.fake_tasks import alive, fake_site_task, use_sleeping_feff, wait_for_pids
from tests.model_core.feff.test_inputs import copper_fcc, cuprite, square_planar_cuo4

# A cluster of 13 atoms and FMS over the first shell only: the whole FEFF10 pipeline in ~5 s.
TINY = get_preset("fast").with_changes(radius=3.0, FMS="2.6 0")


def three_copper_molecule() -> Structure:
    """Three inequivalent Cu atoms (a molecule: every atom is its own group)."""
    return Structure([29, 29, 29, 8], [[0, 0, 0], [2.5, 0, 0], [0, 2.7, 0], [1.2, 1.2, 0]], name="Cu3O")


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
    assert len(validate_xmu(site_dir / "xmu.dat")["mu"]) > 100
    from model_core.spectra.simulated import read_feff_xmu

    spectrum = read_feff_xmu(site_dir / "xmu.dat")
    assert 8960 < spectrum.e0_ev < 9000  # Cu K edge, ~8979 eV
    assert np.max(spectrum.mu) > 0.5

    # Resume: the valid result is skipped and not recomputed.
    stamp = (site_dir / "xmu.dat").stat().st_mtime_ns
    again = simulate(structure, selection, tmp_path, TINY)
    assert again.skipped == [site_dir] and again.done == [] and again.ok
    assert (site_dir / "xmu.dat").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------- bookkeeping with fake tasks


def test_inputs_only_for_crystal_and_molecule(tmp_path):
    summary = simulate(cuprite(), SiteSelection([0, 1, 2, 3]), tmp_path, "reference", inputs_only=True)
    assert summary.equivalent_sites == {0: (0, 1, 2, 3)} and len(summary.written) == 1
    assert (tmp_path / "Cu2O" / "FEFF-XANES" / "000_Cu" / "feff.inp").is_file()
    from model_core.io import read_structure

    poscar = read_structure(tmp_path / "Cu2O" / "POSCAR")
    assert poscar.symbols == cuprite().symbols  # NNN indexes the written POSCAR
    np.testing.assert_allclose(poscar.positions, cuprite().positions, atol=1e-6)

    # One run per equivalence group met in the selection, by its first selected atom,
    # standing for every atom of the group (SiteSymmetry.representatives).
    mixed = simulate(cuprite(), SiteSelection([2, 4, 1, 5]), tmp_path / "mixed", "fast", inputs_only=True)
    assert mixed.equivalent_sites == {2: (0, 1, 2, 3), 4: (4, 5)}
    with pytest.raises(ValueError, match="site 6 is out of range for 6 atoms"):
        simulate(cuprite(), SiteSelection([0, 6]), tmp_path / "bad", "fast", inputs_only=True)

    molecule = simulate(square_planar_cuo4(), SiteSelection([0]), tmp_path, "fast", edge="L3", inputs_only=True)
    folder = tmp_path / "CuO4"
    assert (folder / "structure.xyz").is_file() and not (folder / "POSCAR").exists()
    assert "EDGE L3" in (folder / "FEFF-XANES" / "000_Cu" / "feff.inp").read_text()
    assert molecule.written == [folder / "FEFF-XANES" / "000_Cu"] and molecule.done == []


def test_resume_skips_valid_results_and_refuses_other_inputs(tmp_path):
    selection = SiteSelection([0, 1, 2])
    prepared = []

    def run(preset="fast"):
        return simulate(three_copper_molecule(), selection, tmp_path, preset, site_task=fake_site_task,
                        prepared=lambda finished, total: prepared.append((finished, total)))

    first = run()
    assert len(first.done) == 3
    second = run()
    assert len(second.skipped) == 3 and second.done == []
    # A broken xmu.dat is recomputed.
    (first.done[1] / "xmu.dat").write_text("# nothing\n1 2 3\n")
    third = run()
    assert third.done == [first.done[1]] and len(third.skipped) == 2
    # Before the runs start, `prepared` learns how many sites needed none.
    assert prepared == [(0, 3), (3, 3), (2, 3)]
    # Results of another preset are not overwritten.
    other = run("medium")
    assert len(other.failed) == 3 and "different FEFF inputs" in other.failed[0][1]


def test_failing_site_is_reported_and_others_go_on(tmp_path, monkeypatch):
    def flaky(task):
        if task.site == 1:
            raise RuntimeError("boom on purpose")
        return fake_site_task(task)

    monkeypatch.setattr(simulation, "run_site", flaky)
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


def test_missing_feff10_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "feff10", None)  # "import feff10" now raises ImportError
    with pytest.raises(FeffUnavailableError, match="FEFF10 is not available.*pip install feff10-rs"):
        simulate(three_copper_molecule(), SiteSelection([0]), tmp_path, "fast")
    # Writing inputs does not need FEFF.
    assert simulate(three_copper_molecule(), SiteSelection([0]), tmp_path, "fast", inputs_only=True).written


# ---------------------------------------------------------------- cancellation


def test_cancel_kills_running_feff_and_skips_the_rest(tmp_path, monkeypatch):
    pid_file = tmp_path / "pids.txt"
    use_sleeping_feff(monkeypatch, pid_file)
    monkeypatch.setattr(simulation, "check_feff_available", lambda: "fake")
    cancel = threading.Event()
    seen: list[int] = []

    def cancel_when_running():
        seen.extend(wait_for_pids(pid_file, 1))
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
    while time.monotonic() < deadline and any(alive(pid) for pid in seen):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in seen), "FEFF process (or its child) survived cancellation"
    assert not list((tmp_path / "out").glob("Cu3O/.cancel-*"))


def test_cancel_before_start_runs_nothing(tmp_path):
    cancel = threading.Event()
    cancel.set()
    summary = simulate(three_copper_molecule(), SiteSelection([0, 1]), tmp_path, "fast", cancel_event=cancel,
                       site_task=fake_site_task)
    assert len(summary.cancelled) == 2 and summary.done == []


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
