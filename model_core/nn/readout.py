"""Spectrum and E0 heads of XANE(3).

Paper components ("Readout", "Auxiliary E0 head"):

* An MLP (dropout 0.01) maps the invariant readout vector to coefficients.
* The spectrum is a sum of K = 200 Gaussians with fixed widths (40 at each of the
  relative widths 0.1, 0.5, 1, 2, 4 of the centre spacing) and global learnable
  centres, plus a sigmoid background ``a_bg * sigmoid((E - mu_bg) / w_bg)`` with a
  per-sample amplitude and shared learnable ``mu_bg``, ``w_bg``.
* A separate MLP on the detached readout features predicts a (standardised) E0.

Shapes: B graphs, F readout features, K Gaussians, G grid points.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from model_core.config import EnergyGrid


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """``Linear -> SiLU -> Dropout`` per hidden width, then a final ``Linear``."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.SiLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class GaussianBasisSpectrum(nn.Module):
    """Coefficients -> spectrum as a Gaussian basis plus a sigmoid background.

    ``mu(E) = sum_k c_k exp(-(E - m_k)^2 / (2 w_k^2)) + a_bg * sigmoid((E - mu_bg) / w_bg)``

    Args:
        grid: the energy grid (eV relative to the edge).
        basis_per_scale: Gaussians per width scale.
        basis_widths: widths relative to the spacing ``span / basis_per_scale``.
        use_background: include the sigmoid background term.

    Attributes:
        energy: (G,) buffer, grid energies in eV.
        centres: (K,) learnable centres m_k in eV, initialised evenly over the grid.
        widths: (K,) fixed buffer w_k in eV.
        bg_centre: learnable mu_bg in eV (init 0 = the edge).
        bg_width_raw: learnable, ``w_bg = softplus(bg_width_raw)`` (init 2 eV).
        num_coefficients: K (+ 1 for the background amplitude).
    """

    def __init__(self, grid: EnergyGrid, basis_per_scale: int, basis_widths: Sequence[float],
                 use_background: bool = True) -> None:
        super().__init__()
        dtype = torch.get_default_dtype()
        energy = torch.as_tensor(grid.energy_ev, dtype=dtype)
        self.register_buffer("energy", energy)
        span = float(grid.e_max_ev - grid.e_min_ev)
        spacing = span / basis_per_scale
        centres = torch.linspace(grid.e_min_ev, grid.e_max_ev, basis_per_scale, dtype=dtype)
        self.centres = nn.Parameter(centres.repeat(len(basis_widths)))  # (K,)
        widths = torch.tensor([w * spacing for w in basis_widths], dtype=dtype)
        self.register_buffer("widths", widths.repeat_interleave(basis_per_scale))  # (K,)
        self.num_basis = basis_per_scale * len(basis_widths)
        self.use_background = bool(use_background)
        if self.use_background:
            self.bg_centre = nn.Parameter(torch.zeros((), dtype=dtype))
            self.bg_width_raw = nn.Parameter(torch.tensor(math.log(math.expm1(2.0)), dtype=dtype))
        self.num_coefficients = self.num_basis + int(self.use_background)

    def basis(self) -> torch.Tensor:
        """(K, G) Gaussian basis on the grid."""
        diff = self.energy.unsqueeze(0) - self.centres.unsqueeze(1)  # (K, G)
        return torch.exp(-0.5 * (diff / self.widths.unsqueeze(1)) ** 2)

    def forward(self, coefficients: torch.Tensor) -> torch.Tensor:
        """(B, num_coefficients) -> (B, G) spectrum."""
        spectrum = coefficients[:, :self.num_basis] @ self.basis()  # (B, G)
        if self.use_background:
            w_bg = nn.functional.softplus(self.bg_width_raw)
            step = torch.sigmoid((self.energy - self.bg_centre) / w_bg)  # (G,)
            spectrum = spectrum + coefficients[:, self.num_basis:] * step.unsqueeze(0)
        return spectrum


class SpectrumHead(nn.Module):
    """Readout MLP plus the spectrum parametrisation.

    Args:
        in_dim: F, length of the readout vector.
        hidden: hidden widths of the MLP.
        dropout: dropout after every hidden activation (inactive in eval mode).
        grid: the energy grid.
        output: "gaussian_basis" (paper) or "direct" (one output per grid point).
        basis_per_scale / basis_widths / use_background: see :class:`GaussianBasisSpectrum`.
        mean_offset: add the (G,) ``offset`` buffer to every predicted spectrum.

    Attributes:
        energy: (G,) buffer of grid energies in eV.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], dropout: float, grid: EnergyGrid,
                 output: str = "gaussian_basis", basis_per_scale: int = 40,
                 basis_widths: Sequence[float] = (0.1, 0.5, 1.0, 2.0, 4.0),
                 use_background: bool = True, mean_offset: bool = False) -> None:
        super().__init__()
        if mean_offset:
            # (G,) fixed offset (the training-mean spectrum, filled by the trainer and
            # restored from the state_dict): the network then only learns deviations.
            self.register_buffer("offset", torch.zeros(int(grid.n_points), dtype=torch.get_default_dtype()))
        else:
            self.offset = None
        if output == "gaussian_basis":
            self.spectrum = GaussianBasisSpectrum(grid, basis_per_scale, basis_widths, use_background)
            out_dim = self.spectrum.num_coefficients
        elif output == "direct":
            self.spectrum = None
            out_dim = int(grid.n_points)
            self.register_buffer("energy", torch.as_tensor(grid.energy_ev, dtype=torch.get_default_dtype()))
        else:
            raise ValueError(f"output must be 'gaussian_basis' or 'direct', got {output!r}")
        self.mlp = mlp(in_dim, hidden, out_dim, dropout)

    def forward(self, readout: torch.Tensor) -> torch.Tensor:
        """(B, F) readout vector -> (B, G) spectrum."""
        out = self.mlp(readout)
        mu = out if self.spectrum is None else self.spectrum(out)  # (B, G)
        return mu if self.offset is None else mu + self.offset


class E0Head(nn.Module):
    """E0 head: an MLP from the readout vector to the standardised edge energy.

    Args:
        in_dim: F.
        hidden: hidden widths.
        backprop: let the E0 loss reach the backbone (shared trunk with its own loss
            weight). False (the original auxiliary head) reads *detached* features, so
            E0 can only use what the spectrum loss taught the trunk.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], backprop: bool = False) -> None:
        super().__init__()
        self.mlp = mlp(in_dim, hidden, 1)
        self.backprop = bool(backprop)

    def forward(self, readout: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B,) standardised E0."""
        return self.mlp(readout if self.backprop else readout.detach()).squeeze(-1)
