"""Deep ensembles: one checkpoint of several members whose predictions are averaged."""

import numpy as np
import pytest
import torch

from model_core.checkpoint import CheckpointError, load_checkpoint, make_ensemble, save_checkpoint
from model_core.inference import load_model

from tests.model_core.helpers import TINY_MODEL, cuprite, tiny_checkpoint


@pytest.fixture()
def members(tmp_path):
    return [tiny_checkpoint(tmp_path / f"m{k}.pt", seed=k) for k in range(3)]


def test_ensemble_predicts_the_members_mean_with_their_spread(members, tmp_path):
    path = save_checkpoint(make_ensemble([load_checkpoint(p) for p in members]), tmp_path / "ens.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 2 and len(raw["ensemble_state_dicts"]) == 2
    structure = cuprite()
    sites = [0, 1, 2]
    singles = [load_model(str(p), device="cpu").predict(structure, sites) for p in members]
    ensemble = load_model(str(path), device="cpu").predict(structure, sites)
    stacked = np.stack([s.mu for s in singles])
    np.testing.assert_allclose(ensemble.mu, stacked.mean(0), atol=1e-6)
    np.testing.assert_allclose(ensemble.mu_spread, stacked.std(0), atol=1e-6)
    np.testing.assert_allclose(ensemble.e0_ev, np.mean([s.e0_ev for s in singles], axis=0), atol=1e-4)
    weights = np.mean([[a.weight for a in s.attention] for s in singles], axis=0)
    np.testing.assert_allclose([a.weight for a in ensemble.attention], weights, atol=1e-6)
    assert singles[0].mu_spread is None


def test_single_models_stay_format_1_and_nested_ensembles_flatten(members, tmp_path):
    assert torch.load(members[0], weights_only=True)["format_version"] == 1
    pair = make_ensemble([load_checkpoint(p) for p in members[:2]])
    triple = make_ensemble([pair, load_checkpoint(members[2])])
    assert len(triple.state_dicts) == 3
    assert len(triple.provenance["ensemble_members"]) == 3


def test_members_of_different_architecture(members, tmp_path):
    """A wider member joins an ensemble; the file says each member's architecture."""
    import dataclasses

    wider = dataclasses.replace(TINY_MODEL, scalar_channels=TINY_MODEL.scalar_channels * 2,
                                num_blocks=TINY_MODEL.num_blocks + 1)
    other = tiny_checkpoint(tmp_path / "wide.pt", seed=7, model_config=wider)
    same = make_ensemble([load_checkpoint(p) for p in members[:2]])
    assert same.format_version == 2 and same.member_model_configs == ()
    mixed = make_ensemble([same, load_checkpoint(other)])
    assert mixed.model_configs == (TINY_MODEL, TINY_MODEL, wider)
    path = save_checkpoint(mixed, tmp_path / "mixed.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 3 and len(raw["ensemble_model_configs"]) == 2
    assert load_checkpoint(path).model_configs == (TINY_MODEL, TINY_MODEL, wider)
    structure, sites = cuprite(), [0, 1]
    singles = [load_model(str(p), device="cpu").predict(structure, sites) for p in (*members[:2], other)]
    ensemble = load_model(str(path), device="cpu").predict(structure, sites)
    np.testing.assert_allclose(ensemble.mu, np.mean([s.mu for s in singles], axis=0), atol=1e-6)
    # Members must still agree on what they predict: another grid cannot be averaged.
    other_grid = dataclasses.replace(TINY_MODEL, grid=dataclasses.replace(TINY_MODEL.grid, e_max_ev=TINY_MODEL.grid.e_max_ev + 5))
    bad = tiny_checkpoint(tmp_path / "grid.pt", model_config=other_grid)
    with pytest.raises(CheckpointError, match="energy grid"):
        make_ensemble([load_checkpoint(members[0]), load_checkpoint(bad)])


def test_members_must_match(members, tmp_path):
    import dataclasses

    first = load_checkpoint(members[0])
    with pytest.raises(CheckpointError, match="at least two"):
        make_ensemble([first])
    other_element = dataclasses.replace(first, element="Fe")
    with pytest.raises(CheckpointError, match="element"):
        make_ensemble([first, other_element])
    untrained = load_checkpoint(tiny_checkpoint(tmp_path / "u.pt", trained=False))
    with pytest.raises(CheckpointError, match="no trained weights"):
        make_ensemble([first, untrained])



def test_dedicated_e0_members_give_the_e0_and_the_others_the_spectrum(members, tmp_path):
    import dataclasses

    from model_core.checkpoint import member_roles

    e0_config = dataclasses.replace(TINY_MODEL, e0_backprop=True)
    expert = tiny_checkpoint(tmp_path / "e0.pt", seed=7, model_config=e0_config)
    # The E0 member is given first; the ensemble puts the spectrum members first.
    ensemble = make_ensemble([load_checkpoint(expert), *(load_checkpoint(p) for p in members[:2])])
    assert [c.e0_backprop for c in ensemble.model_configs] == [False, False, True]
    assert member_roles(ensemble.model_configs) == ((0, 1), (2,))
    assert len(ensemble.spectrum_members) == 2
    path = save_checkpoint(ensemble, tmp_path / "mixed.pt")
    structure, sites = cuprite(), [0, 1]
    singles = [load_model(str(p), device="cpu").predict(structure, sites) for p in members[:2]]
    e0_alone = load_model(str(expert), device="cpu").predict(structure, sites)
    mixed = load_model(str(path), device="cpu")
    prediction = mixed.predict(structure, sites)
    assert mixed.info.n_members == 2 and len(mixed.models) == 2
    np.testing.assert_allclose(prediction.mu, np.mean([s.mu for s in singles], axis=0), atol=1e-6)
    np.testing.assert_allclose(prediction.e0_ev, e0_alone.e0_ev, atol=1e-4)
    assert prediction.e0_spread_ev is None  # one E0 member: no members' spread
    # Without a member of the other kind every member does both.
    assert member_roles([e0_config, e0_config]) == ((0, 1), (0, 1))
    assert member_roles([TINY_MODEL]) == ((0,), (0,))


def test_an_e0_member_trained_on_more_data_keeps_its_e0_in_ev(members, tmp_path):
    """Its own E0 standardization is folded into its head; its training mean is not used."""
    import dataclasses

    e0_config = dataclasses.replace(TINY_MODEL, e0_backprop=True)
    expert = load_checkpoint(tiny_checkpoint(tmp_path / "e0.pt", seed=7, model_config=e0_config))
    expert = dataclasses.replace(expert, e0_mean_ev=expert.e0_mean_ev + 0.7, e0_std_ev=expert.e0_std_ev * 1.3,
                                 train_mean_spectrum=expert.train_mean_spectrum + 0.05)
    e0_path = save_checkpoint(expert, tmp_path / "e0-more-data.pt")
    first = load_checkpoint(members[0])
    ensemble = make_ensemble([first, load_checkpoint(members[1]), load_checkpoint(e0_path)])
    assert (ensemble.e0_mean_ev, ensemble.e0_std_ev) == (first.e0_mean_ev, first.e0_std_ev)
    path = save_checkpoint(ensemble, tmp_path / "ens.pt")
    structure, sites = cuprite(), [0, 1]
    alone = load_model(str(e0_path), device="cpu").predict(structure, sites)
    np.testing.assert_allclose(load_model(str(path), device="cpu").predict(structure, sites).e0_ev,
                               alone.e0_ev, atol=1e-4)


def test_a_spectrum_member_trained_on_more_data_joins_and_the_first_mean_stays_the_baseline(members, tmp_path):
    """Its own training mean lives in its weights (mean_offset); eta's baseline is the first's."""
    import dataclasses

    from model_core.nn.model import XANE3

    first = load_checkpoint(members[0])
    offset_config = dataclasses.replace(TINY_MODEL, mean_offset=True)
    mean = first.train_mean_spectrum + 0.05
    model = XANE3(offset_config)
    model.set_offset_spectrum(mean)
    more = dataclasses.replace(first, model_config=offset_config, state_dict=model.state_dict(),
                               train_mean_spectrum=mean, e0_mean_ev=first.e0_mean_ev + 0.3)
    more_path = save_checkpoint(more, tmp_path / "more-data.pt")
    ensemble = make_ensemble([first, load_checkpoint(more_path)])
    np.testing.assert_array_equal(ensemble.train_mean_spectrum, first.train_mean_spectrum)
    assert len(ensemble.spectrum_members) == 2
    path = save_checkpoint(ensemble, tmp_path / "ens.pt")
    structure, sites = cuprite(), [0, 1]
    singles = [load_model(str(p), device="cpu").predict(structure, sites) for p in (members[0], more_path)]
    joined = load_model(str(path), device="cpu").predict(structure, sites)
    np.testing.assert_allclose(joined.mu, np.mean([s.mu for s in singles], axis=0), atol=1e-6)
    np.testing.assert_allclose(joined.e0_ev, np.mean([s.e0_ev for s in singles], axis=0), atol=1e-4)


def test_one_member_comes_out_as_a_single_model(members, tmp_path):
    loaded = [load_checkpoint(p) for p in members]
    ensemble = make_ensemble(loaded)
    single = ensemble.member(2)
    assert single.format_version == 1 and single.spread_calibration is None
    assert all(torch.equal(single.state_dict[k], loaded[2].state_dict[k]) for k in single.state_dict)
    assert "ensemble_members" not in single.provenance
    with pytest.raises(CheckpointError, match="member 3"):
        ensemble.member(3)


def test_members_of_different_crops_keep_their_own(members, tmp_path):
    """The ensemble's graphs take the largest crop; each member predicts as it would alone."""
    import dataclasses

    small, large = load_checkpoint(members[0]), load_checkpoint(members[1])
    large = dataclasses.replace(large, graph_config=dataclasses.replace(large.graph_config, r_crop=6.5))
    large_path = save_checkpoint(large, tmp_path / "large.pt")
    ensemble = make_ensemble([small, large])
    assert ensemble.graph_config.r_crop == 6.5
    assert [c.r_crop for c in ensemble.model_configs] == [small.graph_config.r_crop, 0.0]
    path = save_checkpoint(ensemble, tmp_path / "mixed.pt")
    structure = cuprite()
    singles = [load_model(str(p), device="cpu").predict(structure, [0, 1]) for p in (members[0], large_path)]
    mixed = load_model(str(path), device="cpu").predict(structure, [0, 1])
    np.testing.assert_allclose(mixed.mu, np.mean([s.mu for s in singles], axis=0), atol=1e-5)
    capped = dataclasses.replace(large, graph_config=dataclasses.replace(large.graph_config, max_neighbors=12))
    with pytest.raises(CheckpointError, match="edges"):
        make_ensemble([small, capped])


def test_weighted_members_give_the_weighted_mean_and_spread(members, tmp_path):
    """Unequal weights change the mean, the spread and the attention; they survive saving
    (format 4), nesting and member(); equal weights are the plain mean (format unchanged)."""
    checkpoints = [load_checkpoint(p) for p in members]
    with pytest.raises(CheckpointError, match="positive weights"):
        make_ensemble(checkpoints, weights=[1.0, -1.0, 1.0])
    equal = make_ensemble(checkpoints, weights=[2.0, 2.0, 2.0])
    assert equal.member_weights == () and equal.format_version == 2
    weighted = make_ensemble(checkpoints, weights=[1.0, 1.0, 2.0])
    path = save_checkpoint(weighted, tmp_path / "weighted.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 4 and raw["member_weights"] == [1.0, 1.0, 2.0]
    loaded = load_checkpoint(path)
    np.testing.assert_allclose(loaded.spectrum_weights, [0.25, 0.25, 0.5])
    assert loaded.member(2).member_weights == ()
    structure, sites = cuprite(), [0, 1]
    singles = [load_model(str(p), device="cpu").predict(structure, sites) for p in members]
    out = load_model(str(path), device="cpu").predict(structure, sites)
    stacked = np.stack([s.mu for s in singles])
    w = np.array([0.25, 0.25, 0.5])[:, None, None]
    mean = (w * stacked).sum(0)
    np.testing.assert_allclose(out.mu, mean, atol=1e-6)
    np.testing.assert_allclose(out.mu_spread, np.sqrt((w * (stacked - mean) ** 2).sum(0)), atol=1e-6)
    assert np.abs(out.mu - stacked.mean(0)).max() > 1e-6
    attention = np.stack([[a.weight for a in s.attention] for s in singles])
    np.testing.assert_allclose([a.weight for a in out.attention],
                               (np.array([0.25, 0.25, 0.5])[:, None, None] * attention).sum(0), atol=1e-6)
    # Joining a weighted ensemble keeps its members' weights relative to each other.
    nested = make_ensemble([loaded, load_checkpoint(members[0])])
    np.testing.assert_allclose(nested.spectrum_weights, np.array([1, 1, 2, 1]) / 5)
