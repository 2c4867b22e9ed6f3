"""Configuration of the conditional diffusion model over absorber-centred clusters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DiffusionConfig"]

ENCODERS = ("conv", "mlp")


@dataclass(frozen=True)
class DiffusionConfig:
    """Architecture and diffusion settings (every component behind a switch).

    Attributes:
        species: atomic numbers a neighbour may have (the one-hot vocabulary), set
            from the training clusters.
        absorber_z: atomic number of the absorber (fixed, not diffused).
        radius_a: clusters hold every atom closer than this to the absorber (Å).
        max_neighbors: the count head predicts 0..max_neighbors neighbours.
        n_points: length of the conditioning spectrum (the forward model's grid).
        hidden: node / edge feature width of the EGNN denoiser.
        num_layers: EGNN layers.
        num_rbf: Gaussian radial features of pair distances besides |x_i - x_j|^2
            (0: only the squared distance, as in Satorras et al. 2021).
        edge_gate: soft attention gate sigmoid(w . m_ij) on every message.
        update_positions: EGNN coordinate updates in every layer (else the positions
            are only read, and the noise is predicted by the last layer alone).
        encoder: spectrum encoder, "conv" (1D convolutions) or "mlp".
        use_derivative: the encoder also reads dmu/dE (else mu only).
        cond_dim: width of the spectrum embedding.
        position_scale_a: positions are divided by this inside the diffusion (Å).
        type_scale: one-hot element types are multiplied by this (EDM: 0.25), so
            positions dominate the early denoising.
        timesteps: steps of the training noise schedule (cosine, Nichol & Dhariwal).
        sample_steps: denoising steps at sampling (DDIM respacing of the schedule).
        sample_eta: DDIM eta (0 = deterministic given the initial noise, 1 = DDPM-like).
        clip_denoised: at sampling, clamp each atom's estimated clean position to at most
            1.5 x ``radius_a`` from the absorber (a radial clamp, so rotations commute with it)
            and the clean type values to +-2 x ``type_scale``; without it the first steps,
            where alpha_bar is ~1e-7, can amplify a poor noise estimate without bound.
    """

    species: tuple[int, ...] = (8,)
    absorber_z: int = 29
    radius_a: float = 4.5
    max_neighbors: int = 49
    n_points: int = 221
    hidden: int = 64
    num_layers: int = 4
    num_rbf: int = 16
    edge_gate: bool = True
    update_positions: bool = True
    encoder: str = "conv"
    use_derivative: bool = True
    cond_dim: int = 64
    position_scale_a: float = 2.0
    type_scale: float = 0.25
    timesteps: int = 500
    sample_steps: int = 50
    sample_eta: float = 0.0
    clip_denoised: bool = True

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if not self.species or any(int(z) < 1 for z in self.species):
            raise ValueError("species must list at least one atomic number >= 1")
        if len(set(self.species)) != len(self.species):
            raise ValueError("species must not repeat")
        if not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError("sample_steps must be 1..timesteps")
        if self.radius_a <= 0 or self.position_scale_a <= 0 or self.type_scale <= 0:
            raise ValueError("radius_a, position_scale_a and type_scale must be positive")
        if self.max_neighbors < 1 or self.hidden < 1 or self.num_layers < 1:
            raise ValueError("max_neighbors, hidden and num_layers must be >= 1")
