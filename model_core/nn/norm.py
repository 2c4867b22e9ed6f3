"""Equivariant layer normalisation of XANE(3) node features.

Paper component ("Equivariant layer norm after aggregation"): the l = 0 channels get
an ordinary LayerNorm with learnable scale and shift; every l > 0 group is divided by
its root mean square over channels and components jointly (no centring, which would
break equivariance), then multiplied by a learnable per-channel scale (no bias).
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn


class EquivariantLayerNorm(nn.Module):
    """Layer norm acting on a direct sum of irreps.

    All ``0e`` / ``0o`` entries are normalised together as one LayerNorm block (for
    ``0o`` a shift would break parity, so pseudo-scalars are only rescaled like l > 0).
    Every l > 0 entry ``mul x l`` of the irreps is normalised by
    ``sqrt(mean over mul * (2l + 1) values of x^2 + eps)``.

    Args:
        irreps: the irreps of the features (any order; entries need not be merged).
        eps: added to the variance / mean square.

    Attributes:
        irreps_in / irreps_out: the same irreps.
    """

    def __init__(self, irreps: o3.Irreps | str, eps: float = 1e-5) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps)
        self.irreps_out = self.irreps_in
        self.eps = float(eps)
        # One entry per irreps entry: ("scalar", start, stop) or ("rms", start, stop, mul, dim).
        self._layout: list[tuple] = []
        scalar_idx: list[int] = []
        num_rms = 0
        start = 0
        for mul, ir in self.irreps_in:
            stop = start + mul * ir.dim
            if mul == 0:
                pass
            elif ir.l == 0 and ir.p == 1:
                self._layout.append(("scalar", len(scalar_idx), len(scalar_idx) + mul))
                scalar_idx.extend(range(start, stop))
            else:
                self._layout.append(("rms", start, stop, mul, ir.dim, num_rms))
                num_rms += 1
            start = stop
        self.num_scalars = len(scalar_idx)
        self.register_buffer("scalar_index", torch.tensor(scalar_idx, dtype=torch.long), persistent=False)
        self.scalar_norm = nn.LayerNorm(self.num_scalars, eps=self.eps) if self.num_scalars else None
        self.rms_scales = nn.ParameterList(
            [nn.Parameter(torch.ones(entry[3])) for entry in self._layout if entry[0] == "rms"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, irreps.dim) -> (N, irreps.dim), normalised per node."""
        scalars = None
        if self.scalar_norm is not None:
            scalars = self.scalar_norm(x.index_select(1, self.scalar_index))  # (N, S)
        parts = []
        for entry in self._layout:
            if entry[0] == "scalar":
                parts.append(scalars[:, entry[1]:entry[2]])
            else:
                _, start, stop, mul, dim, k = entry
                block = x[:, start:stop].reshape(-1, mul, dim)  # (N, mul, 2l+1)
                inv_rms = torch.rsqrt(block.pow(2).mean(dim=(1, 2), keepdim=True) + self.eps)  # (N, 1, 1)
                scale = self.rms_scales[k].view(1, mul, 1)
                parts.append((block * inv_rms * scale).reshape(-1, mul * dim))
        if not parts:
            return x
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
