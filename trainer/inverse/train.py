"""Train the spectrum-conditioned cluster diffusion model.

Usage::

    python -m trainer.inverse.train configs/cu-k-inverse-cpu.yaml [--resume] [--set key=value ...]

Writes into ``<output_dir>/<name>/``: ``last.pt`` (weights + optimizer, for
``--resume``, every epoch), ``best.pt`` (the epoch with the lowest validation
loss, see ``optim.select_on``; the shipped format), ``library.npz`` (the retrieval library:
training spectra and clusters) and ``log.jsonl`` (one line per epoch). The
validation split is used only to choose that epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from model_core.config import apply_overrides, check_choices, from_dict, load_yaml
from model_core.inverse.clusters import ClusterSet
from model_core.inverse.config import DiffusionConfig

__all__ = ["InverseDataConfig", "InverseOptimConfig", "InverseTrainConfig", "load_config", "main",
           "load_clusters", "make_batch", "train"]


@dataclass(frozen=True)
class InverseDataConfig:
    """Data of the inverse model.

    Attributes:
        source: archive or folder (relative to the config file, then the working directory).
        element: absorbing element.
        forward_model: the forward model whose grid (and whose training normalization,
            ``normalization``) the spectra are put on, and which checks candidates.
        normalization: as the forward training config's ``data.normalization``.
        train_ids / val_ids: split names in the source's ``splits/`` folder; an empty
            ``val_ids`` makes the forward trainer's grouped random carve-out instead
            (:func:`trainer.inverse.data.carve_out_cluster_sets`).
        val_fraction / split_seed: that carve-out, as the forward training config's
            ``data.val_fraction`` and ``data.split_seed`` (so the validation part is the
            forward model's too).
        library_radius_a: radius of the clusters in the retrieval library (Å); at
            least the forward model's ``r_crop`` so retrieved clusters predict like the crystal.
        cache_dir: where prepared data are cached (relative to the working directory).
    """

    source: str = ""
    element: str = "Cu"
    forward_model: str = "cu-k-feff"
    normalization: str = "feff"
    train_ids: str = "train"
    val_ids: str = "val"
    val_fraction: float = 0.1
    split_seed: int = 0
    library_radius_a: float = 6.0
    cache_dir: str = "runs/cache"


@dataclass(frozen=True)
class InverseOptimConfig:
    """Optimization: AdamW with a cosine learning rate over ``epochs``, stopped at ``time_limit_min``.

    ``select_on`` picks the epoch saved as ``best.pt``: the lowest validation "denoising" loss
    (positions + types) or "total" loss (plus ``count_weight`` x the count head's cross-entropy,
    which overfits long before the denoiser stops improving).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    epochs: int = 100
    time_limit_min: float = 55.0
    count_weight: float = 0.1
    grad_clip: float = 1.0
    num_threads: int = 1
    seed: int = 0
    select_on: Literal["denoising", "total"] = "denoising"

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True)
class InverseTrainConfig:
    name: str = "cu-k-inverse"
    output_dir: str = "runs"
    data: InverseDataConfig = field(default_factory=InverseDataConfig)
    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    optim: InverseOptimConfig = field(default_factory=InverseOptimConfig)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> InverseTrainConfig:
    """The YAML config with ``key=value`` overrides; a relative ``data.source`` is resolved
    against the config file's folder when it exists there."""
    config = apply_overrides(load_yaml(InverseTrainConfig, path), list(overrides))
    source = Path(config.data.source)
    beside = Path(path).resolve().parent / source
    if not source.is_absolute() and beside.exists():
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, source=str(beside.resolve())))
    if config.data.library_radius_a < config.model.radius_a:
        raise ValueError("data.library_radius_a must be >= model.radius_a")
    return config


def make_batch(clusters: ClusterSet, rows: np.ndarray, species: Sequence[int]):
    """A :class:`~model_core.inverse.diffusion.ClusterBatch` of ``rows``, padded to their widest.

    Neighbours of an element outside ``species`` are given species 0 (only
    possible for validation clusters).
    """
    import torch

    from model_core.inverse.diffusion import ClusterBatch

    z = clusters.z[rows].astype(np.int64)
    width = int((z > 0).sum(1).max())
    z = z[:, :width]
    lookup = np.zeros(int(max(max(species), z.max())) + 1, dtype=np.int64)
    lookup[np.asarray(species)] = np.arange(len(species))
    index = np.where(z > 0, lookup[z], -1)
    index[:, 0] = -1
    return ClusterBatch(mu=torch.as_tensor(clusters.mu[rows], dtype=torch.float32),
                        z_index=torch.as_tensor(index), pos_a=torch.as_tensor(clusters.pos[rows, :width]),
                        mask=torch.as_tensor(z > 0))


def _grid(forward_model: str):
    from model_core.checkpoint import load_checkpoint
    from model_core.inference import resolve_model_path

    _name, path, _card = resolve_model_path(forward_model)
    checkpoint = load_checkpoint(path)
    return checkpoint.model_config.grid, checkpoint.graph_config


def load_clusters(config: InverseTrainConfig) -> tuple[ClusterSet, ClusterSet]:
    """(train, validation) clusters of radius ``data.library_radius_a``: in split-file order, or
    the carve-out's (source order) when ``data.val_ids`` is empty."""
    from trainer.inverse.data import build_cluster_set, carve_out_cluster_sets, source_splits

    data = config.data
    grid, graph = _grid(data.forward_model)
    if data.library_radius_a < graph.r_crop:
        print(f"note: library clusters ({data.library_radius_a} Å) are smaller than the forward crop "
              f"({graph.r_crop} Å): retrieved clusters will not predict exactly like their crystals")
    if not data.val_ids:
        return carve_out_cluster_sets(data.source, grid, data.library_radius_a, val_fraction=data.val_fraction,
                                      split_seed=data.split_seed, normalization=data.normalization,
                                      element=data.element, cache_dir=data.cache_dir)
    splits = source_splits(data.source)
    ids = splits[data.train_ids] + splits[data.val_ids]
    everything = build_cluster_set(data.source, ids, grid, data.library_radius_a,
                                   normalization=data.normalization, element=data.element,
                                   cache_dir=data.cache_dir)
    row = {str(i): k for k, i in enumerate(everything.ids)}
    train = everything.take(np.array([row[i] for i in splits[data.train_ids] if i in row]))
    val = everything.take(np.array([row[i] for i in splits[data.val_ids] if i in row]))
    return train, val


def _val_loss(model, clusters: ClusterSet, species, batch_size: int, count_weight: float) -> dict[str, float]:
    import torch

    generator = torch.Generator().manual_seed(1234)  # the same noise every epoch
    totals: dict[str, float] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(clusters), batch_size):
            rows = np.arange(start, min(start + batch_size, len(clusters)))
            parts = model.loss(make_batch(clusters, rows, species), count_weight, generator=generator)
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value) * len(rows)
    return {k: v / len(clusters) for k, v in totals.items()}


def train(config: InverseTrainConfig, resume: bool = False, log=print) -> Path:
    """Train; returns the run folder (see the module docstring)."""
    import torch

    from model_core.inverse.checkpoint import load_diffusion, save_diffusion
    from model_core.inverse.diffusion import ClusterDiffusion

    torch.set_num_threads(config.optim.num_threads)
    torch.manual_seed(config.optim.seed)
    run_dir = Path(config.output_dir) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    library, val_library = load_clusters(config)
    library.save(run_dir / "library.npz", half=True)
    train_set, val_set = library.crop(config.model.radius_a), val_library.crop(config.model.radius_a)
    species = tuple(int(z) for z in np.unique(train_set.z[:, 1:][train_set.z[:, 1:] > 0]))
    max_neighbors = int(train_set.n_atoms.max()) - 1
    model_config = dataclasses.replace(config.model, species=species, n_points=train_set.mu.shape[1],
                                       max_neighbors=max(config.model.max_neighbors, max_neighbors),
                                       absorber_z=int(train_set.z[0, 0]))
    log(f"{len(train_set)} train / {len(val_set)} val clusters of {model_config.radius_a} Å, "
        f"{len(species)} species, up to {max_neighbors} neighbours")
    (run_dir / "config.json").write_text(json.dumps({"config": dataclasses.asdict(config),
                                                     "model": dataclasses.asdict(model_config)}, indent=1))
    model = ClusterDiffusion(model_config)
    model.encoder.set_statistics(torch.as_tensor(train_set.mu, dtype=torch.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.optim.epochs)
    epoch, best, elapsed = 0, float("inf"), 0.0
    if resume and (run_dir / "last.pt").is_file():
        model, state = load_diffusion(run_dir / "last.pt")
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.optim.epochs)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        epoch, best, elapsed = int(state["epoch"]), float(state["best_val"]), float(state["elapsed_s"])
        log(f"resumed at epoch {epoch} (best validation loss {best:.4f}, {elapsed / 60:.1f} min so far)")
    meta = dict(element=config.data.element, edge="K", energy_ev=train_set.energy_ev,
                forward_model=config.data.forward_model)
    rng = np.random.default_rng(config.optim.seed + epoch)
    started = time.time() - elapsed
    while epoch < config.optim.epochs and (time.time() - started) / 60 < config.optim.time_limit_min:
        model.train()
        order = rng.permutation(len(train_set))
        sums: dict[str, float] = {}
        for start in range(0, len(order), config.optim.batch_size):
            rows = order[start:start + config.optim.batch_size]
            parts = model.loss(make_batch(train_set, rows, species), config.optim.count_weight)
            opt.zero_grad()
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
            opt.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(rows)
        sched.step()
        epoch += 1
        val = _val_loss(model, val_set, species, 64, config.optim.count_weight)
        record = {"epoch": epoch, "minutes": round((time.time() - started) / 60, 2),
                  "lr": opt.param_groups[0]["lr"], **{f"train_{k}": v / len(train_set) for k, v in sums.items()},
                  **{f"val_{k}": v for k, v in val.items()}}
        with open(run_dir / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        log(json.dumps(record))
        score = val["pos"] + val["type"] if config.optim.select_on == "denoising" else val["loss"]
        if score < best:
            best = score
            save_diffusion(run_dir / "best.pt", model, **meta,
                           metrics={"epoch": epoch, **{f"val_{k}": v for k, v in val.items()}},
                           provenance={"train_sites": len(train_set), "val_sites": len(val_set),
                                       "source": Path(config.data.source).name, "minutes": record["minutes"]})
        save_diffusion(run_dir / "last.pt", model, **meta, extra={
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch,
            "best_val": best, "elapsed_s": time.time() - started})
    return run_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.inverse.train", description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--resume", action="store_true", help="continue from <run>/last.pt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    args = parser.parse_args(argv)
    train(load_config(args.config, args.set), resume=args.resume)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
