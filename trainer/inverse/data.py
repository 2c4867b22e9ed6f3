"""Absorber-centred clusters with their spectra, for the inverse models.

The spectra are prepared exactly like the forward model's training targets:
:func:`trainer.data.dataset.prepare_dataset` with the forward training config's
normalization, screening and element, on the forward checkpoint's energy grid.
Its absorber-centred crops (:func:`model_core.graph.build_graphs`, periodic
images included, nodes sorted by distance) become the clusters; edges are not
needed, so the edge radius is set tiny. A prepared ``.npz`` (a cache of the forward
model's own preparation, say) is read as it is, edges and all, when its crop holds the
clusters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from model_core.config import EnergyGrid, GraphConfig
from model_core.inverse.clusters import ClusterSet

__all__ = ["build_cluster_set", "carve_out_cluster_sets", "clusters_from_prepared", "source_splits"]

# prepare_dataset builds edges below this radius; the clusters need none.
_NO_EDGES_A = 0.05


def clusters_from_prepared(dataset, radius_a: float) -> ClusterSet:
    """A :class:`ClusterSet` from a :class:`trainer.data.dataset.PreparedDataset`.

    Args:
        dataset: prepared with ``graph_config.r_crop >= radius_a``.
        radius_a: crop radius in Å.
    """
    counts = np.diff(dataset.node_offsets)
    width = int(counts.max())
    n = len(dataset)
    z = np.zeros((n, width), dtype=np.int16)
    pos = np.zeros((n, width, 3), dtype=np.float32)
    for i in range(n):
        lo, hi = int(dataset.node_offsets[i]), int(dataset.node_offsets[i + 1])
        z[i, :hi - lo] = dataset.z[lo:hi]
        pos[i, :hi - lo] = dataset.pos[lo:hi]
    full = ClusterSet(ids=np.asarray(dataset.ids).astype(str), energy_ev=np.asarray(dataset.energy_ev),
                      mu=np.asarray(dataset.mu, dtype=np.float32), z=z, pos=pos,
                      radius_a=float(dataset.meta.get("graph_config", {}).get("r_crop", radius_a)))
    return full.crop(radius_a) if radius_a < full.radius_a else full


def _graph_config(source: str | Path, radius_a: float) -> GraphConfig:
    """The crop to prepare: ``radius_a`` without edges, or a prepared ``.npz``'s own graph
    config (prepare_dataset refuses a file prepared otherwise)."""
    if not str(source).lower().endswith(".npz"):
        return GraphConfig(r_crop=float(radius_a), r_max=_NO_EDGES_A)
    try:
        with np.load(source, allow_pickle=False) as arrays:
            graph = json.loads(str(arrays["meta_json"]))["graph_config"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{source}: not a prepared dataset ({exc})") from exc
    if float(graph["r_crop"]) < radius_a:
        raise ValueError(f"{source}: prepared with a {graph['r_crop']} Å crop, the clusters need {radius_a} Å")
    return GraphConfig(**graph)


def source_splits(source: str | Path) -> dict[str, list[str]]:
    """The named id lists of a source (``splits/*.txt``), also of a prepared ``.npz``, which keeps them."""
    if not str(source).lower().endswith(".npz"):
        from trainer.data.sources import read_splits

        return read_splits(source)
    from trainer.data.dataset import PreparedDataset

    return PreparedDataset.load(source)[0].splits


def _prepare(source, grid, radius_a, ids, normalization, screen, element, cache_dir, progress):
    from trainer.data.dataset import prepare_dataset

    dataset, _report = prepare_dataset(
        source, grid=grid, graph_config=_graph_config(source, radius_a), normalization=normalization,
        screen=screen, element=element, cache_dir=cache_dir, progress=progress, ids=ids)
    return dataset


def build_cluster_set(source: str | Path, ids: Sequence[str], grid: EnergyGrid, radius_a: float, *,
                      normalization: str = "feff", screen: bool = True, element: str | None = "Cu",
                      cache_dir: str | Path | None = None, progress: bool = False) -> ClusterSet:
    """Clusters of radius ``radius_a`` for the records ``ids`` of a source, in that order.

    Records dropped by screening or unreadable are missing from the result
    (compare ``len``); the preparation is cached in ``cache_dir``.
    """
    dataset = _prepare(source, grid, radius_a, sorted(set(ids)), normalization, screen, element, cache_dir,
                       progress)
    return clusters_from_prepared(dataset.subset(ids), radius_a)


def carve_out_cluster_sets(source: str | Path, grid: EnergyGrid, radius_a: float, *, val_fraction: float,
                           split_seed: int, normalization: str = "edge_step", screen: bool = True,
                           element: str | None = None, cache_dir: str | Path | None = None,
                           progress: bool = False) -> tuple[ClusterSet, ClusterSet]:
    """(train, validation) clusters of the grouped random carve-out the forward trainer makes
    without split files (:func:`trainer.splits.split_indices` with ``val_fraction`` and
    ``split_seed``): every usable record of the source is prepared, so with the forward
    config's screening and seed the two parts are exactly the forward model's."""
    from trainer.config import DataConfig, TrainConfig
    from trainer.splits import split_indices

    dataset = _prepare(source, grid, radius_a, None, normalization, screen, element, cache_dir, progress)
    carve = TrainConfig(data=DataConfig(source=str(source), val_fraction=float(val_fraction),
                                        split_seed=int(split_seed)))
    train_rows, val_rows = split_indices(carve, dataset.ids, dataset.group_ids)
    everything = clusters_from_prepared(dataset, radius_a)
    return everything.take(train_rows), everything.take(val_rows)
