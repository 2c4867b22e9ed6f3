"""Training and validation splits: which records, and as torch-geometric examples.

:func:`split_indices` picks the records (given id lists or a grouped, seeded carve-out;
a material never straddles the two), :func:`training_examples` turns rows of a
:class:`~trainer.data.dataset.PreparedDataset` into ``Data`` objects with targets and
:func:`load_splits` does both for a :class:`~trainer.config.TrainConfig`.
:func:`reporting_split` sets part of the validation groups aside for reporting only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from trainer.config import TrainConfig

Logger = Callable[[str], None]


@dataclass(frozen=True)
class SplitData:
    """Prepared examples of one split.

    Attributes:
        ids: (N,) record ids.
        data: N torch-geometric ``Data`` (see :func:`training_examples`).
        mu: (N, G) normalized target spectra.
    """

    ids: tuple[str, ...]
    data: tuple
    mu: np.ndarray


def training_examples(dataset, indices: np.ndarray, e0_mean: float, e0_std: float) -> SplitData:
    """Rows ``indices`` of a prepared dataset as training examples.

    Each ``Data`` is :func:`model_core.batching.graph_to_data` of the row's graph plus
    ``y`` (1, G) float32 normalized spectrum and ``e0`` (1,) float32 standardized E0,
    ``(e0_abs - e0_mean) / e0_std`` (NaN where E0 is unknown or there is no spread).
    """
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


def is_reporting_group(group: str, fraction: float) -> bool:
    """Whether a group (material / complex) belongs to the reporting part.

    Decided by a hash of the group's name alone, so the parts do not depend on the seed,
    the order of the records or which other groups are present.
    """
    digest = hashlib.sha256(str(group).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction


def reporting_split(val_idx: np.ndarray, group_ids: Sequence[str],
                    fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(selection, reporting) indices of the validation records, grouped.

    The selection part chooses epochs and ensemble members; the reporting part is only
    scored (see ``DataConfig.report_fraction``). ``fraction`` 0 keeps everything for selection.
    """
    val_idx = np.asarray(val_idx, dtype=int)
    if fraction <= 0 or len(val_idx) == 0:
        return val_idx, np.array([], dtype=int)
    reporting = np.array([is_reporting_group(str(group_ids[k]), fraction) for k in val_idx], dtype=bool)
    return val_idx[~reporting], val_idx[reporting]


def load_splits(config: TrainConfig, log: Logger = print):
    """Prepare (cached) data and return (train, val, dataset, report, e0 mean, e0 std, reporting).

    ``val`` is the selection part of the validation split and ``reporting`` the part set
    aside by ``data.report_fraction`` (empty when that is 0).
    """
    from trainer.data.dataset import prepare_dataset

    dataset, report = prepare_dataset(
        config.data.source, grid=config.model.grid, graph_config=config.graph,
        normalization=config.data.normalization, screen=config.data.screen,
        element=config.data.element or None, cache_dir=config.data.cache_dir, progress=True)
    log(report.summary())
    train_idx, val_idx = split_indices(config, dataset.ids, dataset.group_ids, dataset.splits)
    val_idx, report_idx = reporting_split(val_idx, dataset.group_ids, config.data.report_fraction)
    e0 = np.asarray(dataset.e0_abs, dtype=np.float64)[train_idx] if dataset.e0_abs is not None else np.array([])
    e0 = e0[np.isfinite(e0)]
    e0_mean = float(e0.mean()) if len(e0) else math.nan
    e0_std = float(max(e0.std(), 0.1)) if len(e0) else math.nan
    train = training_examples(dataset, train_idx, e0_mean, e0_std)
    val = training_examples(dataset, val_idx, e0_mean, e0_std)
    reporting = training_examples(dataset, report_idx, e0_mean, e0_std)
    log(f"split: {len(train.ids)} train / {len(val.ids)} validation"
        + (f" (selection) / {len(reporting.ids)} reporting" if len(reporting.ids) else ""))
    return train, val, dataset, report, e0_mean, e0_std, reporting
