"""predict_distorted: the refinement's forward pass as a preview."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.graph import build_graph
from model_core.interpret.refine import find_shells, predict_distorted
from model_core.types import Structure
from tests.model_core.helpers import cuprite


def test_undistorted_matches_the_prediction_and_a_scaled_shell_matches_the_moved_cluster(cu_model) -> None:
    graph = build_graph(cuprite(), 0, cu_model.checkpoint.graph_config)
    distance = np.linalg.norm(graph.positions, axis=1)
    shell = np.concatenate([[0], find_shells(distance[1:])])
    cluster = Structure(atomic_numbers=graph.atomic_numbers, positions=graph.positions, name="Cu2O cluster")
    plain = predict_distorted(cu_model, cluster, [0], [1.0])
    assert plain.energy_reference == "edge"
    assert np.allclose(plain.mu, cu_model.predict(cluster, [0]).average, atol=1e-4)
    assert plain.metadata["shells"][0]["shell"] == 1
    moved = np.array(graph.positions)
    moved[shell == 1] *= 1.05
    scaled = predict_distorted(cu_model, cluster, [0], [1.0], [1.05])
    assert np.allclose(scaled.mu, cu_model.predict(cluster.replace(positions=moved), [0]).average, atol=1e-4)
    assert not np.allclose(scaled.mu, plain.mu, atol=1e-4)
    assert scaled.metadata["shells"][0]["distance_a"] == pytest.approx(1.05 * distance[shell == 1].mean())
    with pytest.raises(ValueError, match="crystal"):
        predict_distorted(cu_model, cluster, [0], [1.0], strain=0.01)
