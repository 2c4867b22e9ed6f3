"""Refined candidates of ``invert`` / ``xanes-invert``: the best candidates refined against the input.

A retrieval-only tiny bundle (the planted tetrahedral CuO4 clusters) with the shipped
forward model cu-k-feff; the input is the planted CN-4 spectrum. Each refinement is
~1.5 s on one thread (the tiny graphs run far slower with more threads on a busy machine).
"""

from __future__ import annotations

import io
import json
from contextlib import contextmanager, redirect_stdout

import numpy as np
import pytest
import torch

from model_core.cli.invert import main
from model_core.inverse.api import cluster_structure, invert, load_inverse
from model_core.inverse.clusters import ClusterSet
from model_core.inverse.refined import refine_cluster
from model_core.inverse.roundtrip import predict_clusters
from tests.model_core.inverse.helpers import GRID_EV, TETRAHEDRAL, planted_clusters, planted_spectrum, write_bundle
from tests.model_core.inverse.test_parts import _write_xmu

#: Refinement minimises its own fit (shift, scale and broadening), not the round trip's
#: (shift on a 0.1 eV grid and scale): the round-trip MSE of a refined cluster may differ
#: from the start's by float32 model noise even where the refinement barely moves it.
ROUNDTRIP_RTOL = 1e-6


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_thread():
    with _one_thread():
        yield


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("models") / "tiny-retrieval")


@pytest.fixture(scope="module")
def model(bundle):
    return load_inverse(str(bundle), element="Cu")


def test_refined_candidates_join_the_ranking_and_fit_no_worse(model):
    # The forward model's own spectrum of the best retrieved cluster with its first shell 4%
    # longer: a target the radial refinement can reach whatever the shipped weights are.
    first = invert(planted_spectrum(1), "Cu", 0, n_retrieval=1, n_refine=0, model=model)[0]
    mu = predict_clusters(model.forward, [cluster_structure(first.atomic_numbers, 1.04 * first.positions_a)])[0]
    plain = invert(mu, "Cu", 0, n_retrieval=2, n_refine=0, model=model)
    candidates = invert(mu, "Cu", 0, n_retrieval=2, n_refine=1, model=model)
    assert [c.method for c in plain] == ["retrieval", "retrieval"]
    refined = [c for c in candidates if c.method == "refined"]
    assert len(refined) == 1 and len(candidates) == 3
    (new,) = refined
    start = plain[0]
    assert new.refined_from == "retrieval" and new.source_id == start.source_id
    assert np.isfinite(new.roundtrip_mse) and new.roundtrip_mse < start.roundtrip_mse
    # The shells moved radially: same atoms, same directions, another first-shell distance.
    np.testing.assert_array_equal(new.atomic_numbers, start.atomic_numbers)
    np.testing.assert_array_equal(new.positions_a[0], 0.0)
    unit = lambda p: p[1:] / np.linalg.norm(p[1:], axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(unit(new.positions_a), unit(start.positions_a), atol=1e-5)
    assert new.first_shell_distance_a != pytest.approx(start.first_shell_distance_a, abs=1e-4)
    assert new.coordination_number == start.coordination_number and dict(new.neighbours) == dict(start.neighbours)
    # The round trip is the same as every other candidate's: the ranking is one sorted list,
    # and the candidates that were there before are unchanged.
    assert [c.roundtrip_mse for c in candidates] == sorted(c.roundtrip_mse for c in candidates)
    assert [(c.source_id, c.roundtrip_mse) for c in candidates if c.method != "refined"] == \
        [(c.source_id, c.roundtrip_mse) for c in plain]


def test_a_cluster_the_refinement_cannot_move_adds_no_candidate(model, tmp_path):
    far = np.vstack([[0.0, 0.0, 0.0], 3.5 * TETRAHEDRAL])  # 7 Å: beyond the 6 Å crop of cu-k-feff
    assert refine_cluster(model.forward, np.r_[29, [8] * 4], far, GRID_EV, planted_spectrum(1), "Cu") is None
    clusters = planted_clusters(4)
    far_library = ClusterSet(clusters.ids, clusters.energy_ev, clusters.mu, clusters.z, 3.5 * clusters.pos, 16.0)
    far_model = load_inverse(str(write_bundle(tmp_path / "far", clusters=far_library)), element="Cu",
                             forward=model.forward)
    candidates = invert(planted_spectrum(1), "Cu", 0, n_retrieval=2, n_refine=2, model=far_model)
    assert [c.method for c in candidates] == ["retrieval", "retrieval"]


@pytest.fixture(scope="module")
def cli_runs(bundle, tmp_path_factory):
    """JSON of ``--refine 1 --out DIR`` and of ``--refine 0`` on the planted CN-4 xmu.dat."""
    tmp = tmp_path_factory.mktemp("cli")
    xmu = _write_xmu(tmp / "xmu.dat")
    out = {}
    for k in (1, 0):
        argv = [str(xmu), "--element", "Cu", "--model", str(bundle), "--samples", "0", "--retrieval", "2",
                "--refine", str(k), "--json"] + (["--out", str(tmp / "xyz")] if k else [])
        buffer = io.StringIO()
        with _one_thread(), redirect_stdout(buffer):
            assert main(argv) == 0
        out[k] = json.loads(buffer.getvalue())
    return out


def test_cli_refined_samples_keep_the_json_contract(cli_runs):
    samples = cli_runs[1]["samples"]
    assert [s["roundtrip_mse"] for s in samples] == sorted(s["roundtrip_mse"] for s in samples)
    (refined,) = [s for s in samples if s["method"] == "refined"]
    assert {"method", "coordination_number", "first_shell_distance_a", "neighbours", "roundtrip_mse",
            "xyz"} <= set(refined)
    assert isinstance(refined["coordination_number"], int) and refined["neighbours"] == {"O": 4}
    assert refined["refined_from"] == "retrieval" and refined["source_id"].startswith("site-")
    start = next(s for s in samples if s["method"] == "retrieval" and s["source_id"] == refined["source_id"])
    assert refined["roundtrip_mse"] <= start["roundtrip_mse"] * (1 + ROUNDTRIP_RTOL)
    lines = open(refined["xyz"]).read().splitlines()
    assert int(lines[0]) == refined["n_atoms"] and "refined_from=retrieval" in lines[1]
    assert refined["xyz"].endswith("_refined.xyz") and lines[2].split()[0] == "Cu"
    assert all("refined_from" not in s for s in samples if s["method"] != "refined")


def test_cli_refine_0_gives_the_output_without_refinement(cli_runs):
    plain = cli_runs[0]["samples"]
    assert {s["method"] for s in plain} == {"retrieval"} and len(plain) == 2
    strip = lambda s: {k: v for k, v in s.items() if k != "xyz"}  # noqa: E731
    assert [strip(s) for s in cli_runs[1]["samples"] if s["method"] != "refined"] == plain
