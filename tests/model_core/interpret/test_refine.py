"""Refining the local structure: shells, first shell, and a known distortion recovered."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.graph import build_graph
from model_core.interpret.calibration import Calibration
from model_core.interpret.refine import find_shells, first_shell_mask, refine_structure
from model_core.types import Structure
from tests.model_core.helpers import cuprite
from tests.model_core.interpret.conftest import synthetic_measured


def test_shells_split_at_gaps() -> None:
    d = np.array([3.0, 1.9, 1.95, 3.1, 3.6, 1.92])
    assert find_shells(d).tolist() == [2, 1, 1, 2, 3, 1]
    assert first_shell_mask(np.array([1.9, 2.1, 2.3])).tolist() == [True, True, False]


def test_known_first_shell_distortion_is_recovered(cu_model) -> None:
    graph = build_graph(cuprite(), 0, cu_model.checkpoint.graph_config)
    distance = np.linalg.norm(graph.positions, axis=1)
    shell = np.concatenate([[0], find_shells(distance[1:])])
    cluster = Structure(atomic_numbers=graph.atomic_numbers, positions=graph.positions, name="Cu2O cluster")
    distorted = np.array(graph.positions)
    distorted[shell == 1] *= 1.03
    truth = cu_model.predict(cluster.replace(positions=distorted), [0]).average_spectrum()
    energy, mu = synthetic_measured(truth.energy_ev, truth.mu, truth.e0_ev, gaussian_ev=1.5, noise=0.002)
    result = refine_structure(cu_model, cluster, [0], [1.0], energy, mu, Calibration("Cu"), element="Cu",
                              params=("shells",), max_shells=2)
    assert result.parameters["shell_1_scale"] == pytest.approx(1.03, abs=0.01)
    first = result.first_shell
    assert first["start_a"] == pytest.approx(distance[shell == 1].mean())
    assert first["distance_a"] == pytest.approx(1.03 * first["start_a"], abs=0.02)
    assert 0 < first["stderr_a"] < 0.02 and first["n_atoms"] == 2
    assert result.metrics_end["mse"] < result.metrics_start["mse"]
    assert np.isfinite(result.stderr["shell_1_scale"])
    # The molecule comes back with its first shell moved out.
    moved = np.linalg.norm(result.structure.positions[1:3] - result.structure.positions[0], axis=1)
    assert moved == pytest.approx(np.full(2, first["distance_a"]), abs=1e-6)
    summary = result.to_dict()
    assert set(summary) >= {"first_shell", "parameters", "metrics_start", "metrics_end"}
    assert set(summary["parameters"]["shell_1_scale"]) >= {"value", "stderr"}


def test_strain_needs_a_crystal(cu_model) -> None:
    molecule = Structure(atomic_numbers=[29, 8], positions=[[0, 0, 0], [1.9, 0, 0]])
    with pytest.raises(ValueError, match="crystal"):
        refine_structure(cu_model, molecule, [0], [1.0], np.linspace(8970, 9080, 300), np.ones(300),
                         Calibration("Cu"), element="Cu", params=("strain",))
