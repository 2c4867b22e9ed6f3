"""``xanes-invert`` on small files with a tiny bundle written by the test; invert() and the registry.

Without refinement (``--refine 0``): the refined candidates are tested in test_refined.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model_core.cli.invert import main
from model_core.inverse.api import Candidate, invert, load_inverse
from model_core.inverse.diffusion import ClusterDiffusion
from tests.model_core.inverse.helpers import planted_spectrum, tiny_config, write_bundle
from tests.model_core.inverse.test_parts import _write_xmu


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(0)
    return write_bundle(tmp_path_factory.mktemp("models") / "tiny-inverse", ClusterDiffusion(tiny_config()))


def test_json_contract_and_xyz_files(bundle, tmp_path, capsys):
    xmu = _write_xmu(tmp_path / "xmu.dat")
    out = tmp_path / "candidates"
    assert main([str(xmu), "--element", "Cu", "--model", str(bundle), "--samples", "3", "--refine", "0",
                 "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    samples = result["samples"]
    assert len(samples) == 3 + 3 and {s["method"] for s in samples} == {"diffusion", "retrieval"}
    mses = [s["roundtrip_mse"] for s in samples]
    assert mses == sorted(mses)
    for entry in samples:
        assert {"method", "coordination_number", "first_shell_distance_a", "neighbours", "roundtrip_mse",
                "xyz"} <= set(entry)
        assert isinstance(entry["coordination_number"], int) and isinstance(entry["neighbours"], dict)
        lines = open(entry["xyz"]).read().splitlines()
        assert int(lines[0]) == entry["n_atoms"] and "Properties=species:S:1:pos:R:3" in lines[1]
        assert lines[2].split()[0] == "Cu" and [float(v) for v in lines[2].split()[1:]] == [0.0, 0.0, 0.0]
    retrieved = [s for s in samples if s["method"] == "retrieval"]
    assert all(s["coordination_number"] == 4 and s["neighbours"] == {"O": 4} for s in retrieved)


def test_table_output_without_json(bundle, tmp_path, capsys):
    assert main([str(_write_xmu(tmp_path / "xmu.dat")), "--element", "Cu", "--model", str(bundle),
                 "--samples", "0", "--retrieval", "2", "--refine", "0"]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if not l.startswith("#")]
    assert lines[0] == "rank,method,coordination_number,first_shell_distance_a,neighbours,roundtrip_mse"
    assert len(lines) == 3 and lines[1].startswith("1,retrieval,4,")


@pytest.mark.parametrize("make, problem", [
    (lambda p: p / "missing.dat", "no such file"),
    (lambda p: (p / "notes.txt").write_text("hello\n") and p / "notes.txt", "notes.txt"),
])
def test_bad_input_is_one_line_and_exit_2(bundle, tmp_path, capsys, make, problem):
    with pytest.raises(SystemExit) as exit_info:
        main([str(make(tmp_path)), "--element", "Cu", "--model", str(bundle)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and problem in err[0]


def test_wrong_element_or_model_is_one_line(bundle, tmp_path, capsys):
    xmu = _write_xmu(tmp_path / "xmu.dat")
    for argv, problem in (([str(xmu), "--element", "Fe", "--model", str(bundle)], "not Fe"),
                          ([str(xmu), "--element", "Cu", "--model", "no-such-model"], "no inverse model"),
                          ([str(xmu), "--element", "Xx"], "--element Xx")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and problem in err[0], err


def test_invert_api_returns_frozen_candidates_best_first(bundle):
    model = load_inverse(str(bundle), element="Cu")
    candidates = invert(planted_spectrum(0), "Cu", 2, n_retrieval=2, n_refine=0, model=model)
    assert len(candidates) == 4 and all(isinstance(c, Candidate) for c in candidates)
    assert [c.roundtrip_mse for c in candidates] == sorted(c.roundtrip_mse for c in candidates)
    best_retrieval = next(c for c in candidates if c.method == "retrieval")
    assert best_retrieval.coordination_number == 2 and best_retrieval.source_id.startswith("site-")
    assert best_retrieval.structure().absorber_index == 0
    assert best_retrieval.roundtrip_mu.shape == model.energy_ev.shape
    with pytest.raises(ValueError):
        best_retrieval.positions_a[0, 0] = 1.0
    assert invert(planted_spectrum(0), "Cu", 0, n_retrieval=0, model=model) == ()
    for counts in ("retrieval", "model"):
        sampled = invert(planted_spectrum(1), "Cu", 3, n_retrieval=0, model=model, counts=counts)
        assert len(sampled) == 3 and all(c.method == "diffusion" for c in sampled)
    # The library's CN-4 clusters hold 4 neighbours within the radius: so do the samples.
    assert {len(c.atomic_numbers) for c in invert(planted_spectrum(1), "Cu", 4, n_retrieval=0, model=model)} == {5}
    with pytest.raises(ValueError, match="counts"):
        invert(planted_spectrum(0), "Cu", 1, model=model, counts="guess")
    with pytest.raises(ValueError, match="points"):
        invert(np.ones(10), "Cu", 1, model=model)
    with pytest.raises(ValueError, match="unknown methods"):
        invert(planted_spectrum(0), "Cu", 1, model=model, methods=("magic",))


def test_the_forward_registry_never_returns_the_inverse_bundle(monkeypatch):
    from pathlib import Path

    from model_core import registry

    shipped = Path(__file__).resolve().parents[3] / "resources" / "models"
    monkeypatch.setattr(registry, "models_dir", lambda: shipped)
    assert (shipped / "cu-k-inverse" / "inverse.json").is_file()
    assert registry.model_for_element("Cu").name == "cu-k-feff"
    assert "cu-k-inverse" not in {entry.name for entry in registry.list_models()}
    assert registry.find_model("cu-k-inverse") is None
