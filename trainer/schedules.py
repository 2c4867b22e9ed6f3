"""Learning-rate schedules and the weight average of the training loop."""

from __future__ import annotations

import math

import torch

from trainer.config import OptimConfig


def make_scheduler(optimizer, optim: OptimConfig):
    """The learning-rate schedule named by ``optim.schedule`` (stepped once per epoch)."""
    if optim.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=optim.lr_factor, patience=optim.lr_patience, min_lr=optim.min_lr)
    # "cosine" (the only other name OptimConfig accepts): after the last epoch the rate
    # has reached min_lr; T_max counts the steps between.
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(optim.epochs - 1, 1), eta_min=optim.min_lr)


def step_scheduler(scheduler, val_mse: float, distributed: bool) -> None:
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


def ema_with_warmup(decay: float):
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
