"""Time absorber-graph construction for every Fe site of a ~2,000-atom iron-oxide slab.

Usage::

    python benchmarks/graph_build.py                  # hematite slab, 1,920 atoms, 768 Fe
    python benchmarks/graph_build.py --system feo     # FeO rocksalt slab, 4,000 atoms, 2,000 Fe
    python benchmarks/graph_build.py --bulk           # fully periodic instead of a slab

Prints the structure size, the time of one batched ``build_graphs`` call, the
time of a loop of ``build_graph`` calls on a subset, and graph-size statistics.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import bulk
from ase.spacegroup import crystal

from model_core.config import GraphConfig
from model_core.graph import build_graph, build_graphs, graph_summary
from model_core.types import Structure


def hematite(repeat: tuple[int, int, int]):
    """alpha-Fe2O3 (corundum, R-3c) in its 30-atom hexagonal cell, repeated."""
    cell = crystal(["Fe", "O"], basis=[(0.0, 0.0, 0.3553), (0.3059, 0.0, 0.25)], spacegroup=167,
                   cellpar=[5.035, 5.035, 13.747, 90, 90, 120])
    return cell.repeat(repeat)


def feo(repeat: tuple[int, int, int]):
    """FeO rocksalt, conventional 8-atom cubic cell, repeated."""
    return bulk("FeO", "rocksalt", a=4.33, cubic=True).repeat(repeat)


def to_structure(atoms, slab: bool, vacuum: float = 15.0) -> Structure:
    if slab:
        # Non-periodic along c, with vacuum so the two surfaces are far apart.
        atoms = atoms.copy()
        atoms.center(vacuum=vacuum / 2, axis=2)
        atoms.pbc = (True, True, False)
    return Structure(atoms.numbers, atoms.positions, cell=np.array(atoms.cell[:]),
                     pbc=tuple(bool(p) for p in atoms.pbc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("hematite", "feo"), default="hematite")
    parser.add_argument("--bulk", action="store_true", help="periodic in 3D instead of a slab")
    parser.add_argument("--r-crop", type=float, default=6.0)
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best is reported)")
    args = parser.parse_args()

    atoms = hematite((4, 4, 4)) if args.system == "hematite" else feo((10, 10, 5))
    structure = to_structure(atoms, slab=not args.bulk)
    sites = structure.indices_of("Fe")
    config = GraphConfig(r_crop=args.r_crop, r_max=args.r_max)
    print(f"{args.system} {'bulk' if args.bulk else 'slab'}: {structure.n_atoms} atoms, "
          f"{len(sites)} Fe sites, pbc={structure.pbc}, r_crop={config.r_crop} Å, r_max={config.r_max} Å")

    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        graphs = build_graphs(structure, sites, config)
        best = min(best, time.perf_counter() - start)
    print(f"build_graphs, all {len(sites)} sites: {best:.3f} s "
          f"({1e3 * best / len(sites):.2f} ms/site)")

    subset = sites[:50]
    start = time.perf_counter()
    for site in subset:
        build_graph(structure, int(site), config)
    loop = time.perf_counter() - start
    print(f"build_graph loop, {len(subset)} sites: {loop:.3f} s ({1e3 * loop / len(subset):.2f} ms/site)")

    from model_core.sites import coordination_info

    start = time.perf_counter()
    coordination_info(structure)
    print(f"coordination_info (first shell of all {structure.n_atoms} atoms, the site table's): "
          f"{time.perf_counter() - start:.3f} s")

    summaries = [graph_summary(g) for g in graphs]
    nodes = np.array([s["n_nodes"] for s in summaries])
    edges = np.array([s["n_edges"] for s in summaries])
    print(f"nodes/graph: min {nodes.min()}, mean {nodes.mean():.1f}, max {nodes.max()}; "
          f"edges/graph: mean {edges.mean():.0f}, max {edges.max()}")


if __name__ == "__main__":
    main()
