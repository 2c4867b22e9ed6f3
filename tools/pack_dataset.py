"""Shrink a prepared dataset (.npz) for travel to a lent GPU machine, and restore it there.

A device call carries at most 64 MiB with the whole working tree, and a prepared Cu dataset
is ~24 MB compressed, half of it edge lists. Those follow from the node positions (every
ordered pair closer than the graph's r_max, ``model_core.graph.radius_edges``), so `pack`
drops them and `unpack` rebuilds them, checking the per-graph counts against the stored
offsets; `check` confirms on the full file that the rebuild is exact before anything travels.

Usage: python tools/pack_dataset.py pack|unpack|check SRC.npz [DST.npz]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model_core.graph import radius_edges  # noqa: E402


def rebuild_edges(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(2, E) int32 edge lists (node indices local to each graph) and (G + 1,) offsets."""
    graph = json.loads(str(arrays["meta_json"]))["graph_config"]
    if graph.get("max_neighbors", 0):
        raise ValueError("edges capped by max_neighbors cannot be rebuilt from positions alone")
    nodes = arrays["node_offsets"]
    parts = [radius_edges(arrays["pos"][nodes[g]:nodes[g + 1]], float(graph["r_max"]))
             for g in range(len(nodes) - 1)]
    counts = np.array([p.shape[1] for p in parts], dtype=np.int64)
    return np.concatenate(parts, axis=1).astype(np.int32), np.concatenate([[0], np.cumsum(counts)])


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("pack", "unpack", "check") or (argv[0] != "check" and len(argv) < 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    mode, src = argv[0], argv[1]
    try:
        arrays = dict(np.load(src, allow_pickle=False))
    except (OSError, ValueError) as exc:
        print(f"{src}: not a prepared dataset ({exc})", file=sys.stderr)
        return 1
    if mode == "pack":
        arrays.pop("edge_index", None)
        np.savez_compressed(argv[2], **arrays)
        return 0
    try:
        edges, offsets = rebuild_edges(arrays)
        if mode == "check" and "edge_index" not in arrays:
            raise ValueError("no edge lists to check (a packed file?)")
    except (KeyError, ValueError) as exc:
        print(f"{src}: cannot rebuild edges ({exc})", file=sys.stderr)
        return 1
    if mode == "check":
        same = np.array_equal(edges, arrays["edge_index"]) and np.array_equal(offsets, arrays["edge_offsets"])
        print(f"{src}: rebuilt edges {'identical' if same else 'DIFFER'}")
        return 0 if same else 1
    if not np.array_equal(offsets, arrays["edge_offsets"]):
        print(f"{src}: rebuilt edge counts differ from the stored offsets", file=sys.stderr)
        return 1
    arrays["edge_index"] = edges
    np.savez(argv[2], **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
