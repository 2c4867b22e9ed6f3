"""xanes-compare with an injected fake predictor (no model checkpoint needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core.cli import compare as cli
from model_core.inference import ModelInfo
from model_core.types import Prediction, SiteSelection
from tests.model_core.spectra.synthetic_spectra import edge_mu, transmission_file


class FakePredictor:
    """Predicts the same Gaussian-broadened edge for every site, E0 = ``e0`` (None: no E0 head)."""

    def __init__(self, e0: float | None = 8981.0, element: str = "Cu") -> None:
        self.e0 = e0
        self.info = ModelInfo(name="fake-cu", path="", element=element, edge="K", trained=False,
                              energy_ev=np.linspace(-30.0, 100.0, 261), device="cpu", device_name="CPU",
                              has_e0=e0 is not None)
        self.calls: list[np.ndarray] = []

    def predict(self, structure, sites, progress=None) -> Prediction:
        selection = sites if isinstance(sites, SiteSelection) else SiteSelection(np.asarray(sites))
        self.calls.append(selection.indices)
        rel = self.info.energy_ev
        mu = edge_mu(8979.0 + rel, e0=8979.0, pre_slope=0.0, offset=0.0)
        m = len(selection)
        return Prediction(energy_ev=rel, site_indices=selection.indices, weights=selection.weights,
                          mu=np.tile(mu, (m, 1)), average=mu,
                          e0_ev=None if self.e0 is None else np.full(m, self.e0),
                          model_name=self.info.name, trained=False, element=self.info.element, edge="K")


def _factory(predictor: FakePredictor, seen: list | None = None):
    def factory(name_or_path, device="auto", **kwargs):
        if seen is not None:
            seen.append((name_or_path, device, kwargs))
        return predictor
    return factory


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    structure = tmp_path / "cu2.xyz"
    structure.write_text("3\nCu2O-ish cluster\nCu 0 0 0\nCu 1.8 1.8 0\nO 0.9 0.9 0.9\n")
    return structure, transmission_file(tmp_path / "cu_measured.csv")


def test_json_output(inputs, capsys) -> None:
    structure, measured = inputs
    seen: list = []
    predictor = FakePredictor(e0=8981.0)
    code = cli.main([str(structure), "--measured", str(measured), "--json", "--element", "Cu",
                     "--device", "cpu"], predictor_factory=_factory(predictor, seen))
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    for key in ("e0", "edge_step", "shift_ev", "mse", "pearson_r", "pearson_r_deriv", "cosine",
                "model", "trained", "sites"):
        assert key in summary
    assert summary["model"] == "fake-cu" and summary["trained"] is False
    assert summary["e0"] == pytest.approx(8979.0, abs=1.5)
    assert summary["edge_step"] == pytest.approx(1.0, rel=0.1)
    # The fake model's E0 is 2 eV too high; alignment corrects it.
    assert summary["shift_ev"] == pytest.approx(-2.0, abs=0.3)
    assert summary["pearson_r"] > 0.95
    assert sorted(summary["sites"]) in ([0], [0, 1])
    assert seen[0] == (None, "cpu", {"element": "Cu"})
    assert any("UNTRAINED" in w for w in summary["warnings"])


def test_csv_output_and_manual_shift(inputs, tmp_path: Path, capsys) -> None:
    structure, measured = inputs
    out = tmp_path / "cmp.csv"
    cli.main([str(structure), "--measured", str(measured), "--model", "fake", "--no-align", "--shift", "1.5",
              "--broaden", "1.0", "--window=-20,60", "--out", str(out)],
             predictor_factory=_factory(FakePredictor(e0=None)))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "warning: model fake-cu is UNTRAINED" in captured.err
    lines = out.read_text().splitlines()
    meta = [line for line in lines if line.startswith("#")]
    assert lines[len(meta)] == "energy_ev,measured,predicted,d_measured,d_predicted"
    assert "# shift_ev: 1.500" in meta
    assert "# prediction_placed_at: the measured E0" in meta
    table = np.loadtxt(lines[len(meta) + 1:], delimiter=",")
    assert table.shape[1] == 5
    e0 = float(next(line for line in meta if line.startswith("# measured_e0_ev:")).split(":")[1])
    assert table[0, 0] >= e0 - 20 - 1e-6 and table[-1, 0] <= e0 + 60 + 1e-6


def test_csv_to_stdout(inputs, capsys) -> None:
    structure, measured = inputs
    cli.main([str(structure), "--measured", str(measured), "--sites", "1"],
             predictor_factory=_factory(FakePredictor()))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# structure: ")
    assert "energy_ev,measured,predicted,d_measured,d_predicted" in out


def _expect_exit_2(argv: list[str], capsys, needle: str) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv, predictor_factory=_factory(FakePredictor()))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert needle in err
    return err


def test_bad_measured_file_exits_2(inputs, tmp_path: Path, capsys) -> None:
    structure, _ = inputs
    empty = tmp_path / "empty.xdi"
    empty.write_text("")
    err = _expect_exit_2([str(structure), "--measured", str(empty)], capsys, str(empty))
    assert "empty" in err
    _expect_exit_2([str(structure), "--measured", str(tmp_path / "missing.dat")], capsys, "missing.dat")
    short = tmp_path / "short.csv"
    energies = np.linspace(8970, 8984, 30)
    short.write_text("energy,mu\n" + "\n".join(f"{e},{m}" for e, m in zip(energies, edge_mu(energies))))
    _expect_exit_2([str(structure), "--measured", str(short)], capsys, "range too short")


def test_bad_structure_and_sites_exit_2(inputs, tmp_path: Path, capsys) -> None:
    _, measured = inputs
    bad = tmp_path / "bad.xyz"
    bad.write_text("not a structure\n")
    _expect_exit_2([str(bad), "--measured", str(measured)], capsys, "bad.xyz")
    structure, _ = inputs
    _expect_exit_2([str(structure), "--measured", str(measured), "--sites", "7"], capsys, "out of range")
    _expect_exit_2([str(structure), "--measured", str(measured), "--element", "Zn"], capsys, "no Zn atoms")


@pytest.mark.shared
def test_with_a_real_measured_file(shared_dir: Path, inputs, capsys) -> None:
    structure, _ = inputs
    measured = shared_dir / "data" / "measured" / "Cu" / "Cu_Foil_rt_2016Foils.xdi"
    if not measured.is_file():
        pytest.skip("Cu foil XDI not in ../shared")
    cli.main([str(structure), "--measured", str(measured), "--json"],
             predictor_factory=_factory(FakePredictor()))
    summary = json.loads(capsys.readouterr().out)
    assert summary["e0"] == pytest.approx(8979.0, abs=5.0)
    assert summary["channel"] == "transmission -ln(itrans/i0)"
    assert abs(summary["shift_ev"]) < 30


def test_window_accepts_a_negative_low_end_as_its_own_word(inputs, capsys) -> None:
    structure, measured = inputs
    for window in (["--window", "-20,60"], ["--window=-20,60"]):
        cli.main([str(structure), "--measured", str(measured), "--json", "--element", "Cu", *window],
                 predictor_factory=_factory(FakePredictor()))
        summary = json.loads(capsys.readouterr().out)
        lo, hi = summary["window_ev"]
        assert lo >= summary["e0"] - 20 - 1e-6 and hi <= summary["e0"] + 60 + 1e-6


def test_columns_option_when_guessing_fails(inputs, tmp_path: Path, capsys) -> None:
    structure, _ = inputs
    energy = np.linspace(8879.0, 9179.0, 601)
    mon = np.full_like(energy, 1.0e5)
    det = mon * np.exp(-edge_mu(energy))
    path = tmp_path / "scan.dat"
    path.write_text("# E mon det\n" + "".join(f"{e:.2f} {a:.1f} {b:.3f}\n" for e, a, b in zip(energy, mon, det)))
    _expect_exit_2([str(structure), "--measured", str(path)], capsys, "choose the columns")
    for spec in ("energy=1,i0=mon,it=det", "i0=2,it=3", "energy=E,i0=MON,it=3"):
        cli.main([str(structure), "--measured", str(path), "--json", "--element", "Cu", "--columns", spec],
                 predictor_factory=_factory(FakePredictor()))
        captured = capsys.readouterr()
        summary = json.loads(captured.out)
        assert summary["channel"] == "transmission -ln(det/mon)", spec
        assert summary["e0"] == pytest.approx(8979.0, abs=1.5)
        # Every warning is one line on stderr, in --json mode too.
        assert all(f"warning: {w}" in captured.err for w in summary["warnings"])
    _expect_exit_2([str(structure), "--measured", str(path), "--columns", "mu=7"], capsys,
                   "column 7 does not exist")
    with pytest.raises(SystemExit) as exc:
        cli.main([str(structure), "--measured", str(path), "--columns", "energy=1"])
    assert exc.value.code == 2
    assert "exactly one of mu=, it= or if=" in capsys.readouterr().err


def test_bl9a_file_compares_with_its_guess(inputs, tmp_path: Path, capsys) -> None:
    from tests.model_core.spectra.beamline_files import write_bl9a

    structure, _ = inputs
    write_bl9a(tmp_path / "cu_fl.dat")
    cli.main([str(structure), "--measured", str(tmp_path / "cu_fl.dat"), "--json", "--element", "Cu"],
             predictor_factory=_factory(FakePredictor()))
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["channel"] == "fluorescence SCA1+SCA2+SCA3/I0"
    assert summary["e0"] == pytest.approx(8979.0, abs=1.5)
    assert "warning: energy from the monochromator angle 'Angle(o)'" in captured.err


def test_errors_name_paths_as_given(inputs, tmp_path: Path, capsys, monkeypatch) -> None:
    structure, measured = inputs
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.xyz").write_text("not a structure\n")
    err = _expect_exit_2(["./sub/bad.xyz", "--measured", str(measured)], capsys, "./sub/bad.xyz: ")
    assert err.startswith("error: ./sub/bad.xyz: ")
    err = _expect_exit_2([str(structure), "--measured", "./sub/none.xdi"], capsys, "./sub/none.xdi")
    assert err == "error: ./sub/none.xdi: file not found"
    err = _expect_exit_2([str(measured), "--measured", str(structure)], capsys, "structure file")


def test_missing_paths_fail_fast_without_slow_imports(inputs) -> None:
    import subprocess
    import sys

    structure, _ = inputs
    code = ("import sys\nfrom model_core.cli import compare\ntry:\n"
            f"    compare.main([{str(structure)!r}, '--measured', 'nowhere.xdi'])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'larch', 'pymatgen', 'ase'})\n"
            "print(heavy)\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 2
    assert result.stderr.strip() == "error: nowhere.xdi: file not found"
    assert result.stdout.strip() == "[]"
