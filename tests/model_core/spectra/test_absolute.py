import numpy as np
import pytest

from model_core.spectra.absolute import absolute_grid, on_absolute_grid
from model_core.types import Prediction


def _prediction(e0, weights=(1.0, 3.0), spread=False):
    energy = np.linspace(-10.0, 40.0, 101)  # 0.5 eV
    mu = np.stack([np.tanh(energy / 5.0) + 1.0, 0.5 * np.sin(energy / 7.0) + 1.0])
    return Prediction(energy_ev=energy, site_indices=np.array([0, 1]), weights=np.array(weights), mu=mu,
                      average=np.average(mu, axis=0, weights=weights), e0_ev=None if e0 is None else np.array(e0),
                      model_name="m", mu_spread=0.1 * mu if spread else None)


def test_two_sites_at_different_e0_average_the_interpolated_sites():
    pred = _prediction([8980.0, 8983.3], spread=True)
    placed = on_absolute_grid(pred)
    # The intersection of 8970..9020 and 8973.3..9023.3, with the model's 0.5 eV step.
    assert placed.energy_ev[0] == pytest.approx(8973.3)
    assert placed.energy_ev[-1] <= 9020.0 + 1e-9 and placed.energy_ev[-1] > 9020.0 - 0.5
    np.testing.assert_allclose(np.diff(placed.energy_ev), 0.5)
    sites = np.stack([np.interp(placed.energy_ev, pred.energy_ev + e0, mu) for e0, mu in zip(pred.e0_ev, pred.mu)])
    np.testing.assert_allclose(placed.mu, sites)
    np.testing.assert_allclose(placed.average, (sites[0] + 3 * sites[1]) / 4)
    np.testing.assert_allclose(placed.spread, 0.1 * placed.average)
    # Not the relative average moved to the mean E0.
    assert not np.allclose(placed.average, np.interp(placed.energy_ev, pred.energy_ev + 8982.475, pred.average))


def test_one_edge_energy_is_the_model_grid_moved_there_and_the_step_can_be_set():
    pred = _prediction([8980.0, 8980.0])
    placed = on_absolute_grid(pred)
    np.testing.assert_allclose(placed.energy_ev, pred.energy_ev + 8980.0)
    np.testing.assert_allclose(placed.average, pred.average, atol=1e-12)
    assert placed.spread is None
    assert len(absolute_grid(pred, step_ev=0.25)) == 201


def test_without_e0_or_overlap_it_refuses():
    with pytest.raises(ValueError, match="no edge energy"):
        on_absolute_grid(_prediction(None))
    with pytest.raises(ValueError, match="do not overlap"):
        on_absolute_grid(_prediction([8980.0, 9100.0]))


def test_the_band_follows_the_sites_onto_the_shared_grid():
    from model_core.types import Band, Prediction

    energy = np.linspace(-10.0, 40.0, 51)
    mu = np.stack([np.tanh(energy / 5.0), np.tanh((energy - 2.0) / 5.0)])
    pred = Prediction(energy_ev=energy, site_indices=[0, 1], weights=[1.0, 3.0], mu=mu,
                      average=np.average(mu, axis=0, weights=[1.0, 3.0]), e0_ev=np.array([8980.0, 8982.0]),
                      mu_lo=mu - 0.1, mu_hi=mu + 0.2, band=Band(0.9, "test"))
    placed = on_absolute_grid(pred)
    np.testing.assert_allclose(placed.band[0], placed.average - 0.1, atol=1e-12)
    np.testing.assert_allclose(placed.band[1], placed.average + 0.2, atol=1e-12)
    assert on_absolute_grid(replace_band(pred)).band is None


def replace_band(pred):
    import dataclasses

    return dataclasses.replace(pred, mu_lo=None, mu_hi=None, band=None)
