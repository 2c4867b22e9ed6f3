import numpy as np
import pytest
import torch

from model_core.checkpoint import CheckpointError, load_checkpoint
from model_core.inference import ElementMismatchError, ModelLoadError, load_model
from model_core.types import SiteSelection

from tests.model_core.helpers import TINY_MODEL, cuprite, tiny_checkpoint


@pytest.fixture()
def model_path(tmp_path):
    return tiny_checkpoint(tmp_path / "tiny.pt")


def test_checkpoint_loads_with_weights_only(model_path):
    raw = torch.load(model_path, weights_only=True)
    assert raw["format_version"] == 1 and raw["element"] == "Cu"
    assert set(raw) >= {"model_config", "state_dict", "energy_grid_ev", "normalization",
                        "train_mean_spectrum", "provenance", "metrics", "library_versions"}
    assert load_checkpoint(model_path).model_config == TINY_MODEL


def test_bad_checkpoint_paths(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)
    with pytest.raises(ModelLoadError, match="no model named"):
        load_model("no-such-model")


def test_predict_shapes_average_and_determinism(model_path):
    predictor = load_model(str(model_path), device="cpu")
    structure = cuprite()
    result = predictor.predict(structure, SiteSelection(np.array([0, 1]), np.array([3.0, 1.0])))
    assert result.mu.shape == (2, TINY_MODEL.grid.n_points)
    np.testing.assert_allclose(result.average, (3 * result.mu[0] + result.mu[1]) / 4)
    again = predictor.predict(structure, [0, 1])
    np.testing.assert_array_equal(result.mu, again.mu)
    assert result.e0_ev is not None and result.e0_ev.shape == (2,)
    # Equivalent Cu sites see the same environment.
    np.testing.assert_allclose(result.mu[0], result.mu[1], atol=1e-5)
    att = result.attention[0]
    assert att.weight.sum() == pytest.approx(1.0, abs=1e-5)
    assert att.weight[0] == 0.0 and att.atom_index[0] == 0
    assert att.per_atom(structure.n_atoms).shape == (structure.n_atoms,)


def test_batched_equals_single(model_path):
    predictor = load_model(str(model_path), device="cpu", batch_size=2)
    structure = cuprite()
    together = predictor.predict(structure, [0, 1, 2, 3])
    for k, site in enumerate([0, 1, 2, 3]):
        alone = predictor.predict(structure, [site])
        np.testing.assert_allclose(together.mu[k], alone.mu[0], atol=1e-5)


def test_progress_and_cancel(model_path):
    predictor = load_model(str(model_path), device="cpu", batch_size=1)
    calls = []
    predictor.predict(cuprite(), [0, 1, 2], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        predictor.predict(cuprite(), [0, 1, 2], progress=cancel)


def test_wrong_element_and_bad_sites(model_path):
    predictor = load_model(str(model_path), device="cpu")
    with pytest.raises(ElementMismatchError, match="O"):
        predictor.predict(cuprite(), [4])
    with pytest.raises(IndexError, match="out of range"):
        predictor.predict(cuprite(), [99])


def test_untrained_checkpoint_is_labelled(tmp_path):
    path = tiny_checkpoint(tmp_path / "untrained.pt", trained=False)
    predictor = load_model(str(path), device="cpu")
    assert predictor.info.trained is False
    assert predictor.predict(cuprite(), [0]).trained is False


def test_save_load_identity(tmp_path, model_path):
    from model_core.checkpoint import save_checkpoint

    first = load_model(str(model_path), device="cpu").predict(cuprite(), [0])
    copy = save_checkpoint(load_checkpoint(model_path), tmp_path / "copy.pt")
    second = load_model(str(copy), device="cpu").predict(cuprite(), [0])
    np.testing.assert_array_equal(first.mu, second.mu)


def test_unavailable_device_is_a_clear_error(model_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ModelLoadError, match="not available"):
        load_model(str(model_path), device="cuda")


def test_elements_beyond_the_embedding_are_a_clear_error(model_path):
    structure = cuprite()
    heavy = structure.replace(atomic_numbers=[29, 29, 29, 29, 8, 103], source="lr.cif")
    with pytest.raises(ValueError, match="lr.cif.*Lr"):
        load_model(str(model_path), device="cpu").predict(heavy, [0])


def test_translation_equivalent_sites_share_one_forward_pass(model_path):
    from model_core.types import Structure

    base = cuprite()
    shift = base.cell[0]
    supercell = Structure(atomic_numbers=np.tile(base.atomic_numbers, 2),
                          positions=np.vstack([base.positions, base.positions + shift]),
                          cell=base.cell * np.array([[2.0], [1.0], [1.0]]), pbc=(True, True, True))
    cu_sites = [i for i in range(supercell.n_atoms) if supercell.atomic_numbers[i] == 29]
    predictor = load_model(str(model_path), device="cpu", batch_size=64)
    calls = []
    result = predictor.predict(supercell, cu_sites, progress=lambda done, total: calls.append(total))
    assert calls == [4]  # 8 Cu sites, 4 distinct environments
    for k, site in enumerate(cu_sites):
        alone = predictor.predict(supercell, [site])
        np.testing.assert_allclose(result.mu[k], alone.mu[0], atol=1e-6)
        np.testing.assert_allclose(result.e0_ev[k], alone.e0_ev[0], atol=1e-6)
        assert result.attention[k].atom_index[0] == site
        np.testing.assert_allclose(result.attention[k].per_atom(supercell.n_atoms),
                                   alone.attention[0].per_atom(supercell.n_atoms), atol=1e-6)


def test_distinct_graphs_match_nodes_in_any_order():
    import dataclasses

    from model_core.config import GraphConfig
    from model_core.graph import build_graph
    from model_core.inference import _distinct_graphs

    graph = build_graph(cuprite(), 0, GraphConfig())
    order = np.concatenate([[0], np.arange(1, graph.n_nodes)[::-1]])
    inverse = np.argsort(order)
    shuffled = dataclasses.replace(
        graph, atomic_numbers=graph.atomic_numbers[order], positions=graph.positions[order] + 1e-9,
        atom_index=graph.atom_index[order], image=graph.image[order], edge_index=inverse[graph.edge_index])
    moved = dataclasses.replace(graph, positions=graph.positions * 1.001)
    unique, slot, correspondence = _distinct_graphs([graph, shuffled, moved])
    assert len(unique) == 2 and list(slot) == [0, 0, 1]
    np.testing.assert_array_equal(correspondence[1], order)
