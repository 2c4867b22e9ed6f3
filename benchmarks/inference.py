"""Per-site inference latency: a small crystal and every Fe site of a ~2,000-atom slab.

Prints numbers; targets on the 2-core CI machine: <= 50 ms per site after warm-up, the
slab in <= 10 s. Runs on CPU and, when present, on the GPU. On CPU it also prints the cost
of the trust extras: the domain score (prediction with and without the model's domain
index; target: at most 20% slower) and one occlusion attribution of one site.

    python benchmarks/inference.py [--model NAME_OR_PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def hematite_slab(repeats=(6, 6, 2), vacuum_ang: float = 15.0):
    """A 2D-periodic alpha-Fe2O3 (0001) slab built from the conventional cell (30 atoms/cell)."""
    from pymatgen.core import Lattice, Structure as PmgStructure

    lattice = Lattice.hexagonal(5.035, 13.747)
    bulk = PmgStructure.from_spacegroup("R-3c", lattice, ["Fe", "O"], [[0, 0, 0.35530], [0.3059, 0, 0.25]])
    slab = bulk * repeats
    matrix = slab.lattice.matrix.copy()
    matrix[2] = matrix[2] + np.array([0.0, 0.0, vacuum_ang])
    from model_core.types import Structure

    return Structure(atomic_numbers=[s.specie.Z for s in slab], positions=slab.cart_coords, cell=matrix,
                     pbc=(True, True, False), name="Fe2O3 slab")


def small_crystal():
    """Cu2O (cuprite), 6 atoms."""
    from model_core.types import Structure

    a = 4.2685
    frac = np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75],
                     [0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure(atomic_numbers=[29, 29, 29, 29, 8, 8], positions=frac * a, cell=np.eye(3) * a,
                     pbc=(True, True, True), name="Cu2O")


def placeholder_model(element: str, folder: Path) -> str:
    """An untrained checkpoint of the default (paper-size) architecture: timing only."""
    from model_core.checkpoint import Checkpoint, save_checkpoint
    from model_core.config import GraphConfig, ModelConfig

    path = folder / f"{element}.pt"
    save_checkpoint(Checkpoint(ModelConfig(), GraphConfig(), None, element=element), path)
    return str(path)


def time_sites(predictor, structure, sites, repeats: int = 3) -> float:
    predictor.predict(structure, sites[: min(len(sites), 4)])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(structure, sites)
        best = min(best, time.perf_counter() - start)
    return best


def trust_costs(predictor, structure, sites, label: str) -> None:
    """Print the domain score's share of the prediction time and one site's attribution time."""
    import dataclasses

    from model_core.inference import XanesPredictor
    from model_core.trust.attribution import site_attribution

    if predictor.domain_index is not None:
        bare = XanesPredictor(dataclasses.replace(predictor.checkpoint, domain_index=None), predictor.info.name,
                              device=predictor.info.device)
        # Interleaved best-of-three, so load from other processes hits both alike.
        pairs = [(time_sites(predictor, structure, sites, repeats=1), time_sites(bare, structure, sites, repeats=1))
                 for _ in range(3)]
        with_score, without = min(p[0] for p in pairs), min(p[1] for p in pairs)
        print(f"  {label}: domain score adds {100 * (with_score / without - 1):+.1f}% "
              f"({1000 * without:.1f} -> {1000 * with_score:.1f} ms)")
    else:
        print(f"  {label}: the model has no domain index (run xanes-calibrate)")
    start = time.perf_counter()
    result = site_attribution(predictor, structure, int(sites[0]))
    print(f"  {label}: one site's occlusion attribution ({len(result.distance)} neighbours, one batched "
          f"pass per {64} graphs): {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="Cu model for the small crystal (default: shipped cu-k-feff)")
    parser.add_argument("--fe-model", help="Fe model for the slab (default: shipped fe-k-fdmnes)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    import torch

    from model_core import registry
    from model_core.inference import available_devices, load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    cu = args.model or (registry.find_model("cu-k-feff").path if registry.find_model("cu-k-feff")
                        else placeholder_model("Cu", tmp))
    fe = args.fe_model or (registry.find_model("fe-k-fdmnes").path if registry.find_model("fe-k-fdmnes")
                           else placeholder_model("Fe", tmp))
    crystal, slab = small_crystal(), hematite_slab()
    fe_sites = slab.indices_of("Fe")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; slab: {slab.n_atoms} atoms, "
          f"{len(fe_sites)} Fe sites")
    for device, name in available_devices():
        if device == "mps":
            continue
        cu_pred = load_model(cu, device=device)
        fe_pred = load_model(fe, device=device)
        t_small = time_sites(cu_pred, crystal, crystal.indices_of("Cu"))
        t_slab = time_sites(fe_pred, slab, fe_sites, repeats=1)
        print(f"[{name}] small crystal (4 Cu sites): {1000 * t_small / 4:.1f} ms/site   "
              f"slab all {len(fe_sites)} Fe sites: {t_slab:.2f} s ({1000 * t_slab / len(fe_sites):.1f} ms/site)")
        if device == "cpu":
            trust_costs(cu_pred, crystal, crystal.indices_of("Cu"), "small crystal")
            trust_costs(fe_pred, slab, fe_sites, "slab")


if __name__ == "__main__":
    main()
