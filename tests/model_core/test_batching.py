"""Tests of collating absorber graphs into torch-geometric batches."""

from __future__ import annotations

import numpy as np
import torch

from model_core.batching import collate, graph_to_data
from model_core.config import GraphConfig
from model_core.graph import build_graph, build_graphs
from model_core.types import Structure

CONFIG = GraphConfig(r_crop=5.0, r_max=4.0)


def crystal() -> Structure:
    rng = np.random.default_rng(11)
    cell = np.array([[4.3, 0.0, 0.0], [0.4, 3.9, 0.0], [0.2, -0.5, 4.6]])
    return Structure([26, 8, 8, 8], rng.random((4, 3)) @ cell, cell=cell, pbc=(True, True, True))


def cluster() -> Structure:
    rng = np.random.default_rng(12)
    return Structure([29, 8, 8, 1, 1, 6], rng.random((6, 3)) * 4.0)


def three_graphs():
    return build_graphs(crystal(), [0, 2], CONFIG) + [build_graph(cluster(), 0, CONFIG)]


def test_graph_to_data_fields():
    graph = three_graphs()[0]
    data = graph_to_data(graph, dtype=torch.float64)
    assert data.num_nodes == graph.n_nodes
    np.testing.assert_array_equal(data.z.numpy(), graph.atomic_numbers)
    np.testing.assert_array_equal(data.pos.numpy(), graph.positions)
    np.testing.assert_array_equal(data.edge_index.numpy(), graph.edge_index)
    np.testing.assert_array_equal(data.edge_vec.numpy(), graph.edge_vectors)
    assert data.absorber_mask.dtype == torch.bool


def test_collate_offsets_and_absorbers():
    graphs = three_graphs()
    batch = collate(graphs, dtype=torch.float64)
    sizes = [g.n_nodes for g in graphs]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    assert batch.num_graphs == 3
    assert batch.num_nodes == sum(sizes)
    assert batch.edge_index.shape == (2, sum(g.n_edges for g in graphs))
    np.testing.assert_array_equal(batch.batch.numpy(), np.repeat(np.arange(3), sizes))
    # One absorber per graph, at the first node of each graph.
    counts = torch.zeros(3, dtype=torch.long).index_add_(0, batch.batch, batch.absorber_mask.long())
    assert counts.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(np.flatnonzero(batch.absorber_mask.numpy()), offsets)
    # Edge indices are shifted by each graph's node offset and stay inside their graph.
    start = 0
    for graph, offset in zip(graphs, offsets):
        block = batch.edge_index[:, start:start + graph.n_edges].numpy()
        np.testing.assert_array_equal(block, graph.edge_index + offset)
        start += graph.n_edges
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])
    torch.testing.assert_close(batch.edge_vec, batch.pos[dst] - batch.pos[src], atol=1e-12, rtol=0)
    np.testing.assert_array_equal(batch.z.numpy(), np.concatenate([g.atomic_numbers for g in graphs]))


def test_collate_default_float32():
    batch = collate(three_graphs())
    assert batch.pos.dtype == torch.float32 and batch.edge_vec.dtype == torch.float32
    assert batch.z.dtype == torch.long
