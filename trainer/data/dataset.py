"""Graph-ready training sets, prepared once and cached on disk.

:func:`prepare_dataset` reads a source (:mod:`trainer.data.sources`), normalizes
and interpolates every spectrum to the model grid, screens it
(:mod:`trainer.data.preprocess`), builds the absorber graphs
(:func:`model_core.graph.build_graphs`, once per structure for all its sites)
and returns a :class:`PreparedDataset`.

Cache: one ``.npz`` of plain arrays (no pickled objects; ``allow_pickle=False``)
in ``cache_dir``, named ``<source stem>-<key>.npz`` where the key hashes the
source (path, size, modification time), grid, graph config, normalization,
screening settings, element and :data:`CODE_VERSION`. Graphs are stored
concatenated with offsets; edge vectors are not stored but recomputed from the
positions (``pos[target] - pos[source]``, their definition), which halves the
file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from model_core.config import EnergyGrid, GraphConfig
from model_core.graph import AbsorberGraph, build_graphs
from model_core.spectra.normalize import TargetNormalization
from trainer.data.preprocess import PreprocessError, ScreenCriteria, prepare_record
from trainer.data.records import SpectrumRecord
from trainer.data.sources import LoadReport, iter_records, open_source, read_splits, source_fingerprint

__all__ = ["CODE_VERSION", "PreparedDataset", "prepare_dataset"]

#: Bump whenever parsing, preprocessing or graph storage changes what a cache holds.
CODE_VERSION = "data-3"  # data-3: meta["grid_origin_ev"]


@dataclass(eq=False)
class PreparedDataset:
    """N prepared examples: normalized spectra on one grid plus absorber graphs.

    Attributes:
        ids: (N,) record ids (str).
        group_ids: (N,) material / complex ids (str) for grouped splits.
        energy_ev: (G,) grid energies, eV relative to the edge.
        mu: (N, G) float32 normalized spectra on the grid.
        e0_abs: (N,) float64 absolute E0 targets in eV (NaN where unknown).
        site_index: (N,) int64 absorber index in each record's structure.
        node_offsets: (N+1,) int64; graph i's nodes are ``node_offsets[i]:node_offsets[i+1]``.
        edge_offsets: (N+1,) int64; likewise for edges.
        z: (sum n,) int64 atomic numbers of all nodes.
        pos: (sum n, 3) float64 node positions in Å (absorber at the origin).
        edge_index: (2, sum e) int32 per-graph (local) node indices (source, target).
        atom_index: (sum n,) int32 index of each node's atom in its structure.
        image: (sum n, 3) int16 periodic image of each node.
        splits: named id lists found in the source (``splits/*.txt``).
        meta: provenance (source, grid, graph config, normalization, code version).
    """

    ids: np.ndarray
    group_ids: np.ndarray
    energy_ev: np.ndarray
    mu: np.ndarray
    e0_abs: np.ndarray
    site_index: np.ndarray
    node_offsets: np.ndarray
    edge_offsets: np.ndarray
    z: np.ndarray
    pos: np.ndarray
    edge_index: np.ndarray
    atom_index: np.ndarray
    image: np.ndarray
    splits: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._row = {str(rid): i for i, rid in enumerate(self.ids)}

    def __len__(self) -> int:
        return int(len(self.ids))

    def graph(self, i: int) -> AbsorberGraph:
        """The :class:`AbsorberGraph` of row ``i`` (absorber = node 0)."""
        n0, n1 = int(self.node_offsets[i]), int(self.node_offsets[i + 1])
        e0, e1 = int(self.edge_offsets[i]), int(self.edge_offsets[i + 1])
        pos = self.pos[n0:n1]
        edge_index = self.edge_index[:, e0:e1].astype(np.int64)
        mask = np.zeros(n1 - n0, dtype=bool)
        mask[0] = True
        return AbsorberGraph(
            atomic_numbers=self.z[n0:n1].astype(np.int64), positions=pos, edge_index=edge_index,
            edge_vectors=pos[edge_index[1]] - pos[edge_index[0]], absorber_mask=mask,
            atom_index=self.atom_index[n0:n1].astype(np.int64),
            image=self.image[n0:n1].astype(np.int64), site_index=int(self.site_index[i]))

    @property
    def graphs(self) -> "_GraphList":
        """Lazy sequence of all graphs (built on access)."""
        return _GraphList(self)

    def subset(self, ids: Iterable[str], strict: bool = False) -> "PreparedDataset":
        """The rows of ``ids`` in that order.

        Args:
            ids: record ids.
            strict: raise KeyError for ids not in the dataset (default: skip them,
                e.g. records removed by screening; compare ``len``).
        """
        rows = []
        for rid in ids:
            row = self._row.get(str(rid))
            if row is None:
                if strict:
                    raise KeyError(f"record {rid!r} is not in the dataset")
                continue
            rows.append(row)
        return self.take(np.asarray(rows, dtype=np.int64))

    def take(self, rows: np.ndarray) -> "PreparedDataset":
        """A dataset of the given rows (graph arrays re-packed)."""
        rows = np.asarray(rows, dtype=np.int64)
        node_counts = np.diff(self.node_offsets)[rows]
        edge_counts = np.diff(self.edge_offsets)[rows]
        node_sel = _ranges(self.node_offsets[rows], node_counts)
        edge_sel = _ranges(self.edge_offsets[rows], edge_counts)
        return PreparedDataset(
            ids=self.ids[rows], group_ids=self.group_ids[rows], energy_ev=self.energy_ev,
            mu=self.mu[rows], e0_abs=self.e0_abs[rows], site_index=self.site_index[rows],
            node_offsets=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
            edge_offsets=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
            z=self.z[node_sel], pos=self.pos[node_sel], edge_index=self.edge_index[:, edge_sel],
            atom_index=self.atom_index[node_sel], image=self.image[node_sel],
            splits=self.splits, meta=dict(self.meta))

    # -- storage ---------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (no object arrays)."""
        names = sorted(self.splits)
        split_ids = [str(i) for n in names for i in self.splits[n]]
        split_offsets = np.cumsum([0] + [len(self.splits[n]) for n in names]).astype(np.int64)
        return {
            "ids": self.ids.astype(str), "group_ids": self.group_ids.astype(str),
            "energy_ev": self.energy_ev, "mu": self.mu, "e0_abs": self.e0_abs,
            "site_index": self.site_index, "node_offsets": self.node_offsets,
            "edge_offsets": self.edge_offsets, "z": self.z, "pos": self.pos,
            "edge_index": self.edge_index, "atom_index": self.atom_index, "image": self.image,
            "split_names": np.array(names, dtype=str), "split_ids": np.array(split_ids, dtype=str),
            "split_offsets": split_offsets, "meta_json": np.array(json.dumps(self.meta)),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> "PreparedDataset":
        names = [str(n) for n in arrays["split_names"]]
        offsets = arrays["split_offsets"]
        split_ids = arrays["split_ids"]
        splits = {n: [str(i) for i in split_ids[offsets[k]:offsets[k + 1]]] for k, n in enumerate(names)}
        return cls(
            ids=np.asarray(arrays["ids"]), group_ids=np.asarray(arrays["group_ids"]),
            energy_ev=np.asarray(arrays["energy_ev"]), mu=np.asarray(arrays["mu"]),
            e0_abs=np.asarray(arrays["e0_abs"]), site_index=np.asarray(arrays["site_index"]),
            node_offsets=np.asarray(arrays["node_offsets"]), edge_offsets=np.asarray(arrays["edge_offsets"]),
            z=np.asarray(arrays["z"]), pos=np.asarray(arrays["pos"]),
            edge_index=np.asarray(arrays["edge_index"]), atom_index=np.asarray(arrays["atom_index"]),
            image=np.asarray(arrays["image"]), splits=splits,
            meta=json.loads(str(arrays["meta_json"])))

    def save(self, path: str | Path, report: LoadReport | None = None) -> Path:
        """Write an ``.npz`` atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = self.to_arrays()
        if report is not None:
            arrays.update(_report_arrays(report))
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> tuple["PreparedDataset", LoadReport | None]:
        """Read an ``.npz`` written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
        report = _report_from_arrays(data) if "report_problems" in data else None
        return cls.from_arrays(data), report


class _GraphList(Sequence):
    def __init__(self, dataset: PreparedDataset):
        self._dataset = dataset

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._dataset.graph(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._dataset.graph(i)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each (start, count)."""
    if len(counts) == 0 or counts.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    total = int(counts.sum())
    ends = np.cumsum(counts)
    offsets = np.repeat(starts - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + offsets


def _report_arrays(report: LoadReport) -> dict[str, np.ndarray]:
    return {
        "report_source": np.array(report.source),
        "report_problems": np.array(report.problems, dtype=str).reshape(-1, 2),
        "report_dropped": np.array(report.dropped, dtype=str).reshape(-1, 2),
        "report_n_loaded": np.array(report.n_loaded),
        "report_methods": np.array(json.dumps(report.normalization_methods)),
    }


def _report_from_arrays(data: dict[str, np.ndarray]) -> LoadReport:
    return LoadReport(
        source=str(data["report_source"]),
        problems=[(str(a), str(b)) for a, b in data["report_problems"]],
        dropped=[(str(a), str(b)) for a, b in data["report_dropped"]],
        n_loaded=int(data["report_n_loaded"]),
        normalization_methods=json.loads(str(data["report_methods"])))


# ---------------------------------------------------------------------------
# Preparation
# ---------------------------------------------------------------------------

def cache_key(source: str | Path, grid: EnergyGrid, graph_config: GraphConfig,
              normalization: TargetNormalization, screen: bool, criteria: ScreenCriteria,
              element: str | None, tolerance_ev: float, ids: Iterable[str] | None = None) -> str:
    """Hex digest identifying one preparation (see the module docstring)."""
    payload = {
        "source": source_fingerprint(source), "grid": dataclasses.asdict(grid),
        "graph": dataclasses.asdict(graph_config), "normalization": dataclasses.asdict(normalization),
        "screen": bool(screen), "criteria": dataclasses.asdict(criteria) if screen else None,
        "element": element, "tolerance_ev": tolerance_ev, "code": CODE_VERSION,
        "ids": None if ids is None else sorted(str(i) for i in ids),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()


def _source_stem(source: str | Path) -> str:
    name = Path(str(source)).name
    for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def prepare_dataset(source: str | Path, grid: EnergyGrid, graph_config: GraphConfig = GraphConfig(),
                    normalization: TargetNormalization | str = "edge_step", screen: bool = True,
                    element: str | None = None, cache_dir: str | Path | None = None,
                    progress: bool = True, criteria: ScreenCriteria = ScreenCriteria(),
                    tolerance_ev: float = 2.5, ids: Iterable[str] | None = None,
                    ) -> tuple[PreparedDataset, LoadReport]:
    """Read, preprocess, screen and graph a source; cached when ``cache_dir`` is given.

    Args:
        source: directory or archive (see :mod:`trainer.data.sources`), or a prepared
            ``.npz`` written by :meth:`PreparedDataset.save` (a cache file copied elsewhere).
        grid: model energy grid (eV relative to the edge).
        graph_config: crop / edge radii for :func:`model_core.graph.build_graphs`.
        normalization: a :class:`TargetNormalization` or just its mode name.
        screen: apply :func:`trainer.data.preprocess.screen_spectrum`.
        element: absorbing element (filter for FEFF, absorber for FDMNES).
        cache_dir: where the ``.npz`` cache and the ``-report.csv`` of unreadable and
            dropped records go (None: no cache).
        progress: tqdm progress bars.
        criteria: screening thresholds.
        tolerance_ev: how far the grid may reach beyond a spectrum (edge hold).
        ids: only these record ids (None: all).

    Returns:
        (dataset, report). Records that could not be read, normalized, covered by
        the grid or that failed screening are in the report, not the dataset.

    Raises:
        ValueError: the source cannot be opened or yields no usable record.
    """
    if isinstance(normalization, str):
        normalization = TargetNormalization(mode=normalization)
    ids = None if ids is None else list(ids)
    if str(source).lower().endswith(".npz"):
        return _load_prepared(Path(source), grid, graph_config, normalization, element, ids)
    cache_path = None
    if cache_dir is not None:
        key = cache_key(source, grid, graph_config, normalization, screen, criteria, element,
                        tolerance_ev, ids)
        cache_path = Path(cache_dir) / f"{_source_stem(source)}-{key[:16]}.npz"
        if cache_path.exists():
            try:
                dataset, report = PreparedDataset.load(cache_path)
                return dataset, (report if report is not None else LoadReport(source=str(source)))
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache: rebuild it below

    started = time.time()
    report = LoadReport(source=str(source))
    kept: list[tuple[SpectrumRecord, np.ndarray]] = []
    methods: Counter[str] = Counter()
    with open_source(source) as tree:
        splits = read_splits(tree)
        iterator: Iterable[SpectrumRecord] = iter_records(tree, report, element, ids)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc=f"reading {_source_stem(source)}", unit="rec")
        for record in iterator:
            try:
                mu, info = prepare_record(record, grid, normalization, criteria if screen else None,
                                          tolerance_ev)
            except PreprocessError as exc:
                report.add_dropped(record.record_id, str(exc))
                continue
            pre_kind = info.get("pre_kind", "line")
            methods[info["method"] if pre_kind == "line" else f"{info['method']} ({pre_kind})"] += 1
            kept.append((record, mu))
    report.normalization_methods = dict(methods)
    if not kept:
        raise ValueError(f"{source}: no usable record\n{report.summary()}")

    graphs = _build_all_graphs([r for r, _ in kept], graph_config, report, progress)
    rows = [(r, mu, graphs[i]) for i, (r, mu) in enumerate(kept) if graphs[i] is not None]
    dataset = _assemble(rows, grid, splits, meta={
        "source": str(source), "grid": dataclasses.asdict(grid),
        "graph_config": dataclasses.asdict(graph_config),
        "normalization": dataclasses.asdict(normalization), "screen": screen, "element": element,
        "code_version": CODE_VERSION, "prepared_s": round(time.time() - started, 1),
        "grid_origin_ev": grid_origin([r for r, _, _ in rows])})
    if cache_path is not None:
        dataset.save(cache_path, report)
        report.write_csv(cache_path.with_name(cache_path.stem + "-report.csv"))
    return dataset, report


def _load_prepared(path: Path, grid: EnergyGrid, graph_config: GraphConfig,
                   normalization: TargetNormalization, element: str | None,
                   ids: list[str] | None) -> tuple[PreparedDataset, LoadReport]:
    """A dataset prepared earlier (a cache ``.npz`` copied elsewhere, e.g. to a GPU machine
    without the raw data), checked against the requested grid, graph and normalization so
    that a model is never trained on a preparation it was not configured for."""
    if not path.is_file():
        raise ValueError(f"{path}: no such prepared dataset")
    try:
        dataset, report = PreparedDataset.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: not a prepared dataset ({exc})") from exc
    meta = dataset.meta
    expected = {"grid": dataclasses.asdict(grid), "graph_config": dataclasses.asdict(graph_config),
                "normalization": dataclasses.asdict(normalization)}
    for key, want in expected.items():
        have = meta.get(key)
        # The meta came from JSON; the round trip gives `want` the same lists-for-tuples form.
        if have is not None and have != json.loads(json.dumps(want, default=list)):
            raise ValueError(f"{path}: prepared with {key} {have}, but the configuration asks for {want}")
    if element and meta.get("element") and str(meta["element"]) != element:
        raise ValueError(f"{path}: prepared for element {meta['element']}, not {element}")
    if ids is not None:
        dataset = dataset.subset(ids)
    return dataset, (report if report is not None else LoadReport(source=str(path)))


def _build_all_graphs(records: list[SpectrumRecord], config: GraphConfig, report: LoadReport,
                      progress: bool) -> list[AbsorberGraph | None]:
    """Graphs of all records, one neighbour search per structure (records share
    the same Structure object when they come from one material)."""
    by_structure: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        by_structure.setdefault(id(record.structure), []).append(i)
    graphs: list[AbsorberGraph | None] = [None] * len(records)
    groups: Iterable[list[int]] = by_structure.values()
    if progress:
        from tqdm import tqdm

        groups = tqdm(list(groups), desc="graphs", unit="struct")
    for rows in groups:
        structure = records[rows[0]].structure
        try:
            built = build_graphs(structure, [records[i].site_index for i in rows], config)
        except (ValueError, IndexError, TypeError, MemoryError) as exc:
            for i in rows:
                report.add_dropped(records[i].record_id, f"graph failed: {exc}")
            continue
        for i, graph in zip(rows, built):
            if graph.n_nodes < 2:
                report.add_dropped(records[i].record_id,
                                   f"graph failed: no neighbour within r_crop={config.r_crop} Å")
                continue
            graphs[i] = graph
    return graphs


def grid_origin(records: Sequence[SpectrumRecord]) -> float | None:
    """The one fixed energy the records' relative energies are given against, or None.

    FEFF gives each site's energies against its own edge energy, which is also its E0
    target (None: a prediction goes on the absolute axis at its predicted E0). FDMNES
    gives them against the tabulated edge (7112 eV for every Fe complex) while E0 is the
    Fermi level, so the grid's zero is that constant and not E0.
    """
    edges = [r.metadata.get("e_edge_ev") for r in records]
    if not records or any(e is None for e in edges):
        return None
    edges = np.asarray(edges, dtype=np.float64)
    e0 = np.array([np.nan if r.e0_abs_ev is None else r.e0_abs_ev for r in records], dtype=np.float64)
    if np.all(np.abs(edges - e0) < 1e-6):
        return None
    if np.ptp(edges) < 1e-6:
        return float(edges[0])
    return None  # mixed references: each site's own E0 is the nearest thing to its zero


def _assemble(rows: list[tuple[SpectrumRecord, np.ndarray, AbsorberGraph]], grid: EnergyGrid,
              splits: dict[str, list[str]], meta: dict[str, Any]) -> PreparedDataset:
    node_counts = np.array([g.n_nodes for _, _, g in rows], dtype=np.int64)
    edge_counts = np.array([g.n_edges for _, _, g in rows], dtype=np.int64)
    if len(rows) and node_counts.max() > np.iinfo(np.int32).max:
        raise ValueError("graph too large to store")
    return PreparedDataset(
        ids=np.array([r.record_id for r, _, _ in rows], dtype=str),
        group_ids=np.array([r.group_id for r, _, _ in rows], dtype=str),
        energy_ev=grid.energy_ev,
        mu=np.stack([mu for _, mu, _ in rows]).astype(np.float32),
        e0_abs=np.array([np.nan if r.e0_abs_ev is None else r.e0_abs_ev for r, _, _ in rows], dtype=np.float64),
        site_index=np.array([r.site_index for r, _, _ in rows], dtype=np.int64),
        node_offsets=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
        edge_offsets=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
        z=np.concatenate([g.atomic_numbers for _, _, g in rows]).astype(np.int64),
        pos=np.concatenate([g.positions for _, _, g in rows]).astype(np.float64),
        edge_index=np.concatenate([g.edge_index for _, _, g in rows], axis=1).astype(np.int32),
        atom_index=np.concatenate([g.atom_index for _, _, g in rows]).astype(np.int32),
        image=np.concatenate([g.image for _, _, g in rows]).astype(np.int16),
        splits=splits, meta=meta)
