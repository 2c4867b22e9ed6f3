"""Inverse-model checkpoints: one plain dict, loadable with ``torch.load(weights_only=True)``.

Layout (``INVERSE_FORMAT`` 1)::

    {
      "kind": "xanes-inverse-diffusion",   # never a forward model: the forward loader refuses it
      "inverse_format": 1,
      "config": {...},                     # to_dict(DiffusionConfig)
      "state_dict": {name: tensor},
      "element": "Cu", "edge": "K",
      "energy_grid_ev": [float, ...],      # the forward model's grid (relative to the edge)
      "forward_model": "cu-k-feff",
      "metrics": {...}, "provenance": {...},
    }

Files are named ``inverse.pt`` (not ``model.pt``), so the forward registry,
which lists folders holding ``model.pt`` + ``model.json``, never sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model_core.config import from_dict, to_dict
from model_core.inverse.config import DiffusionConfig

__all__ = ["INVERSE_FORMAT", "INVERSE_KIND", "InverseCheckpointError", "load_diffusion", "save_diffusion"]

INVERSE_KIND = "xanes-inverse-diffusion"
INVERSE_FORMAT = 1


class InverseCheckpointError(ValueError):
    """An inverse checkpoint is missing, unreadable or of another kind."""


def save_diffusion(path: str | Path, model, *, element: str, edge: str, energy_ev: np.ndarray,
                   forward_model: str, metrics: Mapping[str, Any] | None = None,
                   provenance: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a :class:`~model_core.inverse.diffusion.ClusterDiffusion` (``extra``: resume state)."""
    import torch

    payload = {
        "kind": INVERSE_KIND, "inverse_format": INVERSE_FORMAT, "config": to_dict(model.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "element": str(element), "edge": str(edge),
        "energy_grid_ev": [float(e) for e in np.asarray(energy_ev)],
        "forward_model": str(forward_model), "metrics": dict(metrics or {}),
        "provenance": dict(provenance or {}), **dict(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_diffusion(path: str | Path, dtype=None):
    """Load ``(model in eval mode, checkpoint dict)`` from an inverse checkpoint.

    Raises:
        InverseCheckpointError: missing or unreadable file, or not an inverse checkpoint.
    """
    import torch

    from model_core.inverse.diffusion import ClusterDiffusion

    path = Path(path)
    if not path.is_file():
        raise InverseCheckpointError(f"{path}: no such inverse-model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InverseCheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(data, dict) or data.get("kind") != INVERSE_KIND:
        raise InverseCheckpointError(f"{path}: not an inverse (spectrum -> structure) checkpoint")
    if int(data.get("inverse_format", 0)) > INVERSE_FORMAT:
        raise InverseCheckpointError(f"{path}: inverse format {data['inverse_format']} is newer than this program")
    config = from_dict(DiffusionConfig, data["config"])
    model = ClusterDiffusion(config)
    model.load_state_dict(data["state_dict"])
    if dtype is not None:
        model = model.to(dtype)
    return model.eval(), data
