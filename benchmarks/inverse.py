"""Inverse benchmark on the validation split: spectrum -> first coordination shell.

For every validation site (or an evenly spaced subset, ``--n-val``) the site's
own simulated spectrum (FEFF for Cu, FDMNES for Fe), prepared like the forward
model's targets on its grid, is inverted and the top candidate of each
ranking is scored against the site's true cluster:

* ``retrieval``: the nearest training spectrum's cluster (rank 1 of the distance);
* ``diffusion``: the diffusion sample with the lowest round-trip MSE;
* ``combined``: the lowest round-trip MSE over the diffusion samples and the
  ``--retrieval`` nearest training sites (what ``xanes-invert --refine 0`` ranks first);
* ``refined``: the best (by round trip) of the ``--refine`` refined candidates (the
  best ``--refine`` of the above, shell distances refined against the spectrum);
* ``combined_refined``: the lowest round-trip MSE over all of them, refined ones
  included (what ``xanes-invert`` ranks first).

Scores: first-shell coordination-number accuracy, mean |first-shell distance
error| (Å), neighbour-element accuracy (the first-shell element counts equal
the truth's) and the chosen candidate's round-trip MSE; ``diffusion_all_samples``
scores every diffusion sample (the spread). Reference round trips of the true
clusters at the diffusion radius and at the library radius (= the forward crop)
show what bare clusters cost; ``refined_vs_start`` counts the refined candidates whose
round trip is worse than their starting candidate's, and ``seconds_per_spectrum`` is the
mean wall time of one whole ``invert`` call (refinement included). Seconds for
``--timing-samples`` diffusion samples plus their forward check on one spectrum
are measured on CPU with ``--threads`` threads.

    python benchmarks/inverse.py [--element Cu|Fe] [--config configs/<el>-k-inverse-cpu.yaml]
        [--data SOURCE] [--model NAME_OR_DIR] [--n-val 64] [--samples 16] [--retrieval 3] [--refine 2] [--threads 2] [--out runs/inverse-bench.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# Run from a checkout: import this tree's packages, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _score(picks: list[tuple[int, float, dict, float]], truth: list[tuple[int, float, dict]]) -> dict:
    cn = np.array([p[0] == t[0] for p, t in zip(picks, truth)])
    dist = np.array([abs(p[1] - t[1]) for p, t in zip(picks, truth)])
    elements = np.array([dict(p[2]) == dict(t[2]) for p, t in zip(picks, truth)])
    mse = np.array([p[3] for p in picks])
    return {"n": len(picks), "cn_accuracy": float(cn.mean()), "distance_mae_a": float(np.nanmean(dist)),
            "distance_median_a": float(np.nanmedian(dist)), "element_accuracy": float(elements.mean()),
            "roundtrip_mse_mean": float(np.nanmean(mse)), "roundtrip_mse_median": float(np.nanmedian(mse))}


def _directions(positions_a: np.ndarray) -> np.ndarray:
    """(n - 1, 3) unit vectors from the absorber (row 0, at the origin) to the other atoms."""
    return positions_a[1:] / np.linalg.norm(positions_a[1:], axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--element", default="Cu", help="absorber: picks the config and the shipped bundle")
    parser.add_argument("--config", help="inverse training config (default configs/<element>-k-inverse-cpu.yaml)")
    parser.add_argument("--data", help="data source instead of the config's data.source (e.g. a prepared .npz)")
    parser.add_argument("--model", help="inverse bundle name or folder (default: the shipped one for the element)")
    parser.add_argument("--n-val", type=int, default=64, help="evenly spaced validation sites (0 = all)")
    parser.add_argument("--samples", type=int, default=16, help="diffusion samples per site (0 = retrieval only)")
    parser.add_argument("--retrieval", type=int, default=3)
    parser.add_argument("--refine", type=int, default=2, help="best candidates refined per site (0 = none)")
    parser.add_argument("--counts", default="retrieval", choices=("retrieval", "model"),
                        help="atom counts of the diffusion samples: nearest training sites' or the count head's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timing-samples", type=int, default=32)
    parser.add_argument("--out", default="runs/inverse-bench.json")
    args = parser.parse_args()

    import torch

    from model_core.inverse.api import invert, load_inverse
    from model_core.inverse.clusters import cluster_structure
    from model_core.inverse.roundtrip import fit_roundtrip, predict_clusters
    from model_core.inverse.shells import first_shell
    from trainer.inverse.train import load_clusters, load_config

    torch.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    config_path = args.config or root / "configs" / f"{args.element.lower()}-k-inverse-cpu.yaml"
    config = load_config(config_path, [f"data.source={args.data}"] if args.data else [])
    _train, val = load_clusters(config)
    if args.n_val and args.n_val < len(val):
        val = val.take(np.linspace(0, len(val) - 1, args.n_val).round().astype(int))
    model = load_inverse(args.model, element=config.data.element, device="cpu")
    energy = model.energy_ev

    small, large = f"true_{config.model.radius_a:g}A", f"true_{config.data.library_radius_a:g}A"
    truth, refs = [], {small: [], large: []}
    structures_small, structures_large = [], []
    for i in range(len(val)):
        n = int((val.z[i] > 0).sum())
        z, pos = val.z[i, :n].astype(int), val.pos[i, :n].astype(float)
        shell = first_shell(z, pos)
        truth.append((shell.coordination_number, shell.distance_a, dict(shell.neighbours)))
        keep = np.linalg.norm(pos, axis=1) < config.model.radius_a
        structures_small.append(cluster_structure(z[keep], pos[keep]))
        structures_large.append(cluster_structure(z, pos))
    for key, structures in ((small, structures_small), (large, structures_large)):
        predicted = predict_clusters(model.forward, structures)
        refs[key] = [fit_roundtrip(energy, val.mu[i], predicted[i]).mse for i in range(len(val))]

    picks: dict[str, list] = {"retrieval": [], "diffusion": [], "combined": [], "diffusion_all_samples": [],
                              "refined": [], "combined_refined": []}
    truth_all, truth_refined, refined_worse, refined_total = [], [], 0, 0
    started = time.time()
    use_diffusion = args.samples > 0 and model.diffusion is not None
    for i in range(len(val)):
        mu = val.mu[i].astype(np.float64)
        candidates = invert(mu, config.data.element, args.samples if use_diffusion else 0,
                            n_retrieval=max(args.retrieval, 1), n_refine=args.refine, model=model, seed=i,
                            counts=args.counts)
        as_pick = (lambda c: (c.coordination_number, c.first_shell_distance_a, dict(c.neighbours), c.roundtrip_mse))
        nearest_id = model.library.clusters.ids[model.library.nearest(mu, 1)[0][0]]
        picks["retrieval"].append(as_pick(next(c for c in candidates
                                               if c.method == "retrieval" and c.source_id == nearest_id)))
        unrefined = [c for c in candidates if c.method != "refined"]
        picks["combined"].append(as_pick(unrefined[0]))
        picks["combined_refined"].append(as_pick(candidates[0]))
        refined = [c for c in candidates if c.method == "refined"]
        if refined:
            picks["refined"].append(as_pick(refined[0]))
            truth_refined.append(truth[i])
        for c in refined:
            # The start: the unrefined candidate of that method and source whose atoms point the same
            # way (refinement scales distances from the absorber only).
            start = next(u for u in unrefined if u.method == c.refined_from and u.source_id == c.source_id
                         and np.array_equal(u.atomic_numbers, c.atomic_numbers)
                         and np.allclose(_directions(u.positions_a), _directions(c.positions_a), atol=1e-4))
            refined_total += 1
            refined_worse += int(c.roundtrip_mse > start.roundtrip_mse)
        diffusion = [c for c in candidates if c.method == "diffusion"]
        if diffusion:
            picks["diffusion"].append(as_pick(diffusion[0]))
            picks["diffusion_all_samples"] += [as_pick(c) for c in diffusion]
            truth_all += [truth[i]] * len(diffusion)
        if (i + 1) % 8 == 0:
            print(f"{i + 1}/{len(val)} sites, {time.time() - started:.0f} s", flush=True)
    loop_s = time.time() - started
    results = {"retrieval": _score(picks["retrieval"], truth), "combined": _score(picks["combined"], truth)}
    if picks["refined"]:
        results["refined"] = _score(picks["refined"], truth_refined)
        results["combined_refined"] = _score(picks["combined_refined"], truth)
        results["refined_vs_start"] = {"refined": refined_total, "roundtrip_worse": refined_worse}
    results["seconds_per_spectrum"] = loop_s / len(val)
    if picks["diffusion"]:
        results["diffusion"] = _score(picks["diffusion"], truth)
        results["diffusion_all_samples"] = _score(picks["diffusion_all_samples"], truth_all)
    results["reference_roundtrip_mse_median"] = {k: float(np.median(v)) for k, v in refs.items()}
    results["truth_cn_distribution"] = {str(k): int(v) for k, v in zip(*np.unique([t[0] for t in truth],
                                                                                 return_counts=True))}
    timing = None
    if model.diffusion is not None and args.timing_samples:
        mu = val.mu[0].astype(np.float64)
        invert(mu, config.data.element, 2, n_retrieval=0, n_refine=0, model=model)  # warm-up
        t0 = time.perf_counter()
        invert(mu, config.data.element, args.timing_samples, n_retrieval=0, n_refine=0, model=model,
               counts=args.counts)
        timing = time.perf_counter() - t0
    results["seconds_for_samples"] = {"samples": args.timing_samples, "threads": args.threads, "seconds": timing}
    results["setup"] = {"n_val_sites": len(val), "samples_per_site": args.samples if use_diffusion else 0,
                        "retrieval_k": args.retrieval, "refine_k": args.refine, "counts": args.counts,
                        "model": model.name, "forward": model.forward.info.name,
                        "wall_s": round(time.time() - started, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
