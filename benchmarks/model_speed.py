"""Forward + backward time of XANE(3) per batch on CPU.

Batches of random absorber-centred graphs (default 16 graphs of ~80 nodes with
~25 neighbours each within r_max = 5 Å: random positions in a 6 Å sphere with a
minimum interatomic distance of ~1.8 Å).

Usage::

    python benchmarks/model_speed.py [--threads 2] [--repeats 5] [--graphs 16] [--nodes 80]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from model_core.config import ModelConfig
from model_core.nn.model import XANE3, count_parameters


def random_cluster(rng: np.random.Generator, n_nodes: int, radius: float = 6.0,
                   min_dist: float = 1.8, r_max: float = 5.0) -> Data:
    """One random graph: absorber at the origin, other atoms by rejection sampling."""
    pos = [np.zeros(3)]
    while len(pos) < n_nodes:
        p = rng.uniform(-radius, radius, size=3)
        if np.linalg.norm(p) > radius:
            continue
        if np.min(np.linalg.norm(np.asarray(pos) - p, axis=1)) < min_dist:
            continue
        pos.append(p)
    pos = np.asarray(pos)
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    src, dst = np.nonzero((dist < r_max) & (dist > 0))
    z = rng.choice([8, 26], size=n_nodes)
    z[0] = 26
    mask = np.zeros(n_nodes, dtype=bool)
    mask[0] = True
    pos_t = torch.tensor(pos, dtype=torch.float32)
    edge_index = torch.tensor(np.stack([src, dst]), dtype=torch.long)
    return Data(z=torch.tensor(z), pos=pos_t, edge_index=edge_index,
                edge_vec=pos_t[edge_index[1]] - pos_t[edge_index[0]],
                absorber_mask=torch.tensor(mask), num_nodes=n_nodes)


def time_model(config: ModelConfig, batch: Batch, repeats: int) -> tuple[float, float]:
    """(median, min) seconds of forward + backward (+ zero_grad) per batch."""
    model = XANE3(config).train()
    target = torch.zeros(batch.num_graphs, config.grid.n_points)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        out = model(batch)
        loss = torch.nn.functional.mse_loss(out["mu"], target)
        if out["e0"] is not None:
            loss = loss + out["e0"].pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        if i > 0:  # first call includes one-off setup
            times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-full", action="store_true", help="skip the slow full (uvw) variant")
    parser.add_argument("--graphs", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=80)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    batch = Batch.from_data_list([random_cluster(rng, args.nodes) for _ in range(args.graphs)])
    print(f"batch: {batch.num_graphs} graphs, {batch.num_nodes} nodes, {batch.edge_index.shape[1]} edges "
          f"({batch.edge_index.shape[1] / batch.num_nodes:.1f} neighbours/node), {args.threads} threads")
    variants = {
        "paper  32x0e+16x1o+8x2e, 4 blocks, uvu": ModelConfig(),
        "compact 32x0e+8x1o+4x2e, 3 blocks, uvu": ModelConfig(vector_channels=8, tensor_channels=4, num_blocks=3),
        "scalar_only 32x0e, 4 blocks": ModelConfig(l_max=0),
        "scalar_only 63x0e, 4 blocks": ModelConfig(l_max=0, scalar_channels=63),
        "paper size, full (uvw) tensor product": ModelConfig(tensor_product="full"),
    }
    if args.skip_full:
        variants = {k: v for k, v in variants.items() if "full" not in k}
    for name, config in variants.items():
        median, best = time_model(config, batch, args.repeats)
        params = count_parameters(XANE3(config))
        print(f"{name:42s} params {params:9,d}   fwd+bwd median {median:.3f} s/batch (min {best:.3f})")


if __name__ == "__main__":
    main()
