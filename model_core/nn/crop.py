"""Model-side crop: the sub-graph of the nodes within a member's own crop radius.

An absorber-centred graph (``model_core.graph``) holds every atom within ``r_crop`` of
the absorber, which sits at the origin, and every ordered pair of nodes closer than
``r_max``. The graph cut at a smaller radius r is therefore exactly its nodes with
|pos| < r and the edges among them, in the same order. That lets one ensemble mix
members trained on different crops (FEFF's self-consistent potential, for example,
reaches farther than its near-edge spectrum needs): the ensemble builds graphs at its
largest crop and each member keeps its own (``ModelConfig.r_crop``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Slack on the radius (Å): float32 positions reproduce a float64 distance to ~1e-6 Å, and an
# atom exactly on the sphere is kept, as the graph builder keeps it.
CROP_TOL = 1e-4


@dataclass(frozen=True)
class CroppedGraph:
    """The tensors of a batch the network reads, cut to ``keep``.

    Shapes: N' kept nodes of N, E' kept edges.
    z (N',), edge_index (2, E') renumbered, edge_vec (E', 3), absorber_mask (N',),
    node_batch (N',), keep (N,) bool (None when nothing was dropped).
    """

    z: torch.Tensor
    edge_index: torch.Tensor
    edge_vec: torch.Tensor
    absorber_mask: torch.Tensor
    node_batch: torch.Tensor
    keep: torch.Tensor | None

    def expand(self, per_node: torch.Tensor) -> torch.Tensor:
        """(N',) per-node values back on all N nodes, zero on dropped ones (e.g. attention)."""
        if self.keep is None:
            return per_node
        full = per_node.new_zeros(self.keep.shape[0])
        full[self.keep] = per_node
        return full


def crop_graph(pos: torch.Tensor | None, z: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
               absorber_mask: torch.Tensor, node_batch: torch.Tensor, r_crop: float) -> CroppedGraph:
    """Keep the nodes within ``r_crop`` Å of their absorber (at the origin) and their edges.

    Args:
        pos: (N, 3) positions with each graph's absorber at the origin (needed when
            ``r_crop`` > 0).
        r_crop: the crop radius in Å; 0 keeps every node.

    Raises:
        ValueError: ``r_crop`` > 0 but the batch has no positions.
    """
    if r_crop <= 0:
        return CroppedGraph(z, edge_index, edge_vec, absorber_mask, node_batch, None)
    if pos is None:
        raise ValueError("model.r_crop needs node positions (batch.pos) to crop the graph")
    keep = (pos.detach().norm(dim=-1) < r_crop + CROP_TOL) | absorber_mask  # (N,)
    if bool(keep.all()):
        return CroppedGraph(z, edge_index, edge_vec, absorber_mask, node_batch, None)
    new_index = torch.full_like(z, -1)
    new_index[keep] = torch.arange(int(keep.sum()), device=z.device, dtype=z.dtype)
    edge_keep = keep[edge_index[0]] & keep[edge_index[1]]  # (E,)
    return CroppedGraph(z=z[keep], edge_index=new_index[edge_index[:, edge_keep]], edge_vec=edge_vec[edge_keep],
                        absorber_mask=absorber_mask[keep], node_batch=node_batch[keep], keep=keep)
