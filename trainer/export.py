"""Export a trained checkpoint into a model folder the registry finds.

    python -m trainer.export runs/cu-k-feff-cpu/best.pt resources/models/cu-k-feff --name cu-k-feff

writes ``model.pt`` (the checkpoint, with the export name recorded in its provenance)
and ``model.json`` (the registry sidecar). The model card (``MODEL_CARD.md``) is written
by a person: it carries judgement (domain of validity, known limits) no script has.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Sequence

from model_core.checkpoint import load_checkpoint, save_checkpoint
from model_core.registry import CARD_FILE, MODEL_FILE, write_sidecar


def export_model(checkpoint_path: str | Path, folder: str | Path, name: str,
                 extra_metrics: dict | None = None) -> Path:
    """Copy a checkpoint into ``folder`` as a registry model and write its sidecar.

    Args:
        checkpoint_path: a ``best.pt`` from a training run.
        folder: the model folder (created), e.g. ``resources/models/cu-k-feff``.
        name: registry name.
        extra_metrics: merged into the checkpoint's metrics (e.g. held-out evaluation).

    Returns:
        Path of the written ``model.pt``.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    metrics = {**checkpoint.metrics, **(extra_metrics or {})}
    provenance = {**checkpoint.provenance, "exported_as": name, "exported_from": str(checkpoint_path)}
    checkpoint = dataclasses.replace(checkpoint, metrics=metrics, provenance=provenance)
    folder = Path(folder)
    path = save_checkpoint(checkpoint, folder / MODEL_FILE)
    validation = metrics.get("validation", {})
    summary = {k: validation[k] for k in ("eta", "median_mse", "mse", "n") if k in validation}
    write_sidecar(folder, name=name, element=checkpoint.element, edge=checkpoint.edge,
                  trained=checkpoint.trained, metrics=summary)
    if not (folder / CARD_FILE).is_file():
        print(f"note: {folder / CARD_FILE} is missing; write the model card")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a trained checkpoint as a shipped model.")
    parser.add_argument("checkpoint")
    parser.add_argument("folder")
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    print(export_model(args.checkpoint, args.folder, args.name))


if __name__ == "__main__":
    main()
