"""Learning-rate schedules and the weight average of the training loop."""

from __future__ import annotations

import math

import torch

from trainer.config import OptimConfig


class TimeCosine:
    """Cosine from each group's initial rate down to ``min_lr`` over ``limit_s`` seconds of
    training, set after each epoch from the elapsed time (resumed runs count their earlier
    time, so the curve continues where it stopped)."""

    def __init__(self, optimizer, limit_s: float, min_lr: float) -> None:
        self.optimizer, self.limit_s, self.min_lr = optimizer, float(limit_s), float(min_lr)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]

    def step(self, elapsed_s: float) -> None:
        fraction = min(max(elapsed_s / self.limit_s, 0.0), 1.0)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.min_lr + (base - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * fraction))

    def state_dict(self) -> dict:
        return {"base_lrs": list(self.base_lrs), "limit_s": self.limit_s, "min_lr": self.min_lr}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs = [float(v) for v in state["base_lrs"]]


def make_scheduler(optimizer, optim: OptimConfig):
    """The learning-rate schedule named by ``optim.schedule`` (stepped once per epoch)."""
    if optim.schedule == "cosine_time":
        return TimeCosine(optimizer, optim.time_limit_min * 60.0, optim.min_lr)
    if optim.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=optim.lr_factor, patience=optim.lr_patience, min_lr=optim.min_lr)
    # "cosine" (the only other name OptimConfig accepts): after the last epoch the rate
    # has reached min_lr; T_max counts the steps between.
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(optim.epochs - 1, 1), eta_min=optim.min_lr)


def _from_rank0(value: float, distributed: bool) -> float:
    """``value`` as rank 0 has it, on every process (itself when not distributed)."""
    if not distributed:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def step_scheduler(scheduler, val_mse: float, distributed: bool, elapsed_s: float = 0.0) -> None:
    """Advance the schedule by one epoch on every process (``elapsed_s``: the run's training
    time so far, which the time-based cosine follows).

    The plateau schedule needs the validation MSE, which only rank 0 computes: it is
    broadcast so that all processes lower their rate together (DistributedDataParallel
    averages gradients but each process steps its own optimizer).
    """
    if isinstance(scheduler, TimeCosine):
        # rank 0's clock, so that every process sets the same rate
        scheduler.step(_from_rank0(elapsed_s, distributed))
        return
    if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step()
        return
    val_mse = _from_rank0(val_mse, distributed)
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
