"""Conditional denoising diffusion over absorber-centred clusters.

:class:`ClusterDiffusion` holds the spectrum encoder, the EGNN denoiser and a
count head; it defines the training loss and the sampler.

Representation of a cluster (B clusters padded to A rows, row 0 = absorber):
positions divided by ``position_scale_a`` (absorber fixed at 0, never noised)
and element types as one-hot vectors over ``config.species`` times
``type_scale``, diffused as continuous variables (Hoogeboom et al. 2022, EDM).
The number of neighbours n is predicted from the spectrum embedding by the
count head (a categorical over 0..max_neighbors) and sampled from it.

Noise schedule: cosine (Nichol & Dhariwal 2021) over ``timesteps`` steps; the
network predicts the noise (epsilon parameterization). Sampling: DDIM
(Song et al. 2021) on ``sample_steps`` respaced steps with ``sample_eta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model_core.inverse.config import DiffusionConfig
from model_core.inverse.egnn import EGNNDenoiser
from model_core.inverse.encoder import SpectrumEncoder

__all__ = ["ClusterBatch", "ClusterDiffusion", "SampledClusters", "cosine_alpha_bar"]


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """(T+1,) float64 cumulative signal fractions alpha_bar(0..T); alpha_bar(0) = 1."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    # Clip per-step betas at 0.999 (as Nichol & Dhariwal) so the last step stays finite.
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


@dataclass
class ClusterBatch:
    """Training tensors: ``mu`` (B, G); ``z_index`` (B, A) long index into species (-1 =
    absorber or padding); ``pos_a`` (B, A, 3) Å; ``mask`` (B, A) bool real rows."""

    mu: torch.Tensor
    z_index: torch.Tensor
    pos_a: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class SampledClusters:
    """Sampled clusters, numpy. ``species_index`` (S, A) int64 (-1 on absorber/padding),
    ``positions_a`` (S, A, 3) float64 Å, ``n_neighbors`` (S,) int64."""

    species_index: np.ndarray
    positions_a: np.ndarray
    n_neighbors: np.ndarray


class ClusterDiffusion(nn.Module):
    """Spectrum-conditioned diffusion model over clusters (see the module docstring)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.encoder = SpectrumEncoder(config)
        self.denoiser = EGNNDenoiser(config)
        self.count_head = nn.Sequential(nn.Linear(config.cond_dim, config.cond_dim), nn.SiLU(),
                                        nn.Linear(config.cond_dim, config.max_neighbors + 1))
        self.register_buffer("alpha_bar", cosine_alpha_bar(config.timesteps).float())

    # -- training ------------------------------------------------------------

    def _clean(self, batch: ClusterBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        movable = batch.mask.clone()
        movable[:, 0] = False
        x0 = batch.pos_a / cfg.position_scale_a * movable[..., None]
        onehot = F.one_hot(batch.z_index.clamp_min(0), len(cfg.species)).to(x0.dtype)
        h0 = onehot * cfg.type_scale * movable[..., None]
        return x0, h0, movable

    def loss(self, batch: ClusterBatch, count_weight: float = 0.1,
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Noise-prediction MSE on positions and types plus the count cross-entropy.

        Returns ``{"loss", "pos", "type", "count"}`` (scalars); ``loss`` =
        pos + type + count_weight * count. Means run over real neighbour rows.
        """
        x0, h0, movable = self._clean(batch)
        b = x0.shape[0]
        t = torch.randint(1, self.config.timesteps + 1, (b,), generator=generator, device=x0.device)
        ab = self.alpha_bar[t].to(x0.dtype)[:, None, None]
        eps_x = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device) * movable[..., None]
        eps_h = torch.randn(h0.shape, generator=generator, dtype=x0.dtype, device=x0.device) * movable[..., None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps_x
        h_t = ab.sqrt() * h0 + (1 - ab).sqrt() * eps_h
        cond = self.encoder(batch.mu)
        pred_x, pred_h = self.denoiser(x_t, h_t, batch.mask, t.to(x0.dtype) / self.config.timesteps, cond)
        n_rows = movable.sum().clamp_min(1)
        pos = ((pred_x - eps_x) ** 2).sum() / (3 * n_rows)
        typ = ((pred_h - eps_h) ** 2).sum() / (h0.shape[-1] * n_rows)
        n_neighbors = movable.sum(1).clamp(max=self.config.max_neighbors)
        count = F.cross_entropy(self.count_head(cond), n_neighbors)
        return {"loss": pos + typ + count_weight * count, "pos": pos, "type": typ, "count": count}

    # -- sampling ------------------------------------------------------------

    def count_probabilities(self, mu: torch.Tensor) -> torch.Tensor:
        """(B, max_neighbors + 1) probabilities of the number of neighbours."""
        return torch.softmax(self.count_head(self.encoder(mu)), -1)

    def _clamp_positions(self, x: torch.Tensor) -> torch.Tensor:
        limit = 1.5 * self.config.radius_a / self.config.position_scale_a
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        return x * torch.clamp(limit / norm.clamp_min(1e-12), max=1.0)

    def _clamp_types(self, h: torch.Tensor) -> torch.Tensor:
        return h.clamp(-2 * self.config.type_scale, 2 * self.config.type_scale)

    def sample_timesteps(self) -> np.ndarray:
        """The respaced timesteps the sampler visits, descending from ``timesteps`` to 0 (one
        denoising step between each pair: ``len - 1`` steps)."""
        cfg = self.config
        return np.unique(np.linspace(0, cfg.timesteps, cfg.sample_steps + 1).round().astype(int))[::-1]

    @torch.no_grad()
    def sample(self, mu: torch.Tensor, n_samples: int, *, n_neighbors: torch.Tensor | None = None,
               noise: tuple[torch.Tensor, torch.Tensor] | None = None,
               generator: torch.Generator | None = None,
               progress: Callable[[int, int], None] | None = None) -> SampledClusters:
        """Sample ``n_samples`` clusters for one spectrum.

        Args:
            mu: (G,) the spectrum on the model grid.
            n_samples: S.
            n_neighbors: (S,) neighbour counts; None samples them from the count head.
            noise: initial (x_T (S, A, 3), h_T (S, A, K)) with A = max(n) + 1; None draws
                it. With ``sample_eta = 0`` the sample is a deterministic function of it.
            generator: random source for counts, initial and per-step noise.
            progress: called as ``progress(done, total)`` after every denoising step;
                an exception it raises (a cancel) stops the sampler there and propagates.
        """
        cfg = self.config
        dtype = self.alpha_bar.dtype
        mu = mu.reshape(1, -1).to(dtype)
        cond1 = self.encoder(mu)
        if n_neighbors is None:
            probs = torch.softmax(self.count_head(cond1), -1)[0]
            n_neighbors = torch.multinomial(probs, n_samples, replacement=True, generator=generator)
        n_neighbors = n_neighbors.to(torch.long).clamp(1, cfg.max_neighbors)
        width = int(n_neighbors.max()) + 1
        rows = torch.arange(width)
        mask = rows[None, :] <= n_neighbors[:, None]
        movable = (mask & (rows[None, :] > 0)).to(dtype)[..., None]
        if noise is None:
            x = torch.randn((n_samples, width, 3), generator=generator, dtype=dtype)
            h = torch.randn((n_samples, width, len(cfg.species)), generator=generator, dtype=dtype)
        else:
            x, h = (v.to(dtype) for v in noise)
        x, h = x * movable, h * movable
        cond = cond1.expand(n_samples, -1)
        steps = self.sample_timesteps()
        for k, (t_now, t_next) in enumerate(zip(steps[:-1], steps[1:])):
            ab, ab_next = self.alpha_bar[t_now], self.alpha_bar[t_next]
            tt = torch.full((n_samples,), t_now / cfg.timesteps, dtype=dtype)
            eps_x, eps_h = self.denoiser(x, h, mask, tt, cond)
            sigma = cfg.sample_eta * torch.sqrt((1 - ab_next) / (1 - ab) * (1 - ab / ab_next))
            direction = torch.sqrt((1 - ab_next - sigma ** 2).clamp_min(0.0))
            new = []
            for value, eps, clamp in ((x, eps_x, self._clamp_positions), (h, eps_h, self._clamp_types)):
                clean = (value - (1 - ab).sqrt() * eps) / ab.sqrt()
                if cfg.clip_denoised:
                    # Re-derive the noise from the clamped estimate so that the step stays bounded.
                    clean = clamp(clean)
                    eps = (value - ab.sqrt() * clean) / (1 - ab).sqrt()
                step = ab_next.sqrt() * clean + direction * eps
                if cfg.sample_eta > 0 and t_next > 0:
                    step = step + sigma * torch.randn(value.shape, generator=generator, dtype=dtype)
                new.append(step * movable)
            x, h = new
            if progress is not None:
                progress(k + 1, len(steps) - 1)
        species = torch.where(movable[..., 0] > 0, h.argmax(-1), torch.full_like(h[..., 0], -1, dtype=torch.long))
        return SampledClusters(species_index=species.cpu().numpy().astype(np.int64),
                               positions_a=(x * cfg.position_scale_a).double().cpu().numpy(),
                               n_neighbors=n_neighbors.cpu().numpy().astype(np.int64))
