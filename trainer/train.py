"""The training loop: AdamW, a plateau or cosine schedule, early stopping, gradient
clipping, derivative-ramped loss, an optional weight average, a resumable checkpoint
every epoch, and DistributedDataParallel when launched with ``torchrun`` (gloo on CPU,
NCCL on CUDA).

:func:`train` is the entry point; it builds a :class:`Trainer` (set-up), resumes it when
asked and runs it (one epoch, validation, checkpoints, repeated). Splits are made in
:mod:`trainer.splits`, schedules and the weight average in :mod:`trainer.schedules`.

Files in ``<output_dir>/<name>/``:
    config.yaml       the resolved configuration
    train_state.pt    everything needed for ``--resume`` (weights_only-loadable)
    best.pt           model checkpoint of the best validation epoch (model_core format)
    last.pt           model checkpoint of the latest epoch
    metrics.jsonl     one JSON object per epoch
    dropped.csv       spectra removed by the screen, with reasons
    train_ids.txt / val_ids.txt   the exact split (val: the selection part)
    report_ids.txt    the reporting part (``data.report_fraction``), scored once at the end
    report_metrics.json   best.pt's metrics on it
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from model_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model_core.config import apply_overrides, own_crop, to_dict
from model_core.nn.model import XANE3
from model_core.spectra.normalize import TargetNormalization, target_normalization_record
from trainer.config import TrainConfig, dump_train_config
from trainer.loss import composite_loss, spectrum_metrics
from trainer.schedules import ema_with_warmup, make_scheduler, step_scheduler
from trainer.splits import Logger, load_splits



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


def evaluate_outputs(model: torch.nn.Module, data: Sequence, batch_size: int = 64,
                     device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """(N, G) spectra and (N,) standardized E0 (None without an E0 head), in order."""
    from torch_geometric.loader import DataLoader

    model.eval()
    mus, e0s = [], []
    with torch.inference_mode():
        for batch in DataLoader(list(data), batch_size=batch_size, shuffle=False):
            out = model(batch.to(device))
            mus.append(out["mu"].double().cpu().numpy())
            if out.get("e0") is not None:
                e0s.append(out["e0"].double().cpu().numpy())
    mu = np.concatenate(mus) if mus else np.zeros((0, 0))
    return mu, (np.concatenate(e0s) if e0s and len(e0s) == len(mus) else None)


def evaluate_model(model: torch.nn.Module, data: Sequence, batch_size: int = 64,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """(N, G) predictions for a sequence of Data objects, in order."""
    return evaluate_outputs(model, data, batch_size, device)[0]


def make_checkpoint(config: TrainConfig, state_dict, element: str, train_mean: np.ndarray,
                    e0_mean: float, e0_std: float, metrics: dict, provenance: dict,
                    grid_origin_ev: float | None = None) -> Checkpoint:
    """The model_core checkpoint of a trained state (with the targets' normalization and the
    grid's fixed origin, :func:`trainer.data.dataset.grid_origin`)."""
    return Checkpoint(
        model_config=config.model, graph_config=config.graph,
        state_dict={k: v.detach().cpu().clone() for k, v in state_dict.items()},
        element=element, edge=config.data.edge, trained=True,
        normalization=target_normalization_record(TargetNormalization(mode=config.data.normalization)),
        e0_mean_ev=e0_mean, e0_std_ev=e0_std, train_mean_spectrum=train_mean,
        provenance=provenance, metrics=metrics, grid_origin_ev=grid_origin_ev,
    )


class Trainer:
    """One training run: set up on construction, then :meth:`resume` (optional) and :meth:`run`.

    Construction joins the process group under ``torchrun``, applies ``init``, writes
    ``config.yaml``, the split files and ``dropped.csv``, and builds the model, optimizer,
    schedule and weight average. Only rank 0 validates, logs and writes files.

    Args:
        config: the run configuration.
        init: a checkpoint (path or shipped model name) to fine-tune from; its model
            and graph configuration replace those of ``config``.
        init_member: which member of an ensemble ``init`` starts from (``state_dicts``
            order: spectrum members first, then dedicated E0 members).
        graph_overrides: ``graph.*=value`` items given explicitly (``--set graph.r_crop=7.5``):
            with ``init`` they replace the checkpoint's (its edge radius ``r_max`` stays,
            being the model's radial cutoff).
        log: where progress lines go (rank 0 only).
    """

    def __init__(self, config: TrainConfig, *, init: str | None = None, init_member: int = 0,
                 graph_overrides: Sequence[str] = (), log: Logger = print) -> None:
        self.rank, self.local_rank, self.world = _dist_info()
        self.distributed = self.world > 1
        if self.distributed:
            import torch.distributed as dist

            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        self.log: Logger = log if self.rank == 0 else (lambda *_: None)
        if config.optim.num_threads:
            torch.set_num_threads(config.optim.num_threads)
        from model_core.allocator import keep_freed_memory

        keep_freed_memory()  # tensors reuse warm heap pages (model_core/allocator.py)
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu")
        self.init = init

        init_checkpoint = None
        if init:
            from model_core.inference import resolve_model_path

            init_checkpoint = load_checkpoint(resolve_model_path(init)[1]).member(init_member)
            if init_member:
                self.init = f"{init} (member {init_member})"
            # A member of a mixed-crop ensemble trains on graphs of its own crop. The weights
            # fix the architecture, but the crop is a property of the data: an explicit graph
            # override (a longer crop, say) wins over the checkpoint's.
            member_config, member_graph = init_checkpoint.model_config, init_checkpoint.graph_config
            member_graph = dataclasses.replace(member_graph, r_crop=own_crop(member_config, member_graph))
            config = apply_overrides(config, {"model": to_dict(dataclasses.replace(member_config, r_crop=0.0)),
                                              "graph": to_dict(member_graph)})
            config = apply_overrides(config, [item for item in graph_overrides
                                              if item.split("=", 1)[0].strip() != "graph.r_max"])
        self.config = config
        self.run_dir = config.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.run_dir / "train_state.pt"
        if self.rank == 0:
            dump_train_config(config, self.run_dir / "config.yaml")
        self._prepare_data()
        self._build_model(init_checkpoint)
        self.start_epoch, self.best_score, self.best_epoch, self.elapsed_before = 0, math.inf, -1, 0.0

    def _prepare_data(self) -> None:
        config = self.config
        _seed_everything(config.optim.seed)
        self.train_split, self.val_split, dataset, report, self.e0_mean, self.e0_std, self.report_split = \
            load_splits(config, self.log)
        if self.rank == 0:
            if len(report):
                report.write_csv(self.run_dir / "dropped.csv")
            # The exact split, so a run's validation numbers can be reproduced with xanes-eval --ids.
            (self.run_dir / "train_ids.txt").write_text("\n".join(self.train_split.ids) + "\n", encoding="utf-8")
            (self.run_dir / "val_ids.txt").write_text("\n".join(self.val_split.ids) + "\n", encoding="utf-8")
            if self.report_split.ids:
                (self.run_dir / "report_ids.txt").write_text("\n".join(self.report_split.ids) + "\n",
                                                             encoding="utf-8")
        self.element = config.data.element or str(dataset.meta.get("element", ""))
        origin = dataset.meta.get("grid_origin_ev")
        self.grid_origin_ev = None if origin is None else float(origin)
        self.train_mean = self.train_split.mu.mean(axis=0)
        self.step_ev = config.model.grid.step_ev

    def _build_model(self, init_checkpoint: Checkpoint | None) -> None:
        config = self.config
        _seed_everything(config.optim.seed)
        self.model = XANE3(config.model).to(self.device)
        if config.model.mean_offset:
            self.model.set_offset_spectrum(self.train_mean)
        if init_checkpoint is not None and init_checkpoint.state_dict is not None:
            self.model.load_state_dict(init_checkpoint.state_dict)  # keeps the initial model's offset
            self.log(f"initialised from {self.init}")
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model: {n_params / 1e6:.3f} M parameters on {self.device}")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, config.optim)
        self.ema = None
        if config.optim.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel

            # use_buffers: the offset spectrum and any other buffers travel with the average.
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(config.optim.ema_decay),
                                     use_buffers=True)
        self.eval_model = self.ema.module if self.ema is not None else self.model

    # -- state -------------------------------------------------------------------

    def state(self, epoch: int, elapsed_s: float) -> dict[str, Any]:
        """What ``train_state.pt`` holds after ``epoch`` (plain tensors and numbers)."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": epoch, "best_score": self.best_score,
            "best_epoch": self.best_epoch, "torch_rng": torch.get_rng_state(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "elapsed_s": elapsed_s,
        }

    def resume(self) -> bool:
        """Continue from the run folder's ``train_state.pt``; False (logged) when there is none."""
        if not self.state_path.is_file():
            self.log("no train_state.pt to resume from; starting fresh")
            return False
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        torch.set_rng_state(state["torch_rng"])
        self.log(f"resumed at epoch {self.start_epoch} (best {self.best_score:.3e} at epoch {self.best_epoch})")
        return True

    # -- one epoch ---------------------------------------------------------------

    def train_epoch(self, epoch: int, model: torch.nn.Module, loader) -> dict[str, float]:
        """One pass over the training data; the mean loss terms as ``train_<term>``."""
        config = self.config
        model.train()
        sums: dict[str, float] = {}
        n_batches = 0
        batches = loader
        if self.rank == 0:
            from tqdm import tqdm

            # disable=None: a bar on an interactive terminal, nothing in logs and CI.
            batches = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None)
        for batch in batches:
            batch = batch.to(self.device)
            out = model(batch)
            loss, parts = composite_loss(out["mu"], batch.y, self.step_ev, epoch, config.loss,
                                         out.get("e0"), batch.e0)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
        return {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}

    def validate(self, split=None, model: torch.nn.Module | None = None) -> dict[str, float]:
        """Metrics of the evaluated (averaged, when on) weights on the validation split
        (or ``split``), with the E0 mean absolute error in eV where E0 is known."""
        split = self.val_split if split is None else split
        pred, e0 = evaluate_outputs(self.eval_model if model is None else model, split.data, device=self.device)
        metrics = spectrum_metrics(pred, split.mu, self.step_ev, self.train_mean)
        if e0 is not None:
            true = np.array([float(d.e0) for d in split.data])
            known = np.isfinite(true)
            if known.any():
                metrics["e0_mae_ev"] = float(np.mean(np.abs(e0[known] - true[known])) * self.e0_std)
        return metrics

    def score_reporting_part(self, best: Path) -> dict[str, float] | None:
        """Score ``best.pt`` once on the reporting part; written to ``report_metrics.json``."""
        if not len(self.report_split.data) or not best.is_file():
            return None
        model = XANE3(self.config.model).to(self.device)
        model.load_state_dict(load_checkpoint(best).state_dict)
        metrics = self.validate(self.report_split, model)
        (self.run_dir / "report_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
        self.log(f"reporting part ({len(self.report_split.ids)} records, chose nothing): "
                 f"eta {metrics.get('eta', math.nan):.2f}  median {metrics['median_mse']:.3e}"
                 + (f"  E0 MAE {metrics['e0_mae_ev']:.3f} eV" if "e0_mae_ev" in metrics else ""))
        return metrics

    def save_checkpoints(self, epoch: int, metrics: dict[str, float], improved: bool,
                         provenance: dict[str, Any]) -> None:
        """``last.pt`` and, when the epoch improved, ``best.pt`` (model_core format)."""
        checkpoint = make_checkpoint(self.config, self.eval_model.state_dict(), self.element, self.train_mean,
                                     self.e0_mean, self.e0_std, {"validation": metrics, "epoch": epoch},
                                     provenance, grid_origin_ev=self.grid_origin_ev)
        if improved:
            save_checkpoint(checkpoint, self.run_dir / "best.pt")
        save_checkpoint(checkpoint, self.run_dir / "last.pt")

    # -- the run -----------------------------------------------------------------

    def _broadcast_flag(self, flag: bool) -> bool:
        if not self.distributed:
            return flag
        import torch.distributed as dist

        value = torch.tensor([1.0 if flag else 0.0])
        dist.broadcast(value, src=0)
        return bool(value.item())

    def run(self) -> Path:
        """Train from ``start_epoch`` to ``optim.epochs`` (or early stopping / the time
        limit); return the path of ``best.pt``. Leaves the process group."""
        from torch_geometric.loader import DataLoader

        config, optim = self.config, self.config.optim
        train_model = self.model
        if self.distributed:
            train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.local_rank] if self.device.type == "cuda" else None)
        sampler = None
        if self.distributed:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(list(self.train_split.data), num_replicas=self.world, rank=self.rank,
                                         shuffle=True, seed=optim.seed)
        generator = torch.Generator()
        loader = DataLoader(list(self.train_split.data), batch_size=optim.batch_size,
                            shuffle=sampler is None, sampler=sampler, generator=generator, drop_last=False)
        provenance = {
            "run_name": config.name, "data_source": str(config.data.source),
            "n_train": len(self.train_split.ids), "n_val": len(self.val_split.ids),
            "n_report": len(self.report_split.ids),
            "config": to_dict(config), "world_size": self.world,
            "device": str(self.device), "init": self.init or "",
        }
        t_start = time.monotonic()
        stale = 0 if self.best_epoch < 0 else max(0, self.start_epoch - 1 - self.best_epoch)
        for epoch in range(self.start_epoch, optim.epochs):
            # The order of an epoch depends on the epoch alone, so a resumed run shuffles
            # as the uninterrupted one would have.
            generator.manual_seed(optim.seed + epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            t_epoch = time.monotonic()
            train_parts = self.train_epoch(epoch, train_model, loader)
            epoch_s = time.monotonic() - t_epoch
            record = {"epoch": epoch, "epoch_s": round(epoch_s, 2), "lr": self.optimizer.param_groups[0]["lr"],
                      **train_parts}
            val_mse = math.nan
            if self.rank == 0 and len(self.val_split.data) and (epoch + 1) % optim.eval_every == 0:
                metrics = self.validate()
                record.update({f"val_{k}": v for k, v in metrics.items()})
                # The selection metric also drives the plateau schedule and early stopping:
                # a dedicated E0 member is chosen by its edge energies, not its spectra.
                val_mse = metrics["mse"] if optim.select_on == "median_mse" else metrics[optim.select_on]
                score = metrics[optim.select_on]
                improved = score < self.best_score
                if improved:
                    self.best_score, self.best_epoch, stale = score, epoch, 0
                else:
                    stale += 1
                self.save_checkpoints(epoch, metrics, improved, provenance)
                self.log(f"epoch {epoch:3d}  {epoch_s:6.1f}s  train {train_parts.get('train_mse', 0):.3e}  "
                         f"val mse {metrics['mse']:.3e}  median {metrics['median_mse']:.3e}  "
                         f"eta {metrics['eta']:.2f}"
                         + (f"  E0 {metrics['e0_mae_ev']:.3f} eV" if "e0_mae_ev" in metrics else "")
                         + f"  lr {record['lr']:.1e}")
            elapsed = self.elapsed_before + time.monotonic() - t_start
            step_scheduler(self.scheduler, val_mse, self.distributed, elapsed)
            if self.rank == 0:
                with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                torch.save(self.state(epoch, elapsed), self.state_path)
            stop = stale >= optim.early_stopping_patience
            if optim.time_limit_min and elapsed / 60 >= optim.time_limit_min:
                self.log(f"time limit of {optim.time_limit_min} min reached after epoch {epoch}")
                stop = True
            if self._broadcast_flag(stop):
                if stale >= optim.early_stopping_patience:
                    self.log(f"early stopping: no improvement for {stale} epochs (best epoch {self.best_epoch})")
                break
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
        best = self.run_dir / "best.pt"
        self.log(f"done: best validation {self.config.optim.select_on} {self.best_score:.3e} "
                 f"at epoch {self.best_epoch}; {best}")
        if self.rank == 0:
            self.score_reporting_part(best)
        return best


def train(config: TrainConfig, *, resume: bool = False, init: str | None = None,
          init_member: int = 0, graph_overrides: Sequence[str] = (), log: Logger = print) -> Path:
    """Train a model; return the path of the best checkpoint.

    Args:
        config: the run configuration.
        resume: continue from ``train_state.pt`` in the run folder.
        init: a checkpoint (path or shipped model name) to fine-tune from; its model
            and graph configuration replace those of ``config``.
        init_member: which member of an ensemble ``init`` starts from.
        graph_overrides: explicit ``graph.*`` values that win over ``init``'s (see :class:`Trainer`).
        log: where progress lines go (rank 0 only).
    """
    trainer = Trainer(config, init=init, init_member=init_member, graph_overrides=graph_overrides, log=log)
    if resume:
        trainer.resume()
    return trainer.run()
