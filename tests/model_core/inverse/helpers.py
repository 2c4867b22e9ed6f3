"""Tiny synthetic inverse data: two planted environments with distinct spectra, and bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model_core.inverse.clusters import ClusterSet
from model_core.inverse.config import DiffusionConfig

GRID_EV = np.linspace(-10.0, 100.0, 221)  # the cu-k-feff grid

LINEAR = np.array([[0, 0, 1.9], [0, 0, -1.9]])                       # CN 2, O at 1.9 Å
TETRAHEDRAL = 2.0 / np.sqrt(3) * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # CN 4, 2.0 Å


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal 3x3 matrix (rotation or reflection)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def planted_spectrum(kind: int) -> np.ndarray:
    """Edge step with a white line at 5 eV (kind 0, CN 2) or 15 eV (kind 1, CN 4)."""
    centre = 5.0 if kind == 0 else 15.0
    edge = 1.0 / (1.0 + np.exp(-GRID_EV / 1.5))
    return edge + 0.6 * np.exp(-0.5 * ((GRID_EV - centre) / 3.0) ** 2)


def planted_clusters(n: int = 64, seed: int = 0) -> ClusterSet:
    """n clusters alternating CN 2 (linear) and CN 4 (tetrahedral) O around Cu, randomly rotated,
    with their planted spectra."""
    rng = np.random.default_rng(seed)
    z = np.zeros((n, 5), dtype=np.int16)
    pos = np.zeros((n, 5, 3), dtype=np.float32)
    mu = np.zeros((n, len(GRID_EV)), dtype=np.float32)
    for i in range(n):
        kind = i % 2
        shell = (LINEAR if kind == 0 else TETRAHEDRAL) @ random_rotation(rng).T
        z[i, 0] = 29
        z[i, 1:1 + len(shell)] = 8
        pos[i, 1:1 + len(shell)] = shell
        mu[i] = planted_spectrum(kind)
    return ClusterSet(ids=np.array([f"site-{i}" for i in range(n)]), energy_ev=GRID_EV, mu=mu, z=z, pos=pos,
                      radius_a=4.5)


def tiny_config(**changes) -> DiffusionConfig:
    base = dict(species=(8,), absorber_z=29, radius_a=4.5, max_neighbors=4, n_points=len(GRID_EV), hidden=16,
                num_layers=2, num_rbf=4, cond_dim=16, timesteps=100, sample_steps=20)
    base.update(changes)
    return DiffusionConfig(**base)


def write_bundle(folder: Path, model=None, clusters: ClusterSet | None = None, element: str = "Cu") -> Path:
    """An inverse bundle: inverse.json, library.npz and (with ``model``) inverse.pt."""
    from model_core.inverse.checkpoint import save_diffusion

    folder.mkdir(parents=True, exist_ok=True)
    (clusters if clusters is not None else planted_clusters(16)).save(folder / "library.npz", half=True)
    (folder / "inverse.json").write_text(json.dumps({"name": folder.name, "element": element, "edge": "K",
                                                     "kind": "inverse", "forward_model": "cu-k-feff"}))
    if model is not None:
        save_diffusion(folder / "inverse.pt", model, element=element, edge="K", energy_ev=GRID_EV,
                       forward_model="cu-k-feff")
    return folder
