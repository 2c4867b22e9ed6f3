"""Training configuration: frozen dataclasses loaded from YAML, overridden by ``--set key=value``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import yaml

from model_core.config import (ConfigError, GraphConfig, ModelConfig, apply_overrides, check_choices,
                               from_dict, resolve_model_cutoff, to_dict)
from model_core.spectra.normalize import TargetMode

#: Names of the learning-rate schedules (see :class:`OptimConfig`).
Schedule = Literal["plateau", "cosine", "cosine_time"]
SCHEDULES: tuple[str, ...] = get_args(Schedule)
SelectOn = Literal["median_mse", "e0_mae_ev"]


@dataclass(frozen=True)
class DataConfig:
    """Where the training data comes from and how it is split and normalized.

    Attributes:
        source: dataset directory or archive (.tar.xz/.tar.gz/.zip); relative paths are
            resolved against the config file's folder, then the working directory.
        element: absorbing element ("" = infer from the data).
        edge: absorption edge.
        normalization: "feff" (FEFF's own normalization, post-edge ~1), "edge_step"
            (pre-edge 0, post-edge 1 by line/polynomial fits), "post_mean" or "none"
            (see :class:`model_core.spectra.normalize.TargetNormalization`).
        train_ids / val_ids: split files of record ids (relative to the source's
            ``splits/`` folder or a path); empty val_ids -> grouped random carve-out.
        extra_train_ids: further id files added to training (e.g. unscreened sites).
        val_fraction: fraction of groups held out when no val_ids is given.
        split_seed: seed of that carve-out (-1: ``optim.seed``). Fix it when training
            ensemble members with different ``optim.seed`` so they share one validation set.
        report_fraction: fraction of the validation groups (materials / complexes) set
            aside as a **reporting** part: epochs and members are chosen on the rest (the
            selection part) only, and the reporting part is scored once, at the end, so
            its numbers come from data that chose nothing. Groups are assigned by a hash
            of their name, so every member and every seed gets the same parts. 0: off.
        screen: drop unphysical spectra (reported in the run folder).
        cache_dir: where prepared datasets are cached.
    """

    source: str = ""
    element: str = ""
    edge: str = "K"
    normalization: TargetMode = "feff"
    train_ids: str = ""
    val_ids: str = ""
    extra_train_ids: tuple[str, ...] = ()
    val_fraction: float = 0.1
    split_seed: int = -1
    report_fraction: float = 0.0
    screen: bool = True
    cache_dir: str = "cache"

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0.0 <= self.report_fraction < 1.0:
            raise ConfigError(f"data.report_fraction: {self.report_fraction!r} is not in [0, 1)")


@dataclass(frozen=True)
class LossConfig:
    """Composite objective L = MSE + w1(t) MSE(dmu/dE) + w2(t) MSE(d2mu) + w_E0 |E0 error|.

    The derivative weights ramp linearly from 0 to their values over ``ramp_epochs``
    epochs starting at ``ramp_start_epoch`` (paper: from epoch 20 over 15 epochs).
    """

    lambda_d1: float = 1.0
    lambda_d2: float = 1.0
    ramp_start_epoch: int = 20
    ramp_epochs: int = 15
    lambda_e0: float = 0.01
    #: Scale c of a robust per-spectrum loss, c·log(1 + s/c) of each spectrum's MSE +
    #: derivative terms s (0 = their plain mean, the paper's objective).
    robust_scale: float = 0.0

    def __post_init__(self) -> None:
        if not self.robust_scale >= 0.0:
            raise ConfigError(f"loss.robust_scale: {self.robust_scale!r} must be >= 0")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + a learning-rate schedule + early stopping.

    Attributes:
        schedule: "plateau" (ReduceLROnPlateau on the validation MSE: ``lr_factor``,
            ``lr_patience``, ``min_lr``) or "cosine" (from ``lr`` down to ``min_lr`` over
            ``epochs`` epochs, whatever validation does: for a fixed budget, where a
            plateau schedule may not have lowered the rate before the budget ends) or
            "cosine_time" (the same curve over ``time_limit_min`` of training instead of
            over epochs: for a wall-clock budget on a machine whose epoch time is not
            known beforehand, such as a GPU lent for minutes).
        time_limit_min: stop (checkpointed, resumable) after this many minutes; 0 = none.
        num_threads: torch intra-op threads (0 = torch's default).
        ema_decay: keep an exponential moving average of the weights with this decay per
            step (0 = off); validation, ``best.pt`` and ``last.pt`` then use the averaged
            weights, which generalize better than the last step's on small datasets.
        select_on: the validation metric that picks ``best.pt`` and drives the plateau
            schedule and early stopping: "median_mse" (the spectrum) or "e0_mae_ev" (the
            edge energy, for dedicated E0 members; needs the E0 head).
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 16
    epochs: int = 200
    schedule: Schedule = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 5
    min_lr: float = 1e-5
    early_stopping_patience: int = 25
    grad_clip: float = 10.0
    seed: int = 0
    num_threads: int = 0
    time_limit_min: float = 0.0
    eval_every: int = 1
    ema_decay: float = 0.0
    select_on: SelectOn = "median_mse"

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    name: str = "run"
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML config, apply ``key=value`` overrides, resolve the data path.

    Checked here, before any work: every named choice (``optim.schedule``,
    ``data.normalization``, ``model.pooling``, ...), that the model's radial cutoff
    is the graph's edge radius (``model.r_max`` follows ``graph.r_max``; one given
    explicitly must agree) and that selecting on E0 has an E0 head.

    Raises:
        model_core.config.ConfigError: a bad value, named by its dotted field.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    config = from_dict(TrainConfig, data)
    if overrides:
        config = apply_overrides(config, overrides)
    model_section = data.get("model") if isinstance(data, dict) else None
    r_max_given = (isinstance(model_section, dict) and "r_max" in model_section) or any(
        item.split("=", 1)[0].strip() == "model.r_max" for item in overrides or ())
    config = replace(config, model=resolve_model_cutoff(config.model, config.graph, r_max_given))
    if config.optim.schedule == "cosine_time" and config.optim.time_limit_min <= 0:
        raise ConfigError("optim.schedule: 'cosine_time' needs optim.time_limit_min > 0")
    if config.optim.select_on == "e0_mae_ev" and not config.model.e0_head:
        raise ConfigError("optim.select_on: 'e0_mae_ev' needs the E0 head (model.e0_head: true)")
    source = config.data.source
    if source and not Path(source).is_absolute():
        candidate = (path.parent / source).resolve()
        if candidate.exists():
            config = apply_overrides(config, {"data.source": str(candidate)})
    return config


def dump_train_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config next to the run's checkpoints."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False), encoding="utf-8")
