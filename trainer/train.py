"""The training loop: AdamW, ReduceLROnPlateau, early stopping, gradient clipping,
derivative-ramped loss, a resumable checkpoint every epoch, and DistributedDataParallel
when launched with ``torchrun`` (gloo on CPU, NCCL on CUDA).

Files in ``<output_dir>/<name>/``:
    config.yaml       the resolved configuration
    train_state.pt    everything needed for ``--resume`` (weights_only-loadable)
    best.pt           model checkpoint of the best validation epoch (model_core format)
    last.pt           model checkpoint of the latest epoch
    metrics.jsonl     one JSON object per epoch
    dropped.csv       spectra removed by the screen, with reasons
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from model_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model_core.config import to_dict
from model_core.nn.model import XANE3
from trainer.config import OptimConfig, TrainConfig, dump_train_config
from trainer.loss import composite_loss, spectrum_metrics

Logger = Callable[[str], None]


@dataclass(frozen=True)
class SplitData:
    """Prepared tensors of one split: graphs as torch-geometric Data with targets."""

    ids: tuple[str, ...]
    data: tuple  # torch_geometric Data objects with y (1, G) and e0 (1,)
    mu: np.ndarray  # (N, G) normalized targets


SCHEDULES = ("plateau", "cosine")


def _make_scheduler(optimizer, optim: OptimConfig):
    """The learning-rate schedule named by ``optim.schedule`` (stepped once per epoch)."""
    if optim.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=optim.lr_factor, patience=optim.lr_patience, min_lr=optim.min_lr)
    # "cosine" (train() refuses other names before any work): after the last epoch the
    # rate has reached min_lr; T_max counts the steps between.
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(optim.epochs - 1, 1), eta_min=optim.min_lr)


def _step_scheduler(scheduler, val_mse: float, distributed: bool) -> None:
    """Advance the schedule by one epoch on every process.

    The plateau schedule needs the validation MSE, which only rank 0 computes: it is
    broadcast so that all processes lower their rate together (DistributedDataParallel
    averages gradients but each process steps its own optimizer).
    """
    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step()
        return
    if distributed:
        import torch.distributed as dist

        value = torch.tensor([val_mse], dtype=torch.float64)
        dist.broadcast(value, src=0)
        val_mse = float(value.item())
    if math.isfinite(val_mse):
        scheduler.step(val_mse)


def _ema_with_warmup(decay: float):
    """Exponential moving average whose decay grows as min(decay, (1 + n) / (10 + n)) with
    the number of updates n, so that the average forgets the random initial weights within
    a few dozen steps instead of ~1/(1 - decay) of them."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        n = int(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for avg, cur in zip(averaged, current):
            if avg.is_floating_point():
                avg.lerp_(cur, weight)
            else:  # integer buffers (counters, index tables) are copied, not averaged
                avg.copy_(cur)

    return update


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (0, 0, 1 otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, local, world


def _to_split(dataset, indices: np.ndarray, e0_mean: float, e0_std: float) -> SplitData:
    from model_core.batching import graph_to_data

    data = []
    for i in indices:
        d = graph_to_data(dataset.graphs[i])
        d.y = torch.as_tensor(dataset.mu[i], dtype=torch.float32).unsqueeze(0)
        e0 = float(dataset.e0_abs[i]) if dataset.e0_abs is not None else math.nan
        d.e0 = torch.tensor([(e0 - e0_mean) / e0_std if np.isfinite(e0) and e0_std > 0 else math.nan],
                            dtype=torch.float32)
        data.append(d)
    return SplitData(ids=tuple(str(dataset.ids[i]) for i in indices), data=tuple(data),
                     mu=np.asarray(dataset.mu)[indices])


def _read_id_file(name: str, source: str, splits: dict[str, list[str]]) -> list[str]:
    """Ids of a split: a file path, or a split shipped with the source (``splits/<name>``)."""
    path = Path(name)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    stem = Path(name).stem
    for key in (name, stem):
        if key in splits:
            return list(splits[key])
    raise FileNotFoundError(f"split {name!r} is neither a file nor a split of {source} "
                            f"(available: {', '.join(splits) or 'none'})")


def split_indices(config: TrainConfig, ids: Sequence[str], group_ids: Sequence[str],
                  splits: dict[str, list[str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation records.

    With ``val_ids`` the given lists are used (training = train_ids + extra_train_ids,
    or everything not in validation when train_ids is empty), and records of a group
    (material / complex) that has any validation record are left out of training: other
    sites of a validation material would leak its environment into the model. Otherwise
    whole groups are held out at random with ``val_fraction``, seeded.
    """
    index = {str(rid): k for k, rid in enumerate(ids)}
    splits = splits or {}
    data = config.data
    if data.val_ids:
        val = [index[r] for r in _read_id_file(data.val_ids, data.source, splits) if r in index]
        val_groups = {str(group_ids[k]) for k in val}
        if data.train_ids:
            train_names = _read_id_file(data.train_ids, data.source, splits)
            for extra in data.extra_train_ids:
                train_names += _read_id_file(extra, data.source, splits)
            candidates = [index[r] for r in dict.fromkeys(train_names) if r in index]
        else:
            candidates = list(range(len(ids)))
        train = [k for k in candidates if str(group_ids[k]) not in val_groups]
        return np.array(sorted(train)), np.array(sorted(val))
    groups = sorted(set(map(str, group_ids)))
    rng = np.random.default_rng(data.split_seed if data.split_seed >= 0 else config.optim.seed)
    n_val = max(1, int(round(len(groups) * data.val_fraction)))
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist())
    val = [k for k, g in enumerate(group_ids) if str(g) in val_groups]
    train = [k for k, g in enumerate(group_ids) if str(g) not in val_groups]
    return np.array(train), np.array(val)


def load_splits(config: TrainConfig, log: Logger = print):
    """Prepare (cached) data and return (train, val, dataset, e0 mean, e0 std)."""
    from trainer.data.dataset import prepare_dataset

    dataset, report = prepare_dataset(
        config.data.source, grid=config.model.grid, graph_config=config.graph,
        normalization=config.data.normalization, screen=config.data.screen,
        element=config.data.element or None, cache_dir=config.data.cache_dir, progress=True)
    log(report.summary())
    train_idx, val_idx = split_indices(config, dataset.ids, dataset.group_ids, dataset.splits)
    e0 = np.asarray(dataset.e0_abs, dtype=np.float64)[train_idx] if dataset.e0_abs is not None else np.array([])
    e0 = e0[np.isfinite(e0)]
    e0_mean = float(e0.mean()) if len(e0) else math.nan
    e0_std = float(max(e0.std(), 0.1)) if len(e0) else math.nan
    train = _to_split(dataset, train_idx, e0_mean, e0_std)
    val = _to_split(dataset, val_idx, e0_mean, e0_std)
    log(f"split: {len(train.ids)} train / {len(val.ids)} validation")
    return train, val, dataset, report, e0_mean, e0_std


def evaluate_model(model: torch.nn.Module, data: Sequence, batch_size: int = 64,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """(N, G) predictions for a sequence of Data objects, in order."""
    from torch_geometric.loader import DataLoader

    model.eval()
    outputs = []
    with torch.inference_mode():
        for batch in DataLoader(list(data), batch_size=batch_size, shuffle=False):
            outputs.append(model(batch.to(device))["mu"].double().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 0))


def make_checkpoint(config: TrainConfig, state_dict, element: str, train_mean: np.ndarray,
                    e0_mean: float, e0_std: float, metrics: dict, provenance: dict) -> Checkpoint:
    return Checkpoint(
        model_config=config.model, graph_config=config.graph,
        state_dict={k: v.detach().cpu().clone() for k, v in state_dict.items()},
        element=element, edge=config.data.edge, trained=True,
        normalization={"mode": config.data.normalization,
                       "description": NORMALIZATION_DESCRIPTIONS.get(config.data.normalization, "")},
        e0_mean_ev=e0_mean, e0_std_ev=e0_std, train_mean_spectrum=train_mean,
        provenance=provenance, metrics=metrics,
    )


NORMALIZATION_DESCRIPTIONS = {
    "feff": "FEFF's own normalization (mu divided by its value at edge+50 eV): post-edge ~1",
    "edge_step": "pre-edge line subtracted, divided by the edge step from a post-edge fit: pre-edge ~0, post-edge ~1",
}


def train(config: TrainConfig, *, resume: bool = False, init: str | None = None,
          log: Logger = print) -> Path:
    """Train a model; return the path of the best checkpoint.

    Args:
        config: the run configuration.
        resume: continue from ``train_state.pt`` in the run folder.
        init: a checkpoint (path or shipped model name) to fine-tune from; its model
            and graph configuration replace those of ``config``.
        log: where progress lines go (rank 0 only).
    """
    from torch_geometric.loader import DataLoader

    # A mistyped schedule is reported before minutes of data preparation, not after.
    if config.optim.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, "
                         f"not {config.optim.schedule!r}")
    rank, local_rank, world = _dist_info()
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if rank != 0:
        log = lambda *_: None  # noqa: E731 - only rank 0 reports
    if config.optim.num_threads:
        torch.set_num_threads(config.optim.num_threads)
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")

    init_checkpoint = None
    if init:
        from model_core.inference import resolve_model_path

        init_checkpoint = load_checkpoint(resolve_model_path(init)[1])
        from model_core.config import apply_overrides

        config = apply_overrides(config, {"model": to_dict(init_checkpoint.model_config),
                                          "graph": to_dict(init_checkpoint.graph_config)})
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        dump_train_config(config, run_dir / "config.yaml")

    _seed_everything(config.optim.seed)
    train_split, val_split, dataset, report, e0_mean, e0_std = load_splits(config, log)
    if rank == 0 and len(report):
        report.write_csv(run_dir / "dropped.csv")
    if rank == 0:
        # The exact split, so a run's validation numbers can be reproduced with xanes-eval --ids.
        (run_dir / "train_ids.txt").write_text("\n".join(train_split.ids) + "\n", encoding="utf-8")
        (run_dir / "val_ids.txt").write_text("\n".join(val_split.ids) + "\n", encoding="utf-8")
    element = config.data.element or str(dataset.meta.get("element", ""))
    train_mean = train_split.mu.mean(axis=0)
    step_ev = config.model.grid.step_ev

    _seed_everything(config.optim.seed)
    model = XANE3(config.model).to(device)
    if config.model.mean_offset:
        model.set_offset_spectrum(train_mean)
    if init_checkpoint is not None and init_checkpoint.state_dict is not None:
        model.load_state_dict(init_checkpoint.state_dict)  # keeps the initial model's offset
        log(f"initialised from {init}")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.3f} M parameters on {device}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scheduler = _make_scheduler(optimizer, config.optim)

    ema = None
    if config.optim.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel

        # use_buffers: the offset spectrum and any other buffers travel with the average.
        ema = AveragedModel(model, multi_avg_fn=_ema_with_warmup(config.optim.ema_decay), use_buffers=True)
    eval_model = ema.module if ema is not None else model

    start_epoch, best_score, best_epoch, elapsed_before = 0, math.inf, -1, 0.0
    state_path = run_dir / "train_state.pt"
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"]) + 1
        best_score, best_epoch = float(state["best_score"]), int(state["best_epoch"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed at epoch {start_epoch} (best {best_score:.3e} at epoch {best_epoch})")
    elif resume:
        log("no train_state.pt to resume from; starting fresh")

    train_model = model
    if distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    sampler = None
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(list(train_split.data), num_replicas=world, rank=rank,
                                     shuffle=True, seed=config.optim.seed)
    generator = torch.Generator().manual_seed(config.optim.seed + start_epoch)
    loader = DataLoader(list(train_split.data), batch_size=config.optim.batch_size,
                        shuffle=sampler is None, sampler=sampler, generator=generator, drop_last=False)

    provenance = {
        "run_name": config.name, "data_source": str(config.data.source),
        "n_train": len(train_split.ids), "n_val": len(val_split.ids),
        "config": to_dict(config), "world_size": world,
        "device": str(device), "init": init or "",
    }
    t_start = time.monotonic()
    stale = 0 if best_epoch < 0 else max(0, start_epoch - 1 - best_epoch)
    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.optim.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_model.train()
        t_epoch = time.monotonic()
        sums: dict[str, float] = {}
        n_batches = 0
        batches = loader
        if rank == 0:
            from tqdm import tqdm

            # disable=None: a bar on an interactive terminal, nothing in logs and CI.
            batches = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None)
        for batch in batches:
            batch = batch.to(device)
            out = train_model(batch)
            loss, parts = composite_loss(out["mu"], batch.y, step_ev, epoch, config.loss,
                                         out.get("e0"), batch.e0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
        train_parts = {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}
        epoch_s = time.monotonic() - t_epoch

        record = {"epoch": epoch, "epoch_s": round(epoch_s, 2), "lr": optimizer.param_groups[0]["lr"], **train_parts}
        val_mse = math.nan
        if rank == 0 and len(val_split.data) and (epoch + 1) % config.optim.eval_every == 0:
            pred = evaluate_model(eval_model, val_split.data, device=device)
            metrics = spectrum_metrics(pred, val_split.mu, step_ev, train_mean)
            record.update({f"val_{k}": v for k, v in metrics.items()})
            score = metrics["median_mse"]
            val_mse = metrics["mse"]
            if score < best_score:
                best_score, best_epoch, stale = score, epoch, 0
                save_checkpoint(make_checkpoint(config, eval_model.state_dict(), element, train_mean, e0_mean,
                                                e0_std, {"validation": metrics, "epoch": epoch}, provenance),
                                run_dir / "best.pt")
            else:
                stale += 1
            save_checkpoint(make_checkpoint(config, eval_model.state_dict(), element, train_mean, e0_mean, e0_std,
                                            {"validation": metrics, "epoch": epoch}, provenance),
                            run_dir / "last.pt")
            log(f"epoch {epoch:3d}  {epoch_s:6.1f}s  train {train_parts.get('train_mse', 0):.3e}  "
                f"val mse {metrics['mse']:.3e}  median {metrics['median_mse']:.3e}  eta {metrics['eta']:.2f}"
                f"  lr {record['lr']:.1e}")
        _step_scheduler(scheduler, val_mse, distributed)
        if rank == 0:
            with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            torch.save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "best_score": best_score,
                "best_epoch": best_epoch, "torch_rng": torch.get_rng_state(),
                **({"ema": ema.state_dict()} if ema is not None else {}),
                "elapsed_s": elapsed_before + time.monotonic() - t_start,
            }, state_path)
        stop = stale >= config.optim.early_stopping_patience
        minutes = (elapsed_before + time.monotonic() - t_start) / 60
        if config.optim.time_limit_min and minutes >= config.optim.time_limit_min:
            log(f"time limit of {config.optim.time_limit_min} min reached after epoch {epoch}")
            stop = True
        if distributed:
            import torch.distributed as dist

            flag = torch.tensor([1.0 if stop else 0.0])
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())
        if stop:
            if stale >= config.optim.early_stopping_patience:
                log(f"early stopping: no improvement for {stale} epochs (best epoch {best_epoch})")
            break
    if distributed:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    best = run_dir / "best.pt"
    log(f"done: best validation median MSE {best_score:.3e} at epoch {best_epoch}; {best}")
    return best
