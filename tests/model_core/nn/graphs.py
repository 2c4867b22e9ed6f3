"""Random small absorber-centred graphs (float64) for the model tests."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from model_core.config import EnergyGrid, ModelConfig

# A small, fast configuration that still has every component (l = 0, 1, 2).
TINY = ModelConfig(scalar_channels=8, vector_channels=4, tensor_channels=2, num_blocks=2,
                   num_radial=6, radial_hidden=16, attention_hidden=16, readout_hidden=(32,),
                   basis_per_scale=8, dropout=0.0, max_z=30,
                   grid=EnergyGrid(e_min_ev=-10.0, e_max_ev=30.0, n_points=41))


def random_graph(seed: int, n_nodes: int = 9, r_max: float = 5.0, radius: float = 3.5,
                 absorbers: int = 1) -> Data:
    """Random cluster: absorber(s) first, all pairs closer than r_max joined."""
    gen = torch.Generator().manual_seed(seed)
    pos = (torch.rand(n_nodes, 3, generator=gen, dtype=torch.float64) * 2 - 1) * radius
    pos[0] = 0.0
    z = torch.randint(1, 30, (n_nodes,), generator=gen)
    mask = torch.zeros(n_nodes, dtype=torch.bool)
    mask[:absorbers] = True
    dist = torch.cdist(pos, pos)
    src, dst = torch.nonzero((dist < r_max) & (dist > 0), as_tuple=True)
    edge_index = torch.stack([src, dst])
    return Data(z=z, pos=pos, edge_index=edge_index, edge_vec=pos[dst] - pos[src],
                absorber_mask=mask, num_nodes=n_nodes)


def batch_of(graphs: list[Data]) -> Batch:
    return Batch.from_data_list(graphs)


def transformed(graph: Data, rotation: torch.Tensor | None = None,
                shift: torch.Tensor | None = None) -> Data:
    """The same graph rotated (pos and edge_vec) and/or translated (pos only)."""
    pos, vec = graph.pos, graph.edge_vec
    if rotation is not None:
        pos, vec = pos @ rotation.T, vec @ rotation.T
    if shift is not None:
        pos = pos + shift
    return Data(z=graph.z, pos=pos, edge_index=graph.edge_index, edge_vec=vec,
                absorber_mask=graph.absorber_mask, num_nodes=graph.num_nodes)


def permuted(graph: Data, perm: torch.Tensor, edge_perm: torch.Tensor) -> Data:
    """Nodes reordered (new node k = old node perm[k]) and edges reordered."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    edge_index = inverse[graph.edge_index][:, edge_perm]
    return Data(z=graph.z[perm], pos=graph.pos[perm], edge_index=edge_index,
                edge_vec=graph.edge_vec[edge_perm], absorber_mask=graph.absorber_mask[perm],
                num_nodes=graph.num_nodes)
