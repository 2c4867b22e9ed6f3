"""``xanes-simulate`` command line."""

from __future__ import annotations

import re

import pytest

from model_core.feff import simulation
from model_core.feff.tasks import SiteResult
from tests.model_core.feff.fake_tasks import fake_site_task
from tests.model_core.feff.test_inputs import cuprite
from trainer.cli.simulate import build_parser, main


@pytest.fixture
def poscar(tmp_path):
    from pymatgen.io.vasp import Poscar

    from model_core.io.convert import to_pymatgen

    path = tmp_path / "Cu2O.vasp"
    Poscar(to_pymatgen(cuprite())).write_file(path)
    return path


def test_list_presets(capsys):
    main(["--list-presets"])
    out = capsys.readouterr().out
    assert "reference" in out and "fast" in out and "medium" in out


def test_inputs_only(poscar, tmp_path, capsys):
    main([str(poscar), "--element", "Cu", "--inputs-only", "--out", str(tmp_path / "runs"), "--edge", "L3"])
    inp = tmp_path / "runs" / "Cu2O" / "FEFF-XANES" / "000_Cu" / "feff.inp"
    assert inp.is_file() and "EDGE L3" in inp.read_text()
    out = capsys.readouterr().out
    assert "inputs written: 1" in out and "stands for 4 equivalent sites: 0,1,2,3" in out


@pytest.mark.parametrize("args, message", [
    (["missing.cif"], "missing.cif"),
    (["{poscar}", "--element", "Zn"], "Cu2O.vasp"),
    (["{poscar}", "--element", "Cu", "--preset", "turbo"], "unknown FEFF preset"),
    (["{poscar}", "--element", "Cu", "--edge", "X9"], "unsupported edge"),
    (["{poscar}", "--sites", "99"], "Cu2O.vasp"),
    (["{poscar}", "--element", "Cu", "--parsl-config", "nope.py"], "nope.py"),
])
def test_bad_input_exits_2_with_one_line(poscar, tmp_path, capsys, args, message):
    args = [a.format(poscar=poscar) for a in args] + ["--out", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_failed_site_gives_nonzero_exit(poscar, tmp_path, monkeypatch, capsys):
    def failing(task):
        return SiteResult(task.run_dir, task.site, "failed", "FEFF failed on purpose")

    monkeypatch.setattr(simulation, "check_feff_available", lambda: "fake")
    monkeypatch.setattr(simulation, "run_site", failing)
    with pytest.raises(SystemExit) as info:
        main([str(poscar), "--element", "Cu", "--preset", "fast", "--out", str(tmp_path / "runs")])
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert "FEFF failed on purpose" in captured.out and "1 site(s) failed" in captured.err


def test_success_exits_zero(poscar, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(simulation, "check_feff_available", lambda: "fake")
    monkeypatch.setattr(simulation, "run_site", fake_site_task)
    main([str(poscar), "--sites", "0,4", "--preset", "fast", "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert "done: 2" in out


def test_progress_rate_counts_feff_runs_not_skipped_sites(tmp_path, monkeypatch, capsys):
    # Eight inequivalent sites (a molecule); seven are already computed when the command runs again.
    monkeypatch.setattr(simulation, "check_feff_available", lambda: "fake")
    monkeypatch.setattr(simulation, "run_site", fake_site_task)
    structure = tmp_path / "Cu8.xyz"
    structure.write_text("8\nCu8\n" + "".join(f"Cu {2.5 * i} 0 0\n" for i in range(8)))
    args = [str(structure), "--element", "Cu", "--preset", "fast", "--out", str(tmp_path / "runs")]
    main(args)
    (tmp_path / "runs" / "Cu8" / "FEFF-XANES" / "007_Cu" / "xmu.dat").unlink()
    capsys.readouterr()
    main(args)
    captured = capsys.readouterr()
    assert "done: 1, skipped (already computed): 7" in captured.out
    # One fake run of 0.2 s: at most 5 sites/s, however fast the seven skipped sites were counted.
    rates = [float(r) for r in re.findall(r"([\d.]+)site/s", captured.err)]
    assert rates and max(rates) <= 5.0, captured.err


def test_element_help_does_not_speak_of_a_model():
    text = " ".join(build_parser().format_help().split())
    assert "model" not in text and "the absorber the structure file designates" in text
