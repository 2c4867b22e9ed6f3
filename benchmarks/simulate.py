"""FEFF10 presets against the Cu dataset's FEFF 9.9.1 spectra: seconds per site and MSE.

For each preset and validation site, the structure's POSCAR is read from the dataset,
the site is computed with FEFF10 (one site at a time, one FEFF process), and the
resulting mu is compared with the dataset's xmu.dat:

* ``mse_abs``: mean squared difference of FEFF-normalized mu on a common absolute
  energy grid (0.25 eV steps over the overlap of both spectra) -- includes any edge shift;
* ``mse_rel``: the same on the edge-relative grid (FEFF's ``e`` column) -- shape only;
* ``shift_ev``: this run's edge energy minus the dataset's (FEFF's E_Fermi shift);
* ``vs_ref``: when ``reference`` is among the presets (list it first), the ``mse_rel``
  of this preset's FEFF10 spectrum against the FEFF10 ``reference`` run of the same
  site -- the cost of the preset's shortcuts alone, without the FEFF 9.9.1 / 10 change.

Usage (the reference preset takes ~20 min per site on one core)::

    python benchmarks/simulate.py [--presets fast medium] [--sites mp-1692_000 mp-3748_001]
                                  [--data DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SITES = ("mp-1692_000", "mp-3748_001")


def default_data_dir() -> Path:
    """The unpacked Cu dataset: $XANES_CU_FEFF, else /tmp/data/cu-k-feff, else ../shared/data/cu-k-feff."""
    env = os.environ.get("XANES_CU_FEFF")
    shared = Path(os.environ.get("XANES_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    for candidate in (env, "/tmp/data/cu-k-feff", shared / "data" / "cu-k-feff"):
        if candidate and (Path(candidate) / "splits").is_dir():
            return Path(candidate)
    raise SystemExit("the unpacked Cu dataset was not found; pass --data DIR (the folder holding splits/)")


def mse_on_common_grid(energy_a: np.ndarray, mu_a: np.ndarray, energy_b: np.ndarray, mu_b: np.ndarray,
                       step: float = 0.25) -> float:
    """Mean squared difference of two spectra interpolated onto their overlap."""
    lo, hi = max(energy_a[0], energy_b[0]), min(energy_a[-1], energy_b[-1])
    if hi - lo < 10 * step:
        return float("nan")
    grid = np.arange(lo, hi, step)
    return float(np.mean((np.interp(grid, energy_a, mu_a) - np.interp(grid, energy_b, mu_b)) ** 2))


def compare(mine: Path, reference: Path) -> dict[str, float]:
    """MSEs and edge shift between two xmu.dat files."""
    from model_core.spectra.simulated import read_feff_xmu

    a, b = read_feff_xmu(mine), read_feff_xmu(reference)
    rel_a = np.asarray(a.metadata["energy_rel_ev"])
    rel_b = np.asarray(b.metadata["energy_rel_ev"])
    return {
        "mse_abs": mse_on_common_grid(a.energy_ev, a.mu, b.energy_ev, b.mu),
        "mse_rel": mse_on_common_grid(rel_a, a.mu, rel_b, b.mu),
        "shift_ev": float(a.e0_ev - b.e0_ev),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fast"])
    parser.add_argument("--sites", nargs="+", default=list(DEFAULT_SITES),
                        help="dataset site ids <material>_<NNN>")
    parser.add_argument("--data", type=Path, help="the unpacked cu-k-feff folder")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args(argv)
    data = args.data or default_data_dir()

    from model_core.io import read_structure
    from model_core.types import SiteSelection
    from model_core.feff.inputs import get_preset
    from model_core.feff.simulation import simulate

    out_root = args.keep or Path(tempfile.mkdtemp(prefix="feff-bench-"))
    print(f"{'preset':<10} {'site':<16} {'atoms':>5} {'seconds':>8} {'mse_abs':>9} {'mse_rel':>9} {'shift_eV':>8}"
          f" {'vs_ref':>9}")
    reference_runs: dict[str, Path] = {}
    for name in args.presets:
        preset = get_preset(name)
        times, errors, against_reference = [], [], []
        for site_id in args.sites:
            material, index = site_id.rsplit("_", 1)
            structure = read_structure(data / material / "POSCAR")
            reference = data / material / "FEFF-XANES" / f"{int(index):03d}_Cu" / "xmu.dat"
            start = time.perf_counter()
            summary = simulate(structure, SiteSelection([int(index)]), out_root / name, preset)
            seconds = time.perf_counter() - start
            if summary.failed:
                print(f"{name:<10} {site_id:<16} FAILED: {summary.failed[0][1]}")
                continue
            run_dir = summary.runs[0].run_dir
            scores = compare(run_dir / "xmu.dat", reference)
            if name == "reference":
                reference_runs[site_id] = run_dir / "xmu.dat"
                vs_ref = 0.0
            elif site_id in reference_runs:
                vs_ref = compare(run_dir / "xmu.dat", reference_runs[site_id])["mse_rel"]
                against_reference.append(vs_ref)
            else:
                vs_ref = float("nan")
            n_atoms = len([line for line in (run_dir / "feff.inp").read_text().split("ATOMS", 1)[1].splitlines()
                           if line.strip() and line.split()[0].lstrip("-").replace(".", "").isdigit()])
            print(f"{name:<10} {site_id:<16} {n_atoms:>5d} {seconds:>8.1f} {scores['mse_abs']:>9.2e} "
                  f"{scores['mse_rel']:>9.2e} {scores['shift_ev']:>8.2f} {vs_ref:>9.2e}", flush=True)
            times.append(seconds)
            errors.append(scores["mse_rel"])
        if times:
            vs_ref_mean = np.mean(against_reference) if against_reference else float("nan")
            print(f"{name:<10} {'MEAN':<16} {'':>5} {np.mean(times):>8.1f} {'':>9} {np.mean(errors):>9.2e}"
                  f" {'':>8} {vs_ref_mean:>9.2e}")
    if args.keep is None:
        shutil.rmtree(out_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
