"""Collate :class:`~model_core.graph.AbsorberGraph` objects into torch-geometric batches.

Batch fields (N nodes, E edges, B graphs):
    z: (N,) long atomic numbers.
    pos: (N, 3) float positions, Å (absorber of each graph at the origin).
    edge_index: (2, E) long (source, target), offsets applied per graph.
    edge_vec: (E, 3) float displacement ``pos[target] - pos[source]``, Å.
    absorber_mask: (N,) bool.
    batch: (N,) long graph index of each node.
    num_graphs: B.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from model_core.graph import AbsorberGraph


def graph_to_data(graph: AbsorberGraph, dtype: torch.dtype = torch.float32) -> Data:
    """One graph as a torch-geometric ``Data`` (no batch offsets yet)."""
    return Data(
        z=torch.as_tensor(np.asarray(graph.atomic_numbers), dtype=torch.long),
        pos=torch.as_tensor(np.asarray(graph.positions), dtype=dtype),
        edge_index=torch.as_tensor(np.asarray(graph.edge_index), dtype=torch.long),
        edge_vec=torch.as_tensor(np.asarray(graph.edge_vectors), dtype=dtype),
        absorber_mask=torch.as_tensor(np.asarray(graph.absorber_mask), dtype=torch.bool),
        num_nodes=graph.n_nodes,
    )


def collate(graphs: Sequence[AbsorberGraph | Data], dtype: torch.dtype = torch.float32) -> Batch:
    """Batch graphs (or ready ``Data`` objects) into one disconnected graph."""
    data = [g if isinstance(g, Data) else graph_to_data(g, dtype) for g in graphs]
    return Batch.from_data_list(data)
