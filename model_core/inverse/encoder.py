"""Spectrum encoder: mu(E) and dmu/dE on the model grid -> a conditioning vector."""

from __future__ import annotations

import torch
from torch import nn

from model_core.inverse.config import DiffusionConfig

__all__ = ["SpectrumEncoder", "spectrum_channels"]


def spectrum_channels(mu: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                      d_mean: torch.Tensor, d_std: torch.Tensor, use_derivative: bool) -> torch.Tensor:
    """(B, C, G) standardized input channels: mu and (optionally) its finite-difference derivative.

    Args:
        mu: (B, G) spectra on the grid.
        mean, std: (G,) per-point statistics of the training spectra.
        d_mean, d_std: (G,) the same for ``torch.gradient`` of mu along the grid (per grid step).
        use_derivative: add the derivative channel (C = 2, else C = 1).
    """
    channels = [(mu - mean) / std]
    if use_derivative:
        derivative = torch.gradient(mu, dim=-1)[0]
        channels.append((derivative - d_mean) / d_std)
    return torch.stack(channels, dim=1)


class SpectrumEncoder(nn.Module):
    """(B, G) spectrum -> (B, cond_dim) embedding (invariant: spectra carry no orientation).

    ``encoder="conv"``: three strided 1D convolutions (kernel 7/7/5, stride 2) and a
    linear layer; ``"mlp"``: a two-layer MLP on the flattened channels. The
    standardization statistics are buffers set by the trainer (:meth:`set_statistics`).
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.use_derivative = bool(config.use_derivative)
        n_in = 2 if self.use_derivative else 1
        g = int(config.n_points)
        for name, value in (("mean", 0.0), ("std", 1.0), ("d_mean", 0.0), ("d_std", 1.0)):
            self.register_buffer(name, torch.full((g,), value))
        if config.encoder == "conv":
            self.body = nn.Sequential(
                nn.Conv1d(n_in, 32, 7, stride=2, padding=3), nn.SiLU(),
                nn.Conv1d(32, 64, 7, stride=2, padding=3), nn.SiLU(),
                nn.Conv1d(64, 64, 5, stride=2, padding=2), nn.SiLU(), nn.Flatten())
            with torch.no_grad():
                width = self.body(torch.zeros(1, n_in, g)).shape[1]
        else:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(n_in * g, 256), nn.SiLU())
            width = 256
        self.head = nn.Sequential(nn.Linear(width, config.cond_dim), nn.SiLU(),
                                  nn.Linear(config.cond_dim, config.cond_dim))

    @torch.no_grad()
    def set_statistics(self, mu: torch.Tensor) -> None:
        """Set the standardization from (N, G) training spectra."""
        derivative = torch.gradient(mu, dim=-1)[0]
        self.mean.copy_(mu.mean(0))
        self.std.copy_(mu.std(0).clamp_min(1e-3))
        self.d_mean.copy_(derivative.mean(0))
        self.d_std.copy_(derivative.std(0).clamp_min(1e-4))

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        x = spectrum_channels(mu, self.mean, self.std, self.d_mean, self.d_std, self.use_derivative)
        return self.head(self.body(x))
