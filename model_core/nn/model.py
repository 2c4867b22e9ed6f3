"""XANE(3): E(3)-equivariant GNN predicting XANES spectra (Grizzi et al., arXiv 2604.12140).

Pipeline (one absorber-centred graph per spectrum):

0. Model-side crop (``r_crop`` > 0): only nodes within the member's own crop radius
   (:mod:`model_core.nn.crop`), so members of different crops share one ensemble.
1. Embedding: learnable table Z -> C scalars (``Cx0e``).
2. Edge features: spherical harmonics Y_l(x_ij), l <= l_max, and a radial basis of
   |x_ij| times a cosine cutoff (shared by all blocks; computed, with each block's
   radial MLP, once per distinct edge length).
3. ``num_blocks`` :class:`~model_core.nn.blocks.InteractionBlock`.
4. :class:`~model_core.nn.pooling.AbsorberPooling`: invariant readout vector.
5. :class:`~model_core.nn.readout.SpectrumHead` (spectrum) and
   :class:`~model_core.nn.readout.E0Head` (E0; detached features unless ``e0_backprop``).

Shapes: N nodes, E edges, B graphs, G grid points, F readout features.
"""

from __future__ import annotations

from typing import Any

import torch
from e3nn import o3
from torch import nn

from model_core.config import ModelConfig
from model_core.nn.blocks import InteractionBlock, edge_irreps, hidden_irreps, inverse_in_degree
from model_core.nn.crop import crop_graph
from model_core.nn.pooling import AbsorberPooling
from model_core.nn.radial import RadialEmbedding
from model_core.nn.readout import E0Head, SpectrumHead


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class XANE3(nn.Module):
    """The XANE(3) network, built from a :class:`ModelConfig`.

    Args:
        config: hyperparameters and ablation switches.

    Attributes:
        config: the configuration.
        irreps_hidden: hidden irreps of the blocks.
        irreps_sh: irreps of the edge spherical harmonics.
        energy: (G,) grid energies in eV (buffer of the spectrum head).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else ModelConfig()
        self.config = config
        c = int(config.scalar_channels)
        self.irreps_hidden = hidden_irreps(config)
        self.irreps_sh = edge_irreps(config)
        self.irreps_embed = o3.Irreps([(c, (0, 1))])

        self.embedding = nn.Embedding(config.max_z, c)  # Z -> (N, C) = Cx0e
        self.radial = RadialEmbedding(config.r_max, config.num_radial, config.radial_basis,
                                      normalize=config.radial_normalize)
        blocks = []
        irreps = self.irreps_embed
        for _ in range(config.num_blocks):
            block = InteractionBlock(
                irreps, self.irreps_hidden, self.irreps_sh, config.num_radial, config.radial_hidden,
                tensor_product=config.tensor_product, use_layer_norm=config.use_layer_norm,
                use_gate=config.use_gate, use_gated_residual=config.use_gated_residual)
            blocks.append(block)
            irreps = block.irreps_out
        self.blocks = nn.ModuleList(blocks)
        self.irreps_final = irreps
        self.pooling = AbsorberPooling(irreps, config.attention_hidden, config.pooling)
        self.head = SpectrumHead(
            self.pooling.out_dim, config.readout_hidden, config.dropout, config.grid,
            output=config.output, basis_per_scale=config.basis_per_scale,
            basis_widths=config.basis_widths, use_background=config.use_background,
            mean_offset=config.mean_offset)
        self.e0_head = (E0Head(self.pooling.out_dim, config.readout_hidden, backprop=config.e0_backprop)
                        if config.e0_head else None)

    @property
    def energy(self) -> torch.Tensor:
        """(G,) grid energies in eV relative to the edge."""
        return self.head.spectrum.energy if self.head.spectrum is not None else self.head.energy

    def set_offset_spectrum(self, spectrum) -> None:
        """Fill the fixed offset spectrum ((G,), e.g. the training mean); needs ``mean_offset``."""
        if self.head.offset is None:
            raise ValueError("this model was built without mean_offset")
        with torch.no_grad():
            self.head.offset.copy_(torch.as_tensor(spectrum, dtype=self.head.offset.dtype))

    def edge_features(self, edge_vec: torch.Tensor, distinct_lengths: bool = False, shared: dict | None = None
                      ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Spherical harmonics, radial basis and cutoff of the edges.

        Args:
            edge_vec: (E, 3) displacement ``pos[target] - pos[source]`` in Å.
            distinct_lengths: give the radial basis and cutoff of the L distinct edge
                lengths only, with each edge's index into them. Exact (equal inputs);
                it saves the blocks' radial MLPs most of their work, since every edge
                comes with its reverse and a crystal's edges repeat a few lengths.
            shared: a dict kept for these edges across ensemble members: the lengths (and
                their distinct values) are computed by the first member only.

        Returns:
            ``(sh (E, irreps_sh.dim) or None, radial (L, R), cutoff (L,), inverse (E,) or None)``;
            ``sh`` is None with ``l_max = 0`` (Y_0 = 1 in component normalisation, which the
            tensor product uses without an (E, 1) tensor of ones); without
            ``distinct_lengths`` L = E and ``inverse`` is None.
        """
        shared = {} if shared is None else shared
        if "lengths" not in shared:
            lengths = edge_vec.norm(dim=-1)  # (E,)
            shared["lengths"] = torch.unique(lengths, return_inverse=True) if distinct_lengths else (lengths, None)
        lengths, inverse = shared["lengths"]  # (L,), (E,) or None
        sh = None
        if self.irreps_sh.lmax > 0:
            sh = o3.spherical_harmonics(self.irreps_sh, edge_vec, normalize=True, normalization="component")
        radial, cutoff = self.radial(lengths)
        return sh, radial, cutoff, inverse

    def forward(self, batch: Any, shared: dict | None = None) -> dict[str, torch.Tensor | None]:
        """Predict spectra for a batch of absorber-centred graphs.

        Args:
            batch: torch-geometric batch with ``z`` (N,), ``edge_index`` (2, E)
                (source, target), ``edge_vec`` (E, 3) (or ``pos`` (N, 3) to derive it),
                ``absorber_mask`` (N,), ``batch`` (N,) and ``num_graphs``.
            shared: an empty dict passed to every member of an ensemble for one batch: the
                crop and the distinct edge lengths, which depend only on the batch and the
                crop radius, are then computed once per radius instead of once per member.

        Returns:
            ``{"mu": (B, G), "e0": (B,) or None, "attention": (N,), "readout": (B, F)}``.
        """
        edge_vec = getattr(batch, "edge_vec", None)
        if edge_vec is None:
            edge_vec = batch.pos.index_select(0, batch.edge_index[1]) - batch.pos.index_select(0, batch.edge_index[0])
        node_batch = getattr(batch, "batch", None)
        if node_batch is None:
            node_batch = torch.zeros_like(batch.z)
        num_graphs = int(getattr(batch, "num_graphs", 1) or 1)
        r_crop = float(self.config.r_crop)
        shared = {} if shared is None else shared
        graph = shared.get(("crop", r_crop))
        if graph is None:
            graph = shared[("crop", r_crop)] = crop_graph(
                getattr(batch, "pos", None), batch.z, batch.edge_index, edge_vec, batch.absorber_mask,
                node_batch, r_crop)
        z, edge_vec, node_batch = graph.z, graph.edge_vec, graph.node_batch
        edge_src, edge_dst = graph.edge_index[0], graph.edge_index[1]

        x = self.embedding(z).to(edge_vec.dtype)  # (N, C)
        # torch.unique passes no gradient to the lengths: per edge when positions need one
        # (structure refinement differentiates the spectrum by the coordinates).
        distinct = not (torch.is_grad_enabled() and edge_vec.requires_grad)
        sh, radial, cutoff, inverse = self.edge_features(
            edge_vec, distinct_lengths=distinct, shared=shared.setdefault(("lengths", r_crop, distinct), {}))
        if self.config.aggregation == "mean":
            inv_degree = inverse_in_degree(edge_dst, x.shape[0], x.dtype)  # (N,) 1/in-degree
        else:
            # sum aggregation scaled by a constant: neighbour counts stay visible
            inv_degree = torch.full((x.shape[0],), 1.0 / float(self.config.avg_neighbors),
                                    dtype=x.dtype, device=x.device)  # (N,)
        for block in self.blocks:
            x = block(x, edge_src, edge_dst, sh, radial, cutoff, inv_degree, inverse)  # (N, hidden.dim)
        readout, attention = self.pooling(x, graph.absorber_mask, node_batch, num_graphs)  # (B, F), (N',)
        mu = self.head(readout)  # (B, G)
        e0 = self.e0_head(readout) if self.e0_head is not None else None  # (B,)
        return {"mu": mu, "e0": e0, "attention": graph.expand(attention), "readout": readout}
