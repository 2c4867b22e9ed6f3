"""A model whose grid is relative to one fixed energy (FDMNES data: the tabulated edge) is
placed on the absolute axis at that energy, not at its predicted E0 (the Fermi level)."""

import csv
import io

import numpy as np
import pytest

from model_core.checkpoint import CheckpointError, load_checkpoint, make_ensemble, save_checkpoint
from model_core.spectra.absolute import on_absolute_grid
from model_core.types import Prediction, Spectrum

from tests.model_core.helpers import CUPRITE_CIF, tiny_checkpoint

ORIGIN = 7112.0


def _fixed_origin_model(tmp_path):
    """A tiny checkpoint with a fixed grid origin, and a cuprite CIF to predict."""
    import dataclasses

    path = tmp_path / "fixed.pt"
    save_checkpoint(dataclasses.replace(load_checkpoint(tiny_checkpoint(tmp_path / "a.pt")),
                                        grid_origin_ev=ORIGIN), path)
    cif = tmp_path / "Cu2O.cif"
    cif.write_text(CUPRITE_CIF)
    return path, cif


def _prediction(origin=None, e0=(7110.1, 7111.4)):
    energy = np.linspace(-10.0, 40.0, 101)
    mu = np.stack([np.tanh(energy / 5.0) + 1.0, 0.5 * np.sin(energy / 7.0) + 1.0])
    return Prediction(energy_ev=energy, site_indices=np.array([0, 1]), weights=np.array([1.0, 3.0]), mu=mu,
                      average=np.average(mu, axis=0, weights=[1.0, 3.0]), e0_ev=np.array(e0),
                      grid_origin_ev=origin)


def test_a_fixed_origin_is_every_sites_zero_and_survives_split_and_combine():
    pred = _prediction(ORIGIN)
    np.testing.assert_array_equal(pred.site_zero_ev, [ORIGIN, ORIGIN])
    assert pred.average_zero_ev == ORIGIN
    assert pred.average_e0_ev == pytest.approx((7110.1 + 3 * 7111.4) / 4)  # E0 stays the Fermi level
    parts = pred.split()
    assert all(p.grid_origin_ev == ORIGIN for p in parts)
    assert Prediction.combine(parts, pred.weights).grid_origin_ev == ORIGIN
    spectrum = pred.site_spectrum(1)
    assert spectrum.zero_ev == ORIGIN and spectrum.e0_ev == pytest.approx(7111.4)
    assert pred.average_spectrum().zero_ev == ORIGIN
    # Without one, each site's zero is its own E0 (FEFF), as before.
    plain = _prediction(None)
    np.testing.assert_array_equal(plain.site_zero_ev, plain.e0_ev)
    assert plain.average_spectrum().zero_ev == pytest.approx(plain.average_e0_ev)
    assert Spectrum(np.arange(3.0), np.ones(3)).zero_ev is None


def test_absolute_grid_of_a_fixed_origin_is_the_model_grid_moved_there():
    pred = _prediction(ORIGIN)
    placed = on_absolute_grid(pred)
    np.testing.assert_allclose(placed.energy_ev, pred.energy_ev + ORIGIN)
    np.testing.assert_allclose(placed.average, pred.average, atol=1e-12)  # no interpolation: one grid
    shifted = on_absolute_grid(_prediction(None))
    assert shifted.energy_ev[0] == pytest.approx(7111.4 - 10.0)  # each site at its E0 instead


def test_checkpoints_keep_the_origin_and_ensembles_refuse_to_mix_origins(tmp_path):
    import dataclasses

    path = tiny_checkpoint(tmp_path / "a.pt")
    plain = load_checkpoint(path)
    assert plain.grid_origin_ev is None and "grid_origin_ev" not in plain.to_dict()
    fixed = dataclasses.replace(plain, grid_origin_ev=ORIGIN)
    again = load_checkpoint(save_checkpoint(fixed, tmp_path / "b.pt"))
    assert again.grid_origin_ev == ORIGIN
    assert again.member(0).grid_origin_ev == ORIGIN
    other = load_checkpoint(tiny_checkpoint(tmp_path / "c.pt", seed=1))
    assert make_ensemble([again, dataclasses.replace(other, grid_origin_ev=ORIGIN)]).grid_origin_ev == ORIGIN
    with pytest.raises(CheckpointError, match="grid origin"):
        make_ensemble([again, other])


def test_the_predictor_carries_the_origin_and_the_shipped_fe_model_has_it(tmp_path):
    from model_core.inference import load_model, resolve_model_path
    from model_core.io import read_structure

    path, cif = _fixed_origin_model(tmp_path)
    prediction = load_model(str(path), device="cpu").predict(read_structure(str(cif)), [0])
    assert prediction.grid_origin_ev == ORIGIN
    assert load_checkpoint(resolve_model_path("fe-k-fdmnes")[1]).grid_origin_ev == ORIGIN
    assert load_checkpoint(resolve_model_path("cu-k-feff")[1]).grid_origin_ev is None


def test_predict_cli_puts_a_fixed_origin_model_at_its_origin(tmp_path, capsys):
    from model_core.cli.predict import run

    path, cif = _fixed_origin_model(tmp_path)

    def table(*args):
        assert run([str(cif), "--model", str(path), *args]) == 0
        lines = capsys.readouterr().out.splitlines()
        meta = {line[2:].split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines if line.startswith("#")}
        rows = list(csv.reader(io.StringIO("\n".join(l for l in lines if not l.startswith("#")))))
        return meta, rows

    meta, rows = table()
    assert meta["energy_reference"].startswith("eV relative to the edge (E - 7112.0 eV")
    relative = np.array([float(r[0]) for r in rows[1:]])
    meta, rows = table("--energy", "absolute")
    assert meta["energy_reference"].startswith("absolute eV: the model grid + 7112.0 eV")
    np.testing.assert_allclose([float(r[0]) for r in rows[1:]], relative + ORIGIN, atol=1e-4)
    assert float(meta["predicted_e0_ev"]) != pytest.approx(ORIGIN, abs=1e-3)  # E0 is still reported
    # The tidy CSV (two inputs) places every site row there too.
    assert run([str(cif), str(cif), "--model", str(path), "--energy", "absolute"]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if not l.startswith("#")]
    energies = [float(r[3]) for r in csv.reader(io.StringIO("\n".join(lines[1:]))) if r[1] != "average"]
    assert min(energies) == pytest.approx(ORIGIN + relative[0], abs=1e-4)


def test_compare_places_a_fixed_origin_prediction_at_its_origin():
    from model_core.spectra.align import compare
    from model_core.types import Spectrum

    energy = np.linspace(7080.0, 7200.0, 601)
    measured = 1.0 / (1.0 + np.exp(-(energy - 7112.0) / 2.0))

    class Norm:
        flat = norm = measured
        e0, edge_step = 7112.0, 1.0

    grid = np.linspace(-10.0, 40.0, 101)
    spectrum = Spectrum(grid, 1.0 / (1.0 + np.exp(-grid / 2.0)), energy_reference="edge", e0_ev=7110.0,
                        grid_origin_ev=ORIGIN)
    result = compare(energy, Norm(), spectrum, mode="e0")
    assert result.e0_reference == "model" and result.placement_ev == pytest.approx(ORIGIN)
    assert result.e0_predicted_ev == pytest.approx(7110.0)
    assert result.metrics["mse"] < 1e-6  # on the origin the two edges coincide
