"""The XANE(3) interaction block (one round of equivariant message passing).

Paper components (Grizzi et al., arXiv 2604.12140, "Model"):

1. Message: tensor product of the sender's features with the spherical harmonics
   Y(x_ij) of the edge, weighted per edge by an MLP of the radial basis times the
   cosine cutoff (so that messages vanish smoothly at r_max).
2. Mean aggregation over each node's incoming edges.
3. Linear mixing of the aggregate plus a self-connection of the node's own features
   (the receiver's species only enters through this term).
4. Equivariant layer norm.
5. Gated nonlinearity: SiLU on scalars, sigmoid gates on l > 0.
6. Adaptive gated residual ``h' = g * W_sc h + (1 - g) * m`` with
   ``g = sigmoid(Linear([scalars(h) | scalars(m)]))``, one gate per channel of every
   irrep broadcast over its 2l + 1 components.

Shapes: N nodes, E edges, R radial functions; feature tensors are (N, irreps.dim)
in e3nn's layout (channels of an irrep contiguous, components fastest).
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn
from torch_geometric.utils import scatter

from model_core.config import ModelConfig
from model_core.nn.norm import EquivariantLayerNorm

_PARITY = {0: 1, 1: -1, 2: 1}  # parity of the hidden irrep of each degree: 0e, 1o, 2e


def hidden_irreps(config: ModelConfig) -> o3.Irreps:
    """Hidden irreps ``Cx0e + Vx1o + Tx2e`` of the interaction blocks.

    Terms with l > ``l_max`` or zero channels are dropped; ``l_max = 0`` keeps
    only ``Cx0e``.
    """
    muls = {0: config.scalar_channels, 1: config.vector_channels, 2: config.tensor_channels}
    return o3.Irreps([(muls[l], (l, _PARITY[l])) for l in range(config.l_max + 1) if muls[l] > 0])


def edge_irreps(config: ModelConfig) -> o3.Irreps:
    """Irreps of the edge spherical harmonics: ``0e + 1o + 2e`` up to ``l_max``.

    ``l_max = 0`` uses ``0e`` alone (distance-only, invariant messages).
    """
    return o3.Irreps.spherical_harmonics(config.l_max)


def inverse_in_degree(edge_dst: torch.Tensor, num_nodes: int, dtype: torch.dtype) -> torch.Tensor:
    """(N,) ``1 / max(in-degree, 1)``: turns a sum over incoming edges into their mean."""
    degree = torch.zeros(num_nodes, dtype=dtype, device=edge_dst.device)
    degree.index_add_(0, edge_dst, torch.ones(edge_dst.shape[0], dtype=dtype, device=edge_dst.device))
    return 1.0 / degree.clamp_min(1.0)


class DepthwiseTensorProduct(nn.Module):
    """Depthwise ('uvu') tensor product ``x (x) Y`` with per-edge weights, batched for CPU.

    Every input entry ``mul x ir_in`` is coupled with every spherical-harmonic irrep
    ``ir_sh`` into each ``ir_out`` of ``ir_in x ir_sh`` that occurs in ``targets``.
    Each path keeps the input multiplicity and has one weight per channel and edge:

    ``out_p[e, u, k] = sqrt(2 l_out + 1) * w_p[e, u] * sum_{i,j} C^{l_in l_sh l_out}_{ijk} x[e, u, i] Y[e, j]``

    i.e. e3nn's ``TensorProduct`` with ``'uvu'`` instructions, component irrep
    normalisation and element path normalisation (one output entry per path).

    Instead of one einsum per path, each input entry ``i`` is done with one batched
    matrix product over edges: ``T_i = Y @ C_i`` (E, K_i, P_i d_i) holds the
    Clebsch-Gordan coefficients contracted with the edge's harmonics for all P_i paths
    (block diagonal in the path), and ``out_i = T_i @ (w_i * x_i)`` (E, K_i, mul_i).
    The result is in a *raw* layout (per input entry: output components major,
    channels minor); :meth:`to_irreps_layout` permutes the last axis into the
    standard e3nn layout of :attr:`irreps_out`. It is a pure permutation, so it can be
    applied after aggregating over edges (on nodes, much cheaper).

    Args:
        irreps_in: irreps of the sender features.
        irreps_sh: irreps of the edge spherical harmonics (multiplicity 1 each).
        targets: only output irreps occurring here are produced.

    Attributes:
        irreps_in / irreps_out: input irreps and the output irreps (one entry per path).
        weight_numel: number of weights per edge, laid out like e3nn's
            (path-major, then channel).
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 targets: o3.Irreps | str) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        if any(mul != 1 for mul, _ in self.irreps_sh):
            raise ValueError(f"irreps_sh must have multiplicity 1, got {self.irreps_sh}")
        target_irs = {ir for _, ir in o3.Irreps(targets)}
        sh_start = [0]
        for _, ir in self.irreps_sh:
            sh_start.append(sh_start[-1] + ir.dim)

        out_entries: list[tuple[int, o3.Irrep]] = []
        # e3nn position -> raw position, built entry by entry
        perm_raw_to_out: list[int] = []
        self._entries: list[tuple[int, int, int, int, int, int]] = []  # (x_start, mul, d, P, K, w_start)
        self._unit_coupling: list[bool] = []  # the entry's coupling to Y_0 alone is the number 1
        self._scalar_sh = self.irreps_sh == o3.Irreps("0e")  # sh may then be omitted (Y_0 = 1)
        x_start = w_start = out_start = 0
        for i_in, (mul, ir_in) in enumerate(self.irreps_in):
            paths = [(i_sh, ir_sh, ir_out)
                     for i_sh, (_, ir_sh) in enumerate(self.irreps_sh)
                     for ir_out in ir_in * ir_sh if ir_out in target_irs]
            d = ir_in.dim
            num_k = sum(ir_out.dim for _, _, ir_out in paths)
            cg = torch.zeros(self.irreps_sh.dim, num_k, len(paths) * d, dtype=torch.float64)
            k0 = 0
            # raw index of (k, u) is out_start + k * mul + u; e3nn index of path p's
            # (u, m) is path_start + u * dim_out + m, with k = k0_p + m.
            for p, (i_sh, ir_sh, ir_out) in enumerate(paths):
                w3j = o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l).to(torch.float64)  # (d, d_sh, d_out)
                w3j = w3j * math.sqrt(ir_out.dim)
                cg[sh_start[i_sh]:sh_start[i_sh + 1], k0:k0 + ir_out.dim, p * d:(p + 1) * d] = \
                    w3j.permute(1, 2, 0)
                out_entries.append((mul, ir_out))
                k0 += ir_out.dim
            perm_raw_to_out.extend([0] * (num_k * mul))
            # fill the permutation for this entry: out position -> raw position
            k0 = 0
            path_start = out_start
            for p, (_, _, ir_out) in enumerate(paths):
                for u in range(mul):
                    for m in range(ir_out.dim):
                        perm_raw_to_out[path_start + u * ir_out.dim + m] = out_start + (k0 + m) * mul + u
                path_start += mul * ir_out.dim
                k0 += ir_out.dim
            self.register_buffer(f"cg_{i_in}", cg.reshape(self.irreps_sh.dim, -1).to(torch.get_default_dtype()))
            self._entries.append((x_start, mul, d, len(paths), num_k, w_start))
            self._unit_coupling.append(cg.numel() == 1 and float(cg.reshape(-1)[0]) == 1.0)
            x_start += mul * d
            w_start += len(paths) * mul
            out_start += num_k * mul
        self.irreps_out = o3.Irreps(out_entries)
        self.weight_numel = w_start
        # out[..., j] = raw[..., index[j]]
        self.register_buffer("raw_index", torch.tensor(perm_raw_to_out, dtype=torch.long), persistent=False)

    def forward_pieces(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> list[torch.Tensor]:
        """Per-edge products in the raw layout, one tensor per input entry.

        Concatenating the pieces along the last axis gives :meth:`forward`; callers that
        aggregate over edges can reduce each piece first and concatenate on nodes.

        Args:
            x: (E, irreps_in.dim) sender features of each edge.
            sh: (E, irreps_sh.dim) spherical harmonics of each edge, or None when
                ``irreps_sh`` is ``0e`` alone: Y_0 = 1 on every edge (component normalisation).
            weight: (E, weight_numel) per-edge path weights.

        Returns:
            list of (E, K_i * mul_i) tensors (raw layout, see :meth:`to_irreps_layout`).
        """
        num_edges = x.shape[0]
        if sh is None and not self._scalar_sh:
            raise ValueError(f"sh may be omitted only for irreps_sh 0e, not {self.irreps_sh}")
        pieces = []
        for i, (x0, mul, d, num_p, num_k, w0) in enumerate(self._entries):
            if num_p == 0:
                continue
            cg = getattr(self, f"cg_{i}")
            xi = x[:, x0:x0 + mul * d].view(num_edges, 1, mul, d).transpose(2, 3)  # (E, 1, d, u)
            wi = weight[:, w0:w0 + num_p * mul].view(num_edges, num_p, 1, mul)  # (E, P, 1, u)
            xw = (wi * xi).reshape(num_edges, num_p * d, mul)  # (E, P d, u)
            if sh is None:
                # Y_0 = 1: the coupling is the edge-independent Clebsch-Gordan block (scalar
                # inputs: the number 1, so the message is w * x with no pass over the edges).
                if self._unit_coupling[i]:
                    out = xw  # (E, 1, u)
                else:
                    out = torch.matmul(cg.view(1, num_k, num_p * d), xw)  # (1, K, P d) @ (E, P d, u)
            else:
                t = (sh @ cg).view(num_edges, num_k, num_p * d)  # (E, K, P d)
                # A contraction over one term (scalar inputs and l = 0 harmonics: P d = 1) is a
                # broadcast product, the same numbers without E tiny matrix products.
                out = t * xw if num_p * d == 1 else torch.bmm(t, xw)  # (E, K, u)
            pieces.append(out.reshape(num_edges, num_k * mul))  # (E, K u)
        return pieces

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """(E, irreps_in.dim), (E, irreps_sh.dim), (E, weight_numel) -> (E, irreps_out.dim), raw layout."""
        pieces = self.forward_pieces(x, sh, weight)
        return torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]

    def to_irreps_layout(self, raw: torch.Tensor) -> torch.Tensor:
        """(..., irreps_out.dim) raw layout -> standard e3nn layout of ``irreps_out``."""
        return raw.index_select(-1, self.raw_index)


class InteractionBlock(nn.Module):
    """One XANE(3) message-passing block.

    Args:
        irreps_in: irreps of the incoming node features (``Cx0e`` for the first block).
        irreps_out: hidden irreps produced (scalars first, then l = 1, l = 2).
        irreps_sh: irreps of the edge spherical harmonics.
        num_radial: size R of the radial basis.
        radial_hidden: hidden width of the radial MLP.
        tensor_product: "uvu" (depthwise, then a linear) or "full" (fully connected, uvw).
        use_layer_norm: apply :class:`EquivariantLayerNorm` after aggregation.
        use_gate: gated nonlinearity (else SiLU on scalars, l > 0 left linear).
        use_gated_residual: adaptive gated residual when ``irreps_in == irreps_out``
            (else the plain residual ``W_sc h + m``). Without matching irreps the block
            output is ``m``.

    Attributes:
        irreps_in / irreps_out: node-feature irreps in and out.
        irreps_msg: irreps of the per-edge messages (tensor-product output).
        irreps_pre: irreps before the nonlinearity (hidden irreps plus gate scalars).
    """

    def __init__(self, irreps_in: o3.Irreps | str, irreps_out: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                 num_radial: int, radial_hidden: int, tensor_product: str = "uvu",
                 use_layer_norm: bool = True, use_gate: bool = True,
                 use_gated_residual: bool = True) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.irreps_sh = o3.Irreps(irreps_sh)
        if any(ir.l > 0 for _, ir in self.irreps_out[:1]) or any(
                ir.l == 0 for _, ir in self.irreps_out[1:]):
            raise ValueError(f"irreps_out must be scalars first then l > 0, got {self.irreps_out}")
        scalars = o3.Irreps([(mul, ir) for mul, ir in self.irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in self.irreps_out if ir.l > 0])
        self.num_scalars = scalars.num_irreps

        # --- 1. message tensor product: (E, irreps_in) x (E, irreps_sh) -> (E, irreps_msg)
        if tensor_product == "uvu":
            self.tp = DepthwiseTensorProduct(self.irreps_in, self.irreps_sh, self.irreps_out)
        elif tensor_product == "full":
            self.tp = o3.FullyConnectedTensorProduct(self.irreps_in, self.irreps_sh, self.irreps_out,
                                                     shared_weights=False, internal_weights=False)
        else:
            raise ValueError(f"tensor_product must be 'uvu' or 'full', got {tensor_product!r}")
        self.irreps_msg = self.tp.irreps_out
        # per-edge TP weights from the radial basis: (E, R) -> (E, weight_numel)
        self.radial_mlp = nn.Sequential(
            nn.Linear(num_radial, radial_hidden), nn.SiLU(),
            nn.Linear(radial_hidden, self.tp.weight_numel))
        # Variance-preserving init (unit-RMS radial input -> O(1) weights). torch's default
        # uniform(+-1/sqrt(fan_in)) shrinks each layer ~3x: messages start ~40x smaller than
        # the self-connection and training sits near the mean spectrum for many epochs.
        for layer, gain in ((self.radial_mlp[0], math.sqrt(2.0)), (self.radial_mlp[2], 1.0)):
            nn.init.normal_(layer.weight, std=gain / math.sqrt(layer.in_features))
            nn.init.zeros_(layer.bias)

        # --- 3./5. pre-activation irreps: hidden (+ gate scalars, one per l > 0 channel)
        self.use_gate = bool(use_gate) and len(gated) > 0
        if self.use_gate:
            gates = o3.Irreps([(gated.num_irreps, (0, 1))])
            self.gate = Gate(scalars, [torch.nn.functional.silu], gates, [torch.sigmoid], gated)
            self.irreps_pre = self.gate.irreps_in
        else:
            self.gate = None
            self.irreps_pre = self.irreps_out
        # Linear on the aggregated messages (applied per node after the mean, which
        # commutes with it) plus the self-connection of the node's own features.
        self.linear_msg = o3.Linear(self.irreps_msg, self.irreps_pre)
        self.linear_self = o3.Linear(self.irreps_in, self.irreps_pre)

        # --- 4. layer norm
        self.norm = EquivariantLayerNorm(self.irreps_pre) if use_layer_norm else None

        # --- 6. residual
        self.has_residual = self.irreps_in == self.irreps_out
        self.use_gated_residual = bool(use_gated_residual) and self.has_residual
        if self.has_residual:
            self.self_connection = o3.Linear(self.irreps_out, self.irreps_out)  # W_sc
        else:
            self.self_connection = None
        if self.use_gated_residual:
            num_channels = self.irreps_out.num_irreps
            self.residual_gate = nn.Linear(2 * self.num_scalars, num_channels)
            nn.init.zeros_(self.residual_gate.bias)
            # feature dimension -> its channel, to broadcast gates over 2l+1 components
            pieces, offset = [], 0
            for mul, ir in self.irreps_out:
                pieces.append(torch.arange(offset, offset + mul).repeat_interleave(ir.dim))
                offset += mul
            channel = torch.cat(pieces)  # (irreps_out.dim,)
            self.register_buffer("gate_channel", channel, persistent=False)
        else:
            self.residual_gate = None

    def forward(self, x: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                edge_sh: torch.Tensor, edge_radial: torch.Tensor, edge_cutoff: torch.Tensor,
                inv_degree: torch.Tensor | None = None, edge_inverse: torch.Tensor | None = None) -> torch.Tensor:
        """Update node features.

        Args:
            x: (N, irreps_in.dim) node features.
            edge_src: (E,) sender index of each edge.
            edge_dst: (E,) receiver index of each edge.
            edge_sh: (E, irreps_sh.dim) spherical harmonics of the edge vectors (None for
                ``irreps_sh`` 0e: Y_0 = 1).
            edge_radial: (E, R) radial basis (cutoff included), or (L, R) of the L
                distinct edge lengths when ``edge_inverse`` is given.
            edge_cutoff: (E,) cosine cutoff of the edge lengths (or (L,)).
            inv_degree: (N,) ``1 / max(in-degree, 1)`` (computed if not given).
            edge_inverse: (E,) each edge's index into the distinct lengths, or None.

        Returns:
            (N, irreps_out.dim) updated node features.
        """
        num_nodes = x.shape[0]
        if inv_degree is None:
            inv_degree = inverse_in_degree(edge_dst, num_nodes, x.dtype)
        weights = self.radial_mlp(edge_radial) * edge_cutoff.unsqueeze(-1)  # (E or L, weight_numel)
        if edge_inverse is not None:
            weights = weights.index_select(0, edge_inverse)  # (E, weight_numel)
        x_src = x.index_select(0, edge_src)  # (E, irreps_in.dim)
        if isinstance(self.tp, DepthwiseTensorProduct):
            # sum each per-edge piece onto its receiver, concatenate on nodes (cheap),
            # then permute the raw layout into e3nn's
            pieces = self.tp.forward_pieces(x_src, edge_sh, weights)  # [(E, K_i u_i)]
            summed = [scatter(p, edge_dst, dim=0, dim_size=num_nodes, reduce="sum") for p in pieces]
            aggregate = self.tp.to_irreps_layout(torch.cat(summed, dim=1))  # (N, irreps_msg.dim)
        else:
            if edge_sh is None:
                edge_sh = x_src.new_ones(x_src.shape[0], 1)  # Y_0 = 1
            messages = self.tp(x_src, edge_sh, weights)  # (E, irreps_msg.dim)
            aggregate = scatter(messages, edge_dst, dim=0, dim_size=num_nodes, reduce="sum")
        aggregate = aggregate * inv_degree.unsqueeze(-1)  # mean over incoming edges
        pre = self.linear_msg(aggregate) + self.linear_self(x)  # (N, irreps_pre.dim)
        if self.norm is not None:
            pre = self.norm(pre)
        if self.gate is not None:
            m = self.gate(pre)  # (N, irreps_out.dim)
        else:
            c = self.num_scalars
            m = torch.cat([torch.nn.functional.silu(pre[:, :c]), pre[:, c:]], dim=1)
        if not self.has_residual:
            return m
        h = self.self_connection(x)  # (N, irreps_out.dim)
        if self.residual_gate is None:
            return h + m
        c = self.num_scalars
        g = torch.sigmoid(self.residual_gate(torch.cat([x[:, :c], m[:, :c]], dim=1)))  # (N, channels)
        g = g.index_select(1, self.gate_channel)  # (N, irreps_out.dim)
        return g * h + (1.0 - g) * m
