"""The E0 interval reaches its coverage on synthetic data, survives the checkpoint and reaches
the Prediction; old checkpoints without it predict no interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.checkpoint import add_entries, load_checkpoint
from model_core.inference import load_model
from model_core.trust.e0 import PLAIN_METHOD, SCALED_METHOD, E0Calibration, e0_coverage, fit_e0_calibration, min_sites
from model_core.types import Band, Prediction
from tests.model_core.helpers import cuprite, tiny_checkpoint


def _synthetic(n: int, seed: int, members: bool = True):
    """Heteroscedastic errors, 2.5x the reported spread, with a few unknown E0."""
    rng = np.random.default_rng(seed)
    spread = np.exp(rng.normal(-1.5, 0.7, size=n))
    e0 = rng.normal(8985, 2, size=n)
    true = e0 + 2.5 * spread * rng.standard_normal(n)
    true[::50] = np.nan
    return true, e0, spread if members else None


@pytest.mark.parametrize("members", [True, False])
def test_interval_covers_ninety_percent_of_new_sites(members):
    calibration = fit_e0_calibration(*_synthetic(3000, seed=1, members=members), level=0.9)
    true, e0, spread = _synthetic(20000, seed=2, members=members)
    lo, hi = calibration.interval(e0, spread)
    assert e0_coverage(true, lo, hi) == pytest.approx(0.9, abs=0.02)
    assert calibration.scaled is members and calibration.method == (SCALED_METHOD if members else PLAIN_METHOD)
    assert calibration.n_sites == 2940  # the unknown E0 are left out
    half = calibration.halfwidth_ev(spread, len(e0))
    if members:
        # Wider where the members disagree, about 2.5 * 1.645 spreads.
        assert np.corrcoef(half, spread)[0, 1] > 0.99
        assert calibration.scale() == pytest.approx(2.5 * 1.645, rel=0.1)
    else:
        assert np.ptp(half) == 0
    # A scaled calibration cannot size a prediction that has no members' spread.
    assert (calibration.halfwidth_ev(None, 3) is None) is members


def test_levels_and_too_few_sites():
    calibration = fit_e0_calibration(*_synthetic(12, seed=3))  # 11 known: 0.95 needs 19
    assert 0.9 in calibration.levels and 0.95 not in calibration.levels
    assert calibration.scale(0.5) < calibration.scale(0.9)
    with pytest.raises(ValueError, match="no E0 calibration at level"):
        calibration.scale(0.95)
    assert min_sites(0.9) == 9 and min_sites(0.95) == 19
    with pytest.raises(ValueError, match="at least 9"):
        fit_e0_calibration(np.arange(8.0), np.arange(8.0) + 0.1)
    with pytest.raises(ValueError, match="shape"):
        fit_e0_calibration(np.arange(10.0), np.arange(9.0))


def test_round_trip_through_a_weights_only_checkpoint(tmp_path):
    calibration = fit_e0_calibration(*_synthetic(200, seed=4), info={"data": "synthetic"})
    path = add_entries(tiny_checkpoint(tmp_path / "m.pt"), tmp_path / "c.pt",
                       {"e0_calibration": calibration.to_dict()})
    raw = torch.load(path, weights_only=True)["e0_calibration"]
    assert E0Calibration.from_dict(raw) == calibration
    assert E0Calibration.from_dict(load_checkpoint(path).to_dict()["e0_calibration"]) == calibration


def test_prediction_carries_the_interval_and_old_checkpoints_none(tmp_path, tiny_ensemble):
    old = load_model(str(tiny_ensemble), device="cpu").predict(cuprite(), [0, 1])
    assert old.e0_lo_ev is None and old.e0_hi_ev is None and old.e0_band is None
    assert old.e0_spread_ev is not None and old.e0_spread_ev.shape == (2,) and np.all(old.e0_spread_ev >= 0)
    single = load_model(str(tiny_checkpoint(tmp_path / "one.pt")), device="cpu").predict(cuprite(), [0])
    assert single.e0_spread_ev is None and single.e0_lo_ev is None

    calibration = E0Calibration(level=0.9, levels=(0.9,), scales=(2.0,), scaled=True, spread_floor_ev=0.05,
                                method=SCALED_METHOD)
    path = add_entries(tiny_ensemble, tmp_path / "e0.pt", {"e0_calibration": calibration.to_dict()})
    prediction = load_model(str(path), device="cpu").predict(cuprite(), [0, 1])
    np.testing.assert_allclose(prediction.e0_ev, old.e0_ev)
    np.testing.assert_allclose(prediction.e0_halfwidth_ev, 2.0 * np.maximum(old.e0_spread_ev, 0.05))
    assert prediction.e0_band == Band(0.9, SCALED_METHOD)
    lo, hi = prediction.average_e0_interval_ev
    assert lo < prediction.average_e0_ev < hi
    # A plain calibration gives single models an interval too.
    plain = E0Calibration(level=0.9, levels=(0.9,), scales=(0.7,), scaled=False, method=PLAIN_METHOD)
    one = add_entries(tiny_checkpoint(tmp_path / "one.pt"), tmp_path / "one-e0.pt",
                      {"e0_calibration": plain.to_dict()})
    np.testing.assert_allclose(load_model(str(one), device="cpu").predict(cuprite(), [0]).e0_halfwidth_ev, [0.7])


def test_combine_and_split_keep_the_e0_fields():
    grid = np.linspace(-5, 5, 11)
    full = Prediction(energy_ev=grid, site_indices=[0, 3], weights=[1, 3], mu=np.ones((2, 11)),
                      average=np.ones(11), e0_ev=[8980.0, 8982.0], e0_spread_ev=[0.1, 0.3],
                      e0_lo_ev=[8979.5, 8981.0], e0_hi_ev=[8980.5, 8983.0], e0_band=Band(0.9, "m"))
    parts = full.split()
    assert parts[1].e0_spread_ev.tolist() == [0.3] and parts[1].e0_band == Band(0.9, "m")
    back = Prediction.combine(parts, full.weights)
    for name in ("e0_ev", "e0_spread_ev", "e0_lo_ev", "e0_hi_ev"):
        np.testing.assert_array_equal(getattr(back, name), getattr(full, name))
    assert back.e0_band == full.e0_band
    assert back.average_e0_ev == pytest.approx(8981.5)
    assert back.average_e0_spread_ev == pytest.approx(0.25)
    assert back.average_e0_interval_ev == pytest.approx((8980.625, 8982.375))
    np.testing.assert_allclose(back.e0_halfwidth_ev, [0.5, 1.0])
    # One part without the interval: the joined prediction has none.
    other = Prediction(energy_ev=grid, site_indices=[5], weights=[1], mu=np.ones((1, 11)), average=np.ones(11),
                       e0_ev=[8981.0])
    mixed = Prediction.combine([parts[0], other], np.ones(2))
    assert mixed.e0_lo_ev is None and mixed.e0_band is None and mixed.e0_spread_ev is None
    with pytest.raises(ValueError, match="come together"):
        Prediction(energy_ev=grid, site_indices=[0], weights=[1], mu=np.ones((1, 11)), average=np.ones(11),
                   e0_ev=[1.0], e0_lo_ev=[0.5])


def _meta(text: str) -> dict[str, str]:
    return dict(line[2:].split(": ", 1) for line in text.splitlines() if line.startswith("# "))


def test_wide_csv_gains_the_e0_lines(tiny_ensemble, tmp_path):
    from model_core.cli.predict import run
    from tests.model_core.helpers import CUPRITE_CIF

    cif = tmp_path / "Cu2O.cif"
    cif.write_text(CUPRITE_CIF)
    before = tmp_path / "before.csv"
    assert run([str(cif), "--model", str(tiny_ensemble), "--out", str(before)]) == 0
    old = _meta(before.read_text())
    assert old["e0_interval"].startswith("none: the edge energy is uncalibrated")
    assert "predicted_e0_interval90_ev" not in old and float(old["predicted_e0_spread_ev"]) >= 0

    calibration = E0Calibration(level=0.9, levels=(0.9,), scales=(2.0,), scaled=True, spread_floor_ev=0.05,
                                method=SCALED_METHOD)
    path = add_entries(tiny_ensemble, tmp_path / "e0.pt", {"e0_calibration": calibration.to_dict()})
    after = tmp_path / "after.csv"
    assert run([str(cif), "--model", str(path), "--out", str(after)]) == 0
    meta = _meta(after.read_text())
    # Every earlier line and every data row stays as it was.
    same = set(old) - {"e0_interval", "model"}
    assert {k: meta[k] for k in same} == {k: old[k] for k in same}
    strip = [line for line in after.read_text().splitlines() if not line.startswith("#")]
    assert strip == [line for line in before.read_text().splitlines() if not line.startswith("#")]
    e0 = float(meta["predicted_e0_ev"])
    lo, hi = (float(v) for v in meta["predicted_e0_interval90_ev"].split(","))
    assert lo < e0 < hi
    sites = meta["sites"].split()
    pairs = dict(item.split("=") for item in meta["site_e0_ev"].split(" (")[0].split())
    assert list(pairs) == sites and all(abs(float(v) - e0) < 0.01 for v in pairs.values())
    bounds = dict(item.split("=") for item in meta["site_e0_interval90_ev"].split(" (")[0].split())
    assert list(bounds) == sites and bounds[sites[0]] == f"{lo:.2f},{hi:.2f}"
    assert SCALED_METHOD in meta["site_e0_interval90_ev"]
    spreads = dict(item.split("=") for item in meta["site_e0_spread_ev"].split(" (")[0].split())
    assert list(spreads) == sites and "e0_interval" not in meta
