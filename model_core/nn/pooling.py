"""Absorber-centred readout pooling of XANE(3).

Paper component ("Readout"): the absorber's scalars (mean over the absorber nodes of
a graph) query every other atom: ``score_j = MLP([s_a | s_j])``; absorbers are masked
out; a softmax over the graph's non-absorber atoms gives weights ``alpha_j``; the
context is ``sum_j alpha_j s_j``. The readout vector is
``[s_a | context | |absorber l=1 channels| | |absorber l=2 channels|]``, which is
invariant under O(3) (scalars and channel norms only). Mean pooling over the
non-absorber atoms is the ablation alternative.

Shapes: N nodes, B graphs, C scalar channels.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn
from torch_geometric.utils import scatter, softmax

# Added under the square root of channel norms so their gradient stays finite at 0.
NORM_EPS = 1e-12


class AbsorberPooling(nn.Module):
    """Absorber scalars, attention (or mean) context and absorber channel norms.

    Args:
        irreps_in: irreps of the final node features (scalars first, then l > 0).
        attention_hidden: hidden width of the scoring MLP.
        mode: "attention" (paper) or "mean".

    Attributes:
        irreps_in: node-feature irreps.
        irreps_out: ``(2C + V + T)x0e``: the readout vector is invariant.
        out_dim: length F of the readout vector.
    """

    def __init__(self, irreps_in: o3.Irreps | str, attention_hidden: int = 64, mode: str = "attention") -> None:
        super().__init__()
        if mode not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {mode!r}")
        self.irreps_in = o3.Irreps(irreps_in)
        self.mode = mode
        self.num_scalars = sum(mul for mul, ir in self.irreps_in if ir.l == 0)
        if self.irreps_in[0][1].l != 0 or self.num_scalars != self.irreps_in[0][0]:
            raise ValueError(f"irreps_in must start with all its scalars, got {self.irreps_in}")
        # (start, mul, dim) of each l > 0 entry whose channel norms are read out.
        self._norm_slices: list[tuple[int, int, int]] = []
        start = 0
        for mul, ir in self.irreps_in:
            if ir.l > 0 and mul > 0:
                self._norm_slices.append((start, mul, ir.dim))
            start += mul * ir.dim
        c = self.num_scalars
        self.out_dim = 2 * c + sum(mul for _, mul, _ in self._norm_slices)
        self.irreps_out = o3.Irreps([(self.out_dim, (0, 1))])
        if mode == "attention":
            self.score_mlp = nn.Sequential(nn.Linear(2 * c, attention_hidden), nn.SiLU(),
                                           nn.Linear(attention_hidden, 1))
        else:
            self.score_mlp = None

    def forward(self, x: torch.Tensor, absorber_mask: torch.Tensor, batch: torch.Tensor,
                num_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool node features into one invariant vector per graph.

        Args:
            x: (N, irreps_in.dim) final node features.
            absorber_mask: (N,) bool, True on absorbers.
            batch: (N,) graph index of each node.
            num_graphs: B.

        Returns:
            ``(readout (B, F), attention (N,))``; attention weights sum to 1 over the
            non-absorber nodes of each graph, are 0 on absorbers, and all 0 in a graph
            without non-absorber nodes (whose context is then 0).
        """
        c = self.num_scalars
        scalars = x[:, :c]  # (N, C)
        absorber_mask = absorber_mask.to(torch.bool)
        abs_batch = batch[absorber_mask]  # (A,)
        # s_a: mean over each graph's absorbers, (B, C); zeros if a graph has none.
        s_abs = scatter(scalars[absorber_mask], abs_batch, dim=0, dim_size=num_graphs, reduce="mean")

        others = ~absorber_mask
        other_batch = batch[others]  # (M,)
        s_other = scalars[others]  # (M, C)
        if self.score_mlp is not None:
            score = self.score_mlp(torch.cat([s_abs.index_select(0, other_batch), s_other], dim=1))  # (M, 1)
            alpha_other = softmax(score.squeeze(-1), other_batch, num_nodes=num_graphs)  # (M,)
        else:
            count = scatter(torch.ones_like(other_batch, dtype=x.dtype), other_batch, dim=0,
                            dim_size=num_graphs, reduce="sum")  # (B,)
            alpha_other = 1.0 / count.clamp_min(1.0).index_select(0, other_batch)  # (M,)
        context = scatter(alpha_other.unsqueeze(-1) * s_other, other_batch, dim=0,
                          dim_size=num_graphs, reduce="sum")  # (B, C)
        attention = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        attention = attention.masked_scatter(others, alpha_other)  # (N,), 0 on absorbers

        parts = [s_abs, context]
        if self._norm_slices:
            x_abs = x[absorber_mask]  # (A, dim)
            norms = []
            for start, mul, dim in self._norm_slices:
                block = x_abs[:, start:start + mul * dim].reshape(-1, mul, dim)  # (A, mul, 2l+1)
                norms.append(torch.sqrt(block.pow(2).sum(-1) + NORM_EPS))  # (A, mul)
            parts.append(scatter(torch.cat(norms, dim=1), abs_batch, dim=0, dim_size=num_graphs,
                                 reduce="mean"))  # (B, V + T)
        return torch.cat(parts, dim=1), attention
