"""Shipped models, found by name in the installed ``xanes_resources`` package.

Each model lives in ``resources/models/<name>/`` with:

* ``model.pt`` - the checkpoint (see :mod:`model_core.checkpoint`);
* ``model.json`` - a small sidecar (name, element, edge, trained, metrics) so that
  listing models needs neither torch nor unpickling;
* ``MODEL_CARD.md`` - the model card shown to users.

This module imports no torch so the GUI can list models at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

MODEL_FILE = "model.pt"
META_FILE = "model.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass(frozen=True)
class ModelEntry:
    """A shipped model as listed in the registry.

    Attributes:
        name: registry name, e.g. "cu-k-feff".
        element: absorbing element symbol.
        edge: absorption edge.
        trained: False when the checkpoint holds no trained weights.
        path: path of the checkpoint file.
        card: the model card text (markdown).
        metrics: validation metrics from the sidecar.
    """

    name: str
    element: str
    edge: str
    trained: bool
    path: str
    card: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        status = "" if self.trained else " (UNTRAINED)"
        return f"{self.name} - {self.element} {self.edge}-edge{status}"


def models_dir() -> Path:
    """Folder holding the shipped models."""
    return Path(str(resources.files("xanes_resources"))) / "models"


def _entry(folder: Path) -> ModelEntry | None:
    meta_path = folder / META_FILE
    model_path = folder / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    card_path = folder / CARD_FILE
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
    return ModelEntry(
        name=str(meta.get("name", folder.name)),
        element=str(meta.get("element", "")),
        edge=str(meta.get("edge", "K")),
        trained=bool(meta.get("trained", False)),
        path=str(model_path),
        card=card,
        metrics=dict(meta.get("metrics") or {}),
    )


def list_models() -> list[ModelEntry]:
    """All shipped models, trained ones first, then by name."""
    root = models_dir()
    entries = [e for e in (_entry(p) for p in sorted(root.iterdir()) if p.is_dir()) if e] if root.is_dir() else []
    return sorted(entries, key=lambda e: (not e.trained, e.name))


def find_model(name: str) -> ModelEntry | None:
    """The shipped model called ``name`` (case-insensitive), or None."""
    for entry in list_models():
        if entry.name.lower() == name.lower():
            return entry
    return None


def model_for_element(element: str, edge: str = "K") -> ModelEntry | None:
    """The preferred shipped model for an absorbing element (trained ones first)."""
    for entry in list_models():
        if entry.element.lower() == element.lower() and entry.edge.upper() == edge.upper():
            return entry
    return None


def write_sidecar(folder: str | Path, *, name: str, element: str, edge: str, trained: bool,
                  metrics: dict[str, Any] | None = None) -> Path:
    """Write ``model.json`` beside a checkpoint (used when exporting a trained model)."""
    path = Path(folder) / META_FILE
    payload = {"name": name, "element": element, "edge": edge, "trained": bool(trained),
               "metrics": metrics or {}}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
