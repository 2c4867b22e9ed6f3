"""Seconds per identify (10 candidates) and per refine (one site) on CPU after warm-up.

Targets on a 2-core CPU: identify <= 5 s, refine <= 30 s. The measured spectrum is
synthetic (the prediction of CuO, broadened, shifted and with noise), so no data are
needed; the candidates are CuO, Cu2O and Cu metal at three or four cell scales each.

    python benchmarks/interpret.py [--model NAME_OR_PATH] [--threads N] [--repeats N]

CPU seconds (all threads) are printed beside the wall time, since on a shared machine
the wall time mostly measures the other jobs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def candidate_files(folder: Path) -> list[str]:
    """10 structure files: CuO, Cu2O, Cu metal, uniformly scaled copies."""
    from ase.build import bulk
    from ase.io import read, write

    bases = {"CuO": read(ROOT / "resources/structures/CuO.cif"), "Cu2O": read(ROOT / "resources/structures/Cu2O.cif"),
             "Cu": bulk("Cu")}
    scales = {"CuO": (1.0, 0.98, 1.02, 1.04), "Cu2O": (1.0, 0.98, 1.02), "Cu": (1.0, 0.98, 1.02)}
    paths = []
    for name, atoms in bases.items():
        for scale in scales[name]:
            scaled = atoms.copy()
            scaled.set_cell(atoms.cell * scale, scale_atoms=True)
            path = folder / f"{name}_{scale:.2f}.cif"
            write(path, scaled)
            paths.append(str(path))
    return paths


def synthetic_measured(predictor, path: str) -> tuple[np.ndarray, np.ndarray]:
    from model_core.io import read_structure
    from model_core.sites import select_sites
    from model_core.spectra.align import broaden

    structure = read_structure(path)
    spectrum = predictor.predict(structure, select_sites(structure, element="Cu")).average_spectrum()
    mu = broaden(spectrum.energy_ev, broaden(spectrum.energy_ev, spectrum.mu, 2.0), 1.0, "lorentzian")
    energy = np.arange(spectrum.energy_ev[0] + spectrum.e0_ev - 5, spectrum.energy_ev[-1] + spectrum.e0_ev, 0.3)
    y = np.interp(energy - spectrum.e0_ev + 0.5, spectrum.energy_ev, mu)
    return energy, y + np.random.default_rng(0).normal(0, 0.003, len(energy))


def identify_once(predictor, paths, energy, mu, lcf: int = 0) -> tuple[float, float]:
    from model_core.interpret.calibration import calibrate_tabulated
    from model_core.interpret.identify import rank_candidates
    from model_core.interpret.lcf import linear_combinations
    from model_core.interpret.library import member_predictors, predict_candidate

    start, cpu = time.perf_counter(), time.process_time()
    calibration = calibrate_tabulated(predictor, "Cu")
    members = member_predictors(predictor)
    candidates = [predict_candidate(predictor, p, "Cu", members=members) for p in paths]
    ranking = rank_candidates(energy, mu, candidates, calibration, element="Cu")
    if lcf:
        linear_combinations(energy, mu, [r.candidate for r in ranking[:8]], calibration, lcf, element="Cu",
                            start=ranking[0].fit)
    return time.perf_counter() - start, time.process_time() - cpu


def refine_once(predictor, path: str, energy, mu) -> tuple[float, float, int]:
    from model_core.interpret.calibration import calibrate_tabulated
    from model_core.interpret.refine import refine_structure
    from model_core.io import read_structure
    from model_core.sites import select_sites

    start, cpu = time.perf_counter(), time.process_time()
    structure = read_structure(path)
    selection = select_sites(structure, element="Cu")
    result = refine_structure(predictor, structure, selection.indices, selection.weights, energy, mu,
                              calibrate_tabulated(predictor, "Cu"), element="Cu")
    return time.perf_counter() - start, time.process_time() - cpu, result.n_evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cu-k-feff")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from model_core.inference import load_model

    torch.set_num_threads(args.threads)
    predictor = load_model(args.model, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        paths = candidate_files(Path(folder))
        energy, mu = synthetic_measured(predictor, paths[1])
        identify_once(predictor, paths, energy, mu)  # warm-up
        runs = [identify_once(predictor, paths, energy, mu) for _ in range(args.repeats)]
        print(f"identify, {len(paths)} candidates: {statistics.median(r[0] for r in runs):.2f} s wall, "
              f"{statistics.median(r[1] for r in runs):.2f} s CPU (median of {args.repeats}; target <= 5 s)")
        wall, cpu = identify_once(predictor, paths, energy, mu, lcf=2)
        print(f"identify + --lcf 2 over the top 8: {wall:.2f} s wall, {cpu:.2f} s CPU")
        for path in (paths[4], paths[0]):  # Cu2O, CuO
            wall, cpu, evaluations = refine_once(predictor, path, energy, mu)
            print(f"refine {Path(path).stem} (one site, shells+strain): {wall:.1f} s wall, {cpu:.1f} s CPU, "
                  f"{evaluations} model evaluations (target <= 30 s)")
    print(f"torch threads: {torch.get_num_threads()}, model: {predictor.info.name} "
          f"({predictor.info.n_members} members)")


if __name__ == "__main__":
    main()
