"""EGNN denoiser (Satorras et al. 2021) on the fully connected cluster graph.

Dense implementation: a batch is B clusters padded to A rows; row 0 is the
absorber, held at the origin. Shapes: positions (B, A, 3), node types (B, A, K),
node mask (B, A) bool, conditioning (B, C), diffusion time (B,) in [0, 1].

Equivariance: messages depend only on invariants (node features, |x_i - x_j|^2,
radial features); position updates are sums of relative vectors x_i - x_j
weighted by invariant scalars, so rotating (or reflecting) the input positions
about the absorber rotates the predicted position noise and leaves the type
noise unchanged. Translations are removed by construction: the absorber is the
origin and is never moved.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model_core.inverse.config import DiffusionConfig

__all__ = ["EGNNDenoiser"]


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


class _Layer(nn.Module):
    """One EGNN layer: messages m_ij, feature update h_i, optional coordinate update x_i."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        h = config.hidden
        self.num_rbf = int(config.num_rbf)
        # First message layer split by input: W [h_i, h_j, d] = W_i h_i + W_j h_j + W_d d, so the
        # node parts are computed per node (A rows) instead of per pair (A^2 rows).
        self.msg_i = nn.Linear(h, h)
        self.msg_j = nn.Linear(h, h, bias=False)
        self.msg_d = nn.Linear(1 + self.num_rbf, h, bias=False)
        self.message = nn.Sequential(nn.SiLU(), nn.Linear(h, h), nn.SiLU())
        self.gate = nn.Linear(h, 1) if config.edge_gate else None
        self.node = _mlp(2 * h + config.cond_dim, h, h)
        self.norm = nn.LayerNorm(h)
        self.coord = None
        if config.update_positions:
            last = nn.Linear(h, 1, bias=False)
            nn.init.xavier_uniform_(last.weight, gain=1e-3)  # start near the identity map
            self.coord = nn.Sequential(nn.Linear(h, h), nn.SiLU(), last)
        if self.num_rbf:
            # Centres over 0..2x the cluster radius in the scaled units used inside the model.
            reach = 2.0 * config.radius_a / config.position_scale_a
            self.register_buffer("centres", torch.linspace(0.0, reach, self.num_rbf))
            self.width = reach / self.num_rbf

    def forward(self, h: torch.Tensor, x: torch.Tensor, pair: torch.Tensor, movable: torch.Tensor,
                cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = x[:, :, None, :] - x[:, None, :, :]                       # (B, A, A, 3)
        r2 = (diff * diff).sum(-1, keepdim=True)                          # (B, A, A, 1)
        a = h.shape[1]
        distance = r2
        if self.num_rbf:
            r = torch.sqrt(r2 + 1e-8)
            distance = torch.cat([r2, torch.exp(-((r - self.centres) / self.width) ** 2)], -1)
        m = self.message(self.msg_i(h)[:, :, None, :] + self.msg_j(h)[:, None, :, :]
                         + self.msg_d(distance))                          # (B, A, A, H)
        if self.gate is not None:
            m = m * torch.sigmoid(self.gate(m))
        m = m * pair[..., None]
        n_other = pair.sum(-1, keepdim=True).clamp_min(1.0)               # (B, A, 1)
        if self.coord is not None:
            weight = self.coord(m) * pair[..., None]                      # (B, A, A, 1)
            step = (diff / (torch.sqrt(r2 + 1e-8) + 1.0) * weight).sum(2) / n_other
            x = x + step * movable[..., None]
        h = self.norm(h + self.node(torch.cat([h, m.sum(2) / n_other, cond[:, None, :].expand(-1, a, -1)], -1)))
        return h, x


class EGNNDenoiser(nn.Module):
    """Predicts the noise on neighbour positions and element types.

    Inputs: ``x`` (B, A, 3) noisy scaled positions (row 0 = absorber at 0),
    ``types`` (B, A, K) noisy scaled one-hots, ``mask`` (B, A) bool real rows,
    ``t`` (B,) time in [0, 1], ``cond`` (B, C). Returns ``(eps_x (B, A, 3),
    eps_types (B, A, K))``, zero on the absorber and on padding.
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        k, h = len(config.species), config.hidden
        self.embed = nn.Linear(k + 1 + 2, h)  # types, absorber flag, sin/cos of time
        self.cond_in = nn.Linear(config.cond_dim, h)
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.num_layers))
        self.type_out = _mlp(h, h, k)
        self.final_coord = None if config.update_positions else nn.Sequential(
            nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1, bias=False))

    def forward(self, x: torch.Tensor, types: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, a = mask.shape
        maskf = mask.to(x.dtype)
        absorber = torch.zeros_like(maskf)
        absorber[:, 0] = 1.0
        movable = maskf * (1.0 - absorber)
        pair = maskf[:, :, None] * maskf[:, None, :] * (1.0 - torch.eye(a, dtype=x.dtype, device=x.device))
        angle = (t * math.pi / 2)[:, None, None].expand(b, a, 1)
        h = self.embed(torch.cat([types * movable[..., None], absorber[..., None],
                                  torch.sin(angle), torch.cos(angle)], -1))
        h = h + self.cond_in(cond)[:, None, :]
        x0 = x * maskf[..., None]
        x = x0
        for layer in self.layers:
            h, x = layer(h, x, pair, movable, cond)
        if self.final_coord is None:
            eps_x = x - x0
        else:
            diff = x0[:, :, None, :] - x0[:, None, :, :]
            r = torch.sqrt((diff * diff).sum(-1, keepdim=True) + 1e-8)
            hij = h[:, :, None, :] * h[:, None, :, :]
            weight = self.final_coord(hij) * pair[..., None]
            eps_x = (diff / (r + 1.0) * weight).sum(2) / pair.sum(-1, keepdim=True).clamp_min(1.0)
        eps_x = eps_x * movable[..., None]
        eps_types = self.type_out(h) * movable[..., None]
        return eps_x, eps_types
