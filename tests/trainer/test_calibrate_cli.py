"""xanes-calibrate adds the trust entries to a checkpoint and leaves everything else as it was."""

import json

import pytest
import torch

from model_core.checkpoint import load_checkpoint, make_ensemble, save_checkpoint
from model_core.inference import load_model
from tests.model_core.helpers import cuprite, tiny_checkpoint
from tests.trainer.data.synthetic import write_feff_material


def _synthetic_ensemble(tmp_path, n_materials):
    """(data folder, two-member ensemble path, its prepared data) for n synthetic materials."""
    from trainer.data.dataset import prepare_dataset

    data = tmp_path / "data"
    for k in range(n_materials):
        write_feff_material(data, material=f"mp-{k}", sites=(0, 1))
    members = [load_checkpoint(tiny_checkpoint(tmp_path / f"m{k}.pt", seed=k)) for k in range(2)]
    model = save_checkpoint(make_ensemble(members), tmp_path / "ens.pt")
    prepared = prepare_dataset(
        data, grid=members[0].model_config.grid, graph_config=members[0].graph_config,
        normalization="feff", element="Cu", progress=False)[0]
    return data, model, prepared


def _ids_file(path, prepared, materials):
    """Write the ids of the sites of materials ``mp-<k>`` (k in ``materials``) to ``path``."""
    names = {f"mp-{k}" for k in materials}
    path.write_text("\n".join(str(i) for i, g in zip(prepared.ids, prepared.group_ids) if str(g) in names))
    return path


def test_calibrate_cli_adds_only_new_keys(tmp_path, capsys):
    from trainer.cli.calibrate import main

    data, model, prepared = _synthetic_ensemble(tmp_path, 12)
    val = _ids_file(tmp_path / "val.txt", prepared, range(4))
    out = tmp_path / "calibrated.pt"
    main([str(model), "--data", str(data), "--ids", str(val), "--out", str(out), "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["validation_sites"] == 8 and summary["training_sites"] == 16
    assert 0 <= summary["heldout_coverage"] <= 1 and "heldout_share_domain_score_le_1" in summary
    before, after = torch.load(model, weights_only=True), torch.load(out, weights_only=True)
    assert set(after) - set(before) == {"spread_calibration", "domain_index"}
    for key, value in before["state_dict"].items():
        assert torch.equal(value, after["state_dict"][key])
    prediction = load_model(str(out), device="cpu").predict(cuprite(), [0])
    assert prediction.band is not None and prediction.band.level == 0.9
    assert prediction.domain_score is not None
    # Sites that chose nothing are only scored: the same entries, two more numbers.
    report = _ids_file(tmp_path / "report.txt", prepared, (4, 5))
    scored = tmp_path / "scored.pt"
    main([str(model), "--data", str(data), "--ids", str(val), "--report-ids", str(report),
          "--out", str(scored), "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["reporting_sites"] == 4 and summary["training_sites"] == 12
    assert 0 <= summary["reporting_coverage"] <= 1 and 0 <= summary["reporting_share_domain_score_le_1"] <= 1
    assert torch.equal(torch.load(scored, weights_only=True)["spread_calibration"]["scale"],
                       after["spread_calibration"]["scale"])
    with pytest.raises(SystemExit):
        main([str(model), "--data", str(tmp_path / "nope"), "--ids", str(val), "--out", str(out)])
    assert "no such dataset" in capsys.readouterr().err


def test_eval_reports_coverage90_of_the_calibrated_band():
    import numpy as np

    from model_core.trust.calibration import fit_calibration
    from trainer.evaluate import band_coverage

    rng = np.random.default_rng(0)
    spread = np.full((600, 20), 0.01)
    pred = rng.normal(size=(600, 20))
    true = pred + 0.03 * rng.standard_normal((600, 20))
    calibration = fit_calibration(true[:300], pred[:300], spread[:300])
    metrics = band_coverage(calibration, true[300:], pred[300:], spread[300:])
    assert abs(metrics["coverage90"] - 0.9) < 0.03
    raw = band_coverage(None, true, pred, spread)["coverage90_uncalibrated"]
    assert raw < 0.5
    assert band_coverage(calibration, true, pred, None) == {}


def test_calibrate_cli_fits_the_e0_interval_and_reports_its_coverage(tmp_path, capsys):
    from model_core.trust.e0 import E0Calibration
    from trainer.cli.calibrate import main

    data, model, prepared = _synthetic_ensemble(tmp_path, 27)

    def ids(name, materials):
        return str(_ids_file(tmp_path / name, prepared, materials))

    out = tmp_path / "calibrated.pt"
    main([str(model), "--data", str(data), "--ids", ids("val.txt", range(20)),
          "--report-ids", ids("report.txt", range(20, 22)), "--out", str(out), "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["e0_validation_sites"] == 40 and summary["reporting_sites"] == 4
    for key in ("e0_heldout_coverage", "e0_fitted_coverage", "e0_reporting_coverage"):
        assert 0 <= summary[key] <= 1
    assert summary["e0_fitted_coverage"] >= 0.9
    assert summary["e0_halfwidth_median_ev"] > 0 and summary["e0_reporting_mae_ev"] >= 0
    assert "heldout_coverage" in summary and "reporting_coverage" in summary  # the band's keys stay
    stored = E0Calibration.from_dict(torch.load(out, weights_only=True)["e0_calibration"])
    assert stored.scaled and stored.level == 0.9 and stored.n_sites == 40
    assert stored.info["e0_heldout_coverage"] == summary["e0_heldout_coverage"]
    prediction = load_model(str(out), device="cpu").predict(cuprite(), [0])
    assert prediction.e0_band is not None and prediction.e0_lo_ev[0] < prediction.e0_ev[0] < prediction.e0_hi_ev[0]


def test_calibrate_cli_says_why_there_is_no_e0_interval(tmp_path, capsys):
    """Too few validation sites for a 90% interval: no entry, one line saying why."""
    from trainer.cli.calibrate import main

    data = tmp_path / "data"
    for k in range(8):
        write_feff_material(data, material=f"mp-{k}", sites=(0, 1))
    model = tiny_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "calibrated.pt"
    from trainer.data.dataset import prepare_dataset

    config = load_checkpoint(model)
    prepared = prepare_dataset(data, grid=config.model_config.grid, graph_config=config.graph_config,
                               normalization="feff", element="Cu", progress=False)[0]
    val = tmp_path / "val.txt"
    val.write_text("\n".join(str(i) for i, g in zip(prepared.ids, prepared.group_ids)
                             if str(g) in {"mp-0", "mp-1"}))
    main([str(model), "--data", str(data), "--ids", str(val), "--out", str(out), "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["e0_calibration"].startswith("none: an E0 interval at level 0.9 needs at least 9")
    assert "e0_calibration" not in torch.load(out, weights_only=True)


def test_domain_threshold_can_come_from_more_sites_than_the_band(tmp_path, capsys):
    """--domain-ids: the band is fitted on --ids alone, the domain threshold on the larger set."""
    from model_core.trust.domain import DomainIndex
    from trainer.cli.calibrate import main

    data, model, prepared = _synthetic_ensemble(tmp_path, 12)
    val = str(_ids_file(tmp_path / "val.txt", prepared, range(3)))
    wide = str(_ids_file(tmp_path / "all.txt", prepared, range(6)))
    plain, wider = tmp_path / "plain.pt", tmp_path / "wider.pt"
    main([str(model), "--data", str(data), "--ids", val, "--out", str(plain), "--device", "cpu"])
    capsys.readouterr()
    main([str(model), "--data", str(data), "--ids", val, "--domain-ids", wide, "--out", str(wider),
          "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["training_sites"] == 12  # the threshold's sites are no training sites
    first, second = (torch.load(p, weights_only=True) for p in (plain, wider))
    assert torch.equal(first["spread_calibration"]["scale"], second["spread_calibration"]["scale"])
    index = DomainIndex.from_dict(second["domain_index"])
    # (The synthetic sites share one environment, so the thresholds themselves coincide.)
    assert index.info["domain_threshold_sites"] == 12 and index.info["domain_threshold_ids"] == "all.txt"
    assert "domain_threshold_sites" not in DomainIndex.from_dict(first["domain_index"]).info
