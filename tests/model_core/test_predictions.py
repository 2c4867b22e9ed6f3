"""Prediction.split / Prediction.combine: the per-site cache format and its inverse."""

from __future__ import annotations

import numpy as np

from model_core.types import Prediction, SiteAttention

GRID = np.linspace(-20.0, 60.0, 41)


def three_sites(with_extras: bool = True) -> Prediction:
    """A 3-site prediction with distinct spectra, E0s, attention and spread."""
    rng = np.random.default_rng(0)
    mu = rng.random((3, len(GRID)))
    weights = np.array([1.0, 2.0, 1.0])
    attention = tuple(SiteAttention(atom_index=np.array([k, 4]), image=np.zeros((2, 3), dtype=int),
                                    distance=np.array([0.0, 1.9]), weight=np.array([0.0, 1.0]))
                      for k in range(3)) if with_extras else ()
    return Prediction(energy_ev=GRID, site_indices=np.array([1, 2, 3]), weights=weights, mu=mu,
                      average=np.average(mu, axis=0, weights=weights),
                      e0_ev=np.array([8979.0, 8979.5, 8980.0]) if with_extras else None,
                      attention=attention, model_name="m", trained=True, element="Cu", edge="K",
                      mu_spread=0.1 * mu if with_extras else None)


def test_split_gives_one_single_site_prediction_per_site():
    full = three_sites()
    parts = full.split()
    assert [int(p.site_indices[0]) for p in parts] == [1, 2, 3]
    for k, part in enumerate(parts):
        assert part.mu.shape == (1, len(GRID)) and list(part.weights) == [1.0]
        np.testing.assert_array_equal(part.average, full.mu[k])
        assert part.e0_ev.tolist() == [full.e0_ev[k]]
        assert part.attention == (full.attention[k],)
        np.testing.assert_array_equal(part.mu_spread[0], full.mu_spread[k])
        assert (part.model_name, part.trained, part.element, part.edge) == ("m", True, "Cu", "K")


def test_combine_inverts_split_with_the_weighted_average():
    full = three_sites()
    again = Prediction.combine(full.split(), full.weights)
    np.testing.assert_allclose(again.mu, full.mu)
    np.testing.assert_allclose(again.average, full.average)
    np.testing.assert_allclose(again.e0_ev, full.e0_ev)
    np.testing.assert_allclose(again.mu_spread, full.mu_spread)
    assert list(again.site_indices) == [1, 2, 3] and len(again.attention) == 3
    # Other weights: the average follows them, the per-site spectra do not change.
    unweighted = Prediction.combine(full.split(), np.ones(3))
    np.testing.assert_allclose(unweighted.average, full.mu.mean(axis=0))


def test_combine_drops_what_not_every_part_has():
    plain = three_sites(with_extras=False).split()
    rich = three_sites().split()
    mixed = Prediction.combine([rich[0], plain[1]], np.ones(2))
    assert mixed.e0_ev is None and mixed.attention == () and mixed.mu_spread is None
    np.testing.assert_allclose(mixed.average, 0.5 * (rich[0].mu[0] + plain[1].mu[0]))
