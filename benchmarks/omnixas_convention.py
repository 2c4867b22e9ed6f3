"""eta of a Cu K FEFF model in OmniXAS's convention (absolute energy axis, FEFF's units).

OmniXAS scores spectra on FEFF's absolute energy (the ``omega`` column of ``xmu.dat``),
with mu × ``xsedge+`` (the header's ``xsedge+ 50, used to normalize mu``) / a0² (Å²) × 1000,
keeping the points strictly inside 8983.173–9018.173 eV after dropping the ends where
mu ≤ 0, interpolated linearly to 141 points (0.25 eV). eta = (median per-spectrum MSE of
the training-mean spectrum) / (median per-spectrum MSE of the model).

Our model predicts FEFF's normalized mu on an edge-relative grid. A prediction is put in
that convention by placing it at an edge energy (the model's own predicted E0, or the true
one) and multiplying it by the factor above **with the site's own xsedge+ from its
xmu.dat**: a user predicting a new structure has no xsedge+, so the numbers here use
one piece of FEFF output per site that a prediction alone does not give.

    python benchmarks/omnixas_convention.py --data DIR_OR_ARCHIVE [--model cu-k-feff] [--ids FILE]

``--data`` is the Cu FEFF dataset (``../shared/data/cu-k-feff.tar.xz`` or its extracted
folder); validation ids from ``splits/val.txt`` unless ``--ids`` names a file (for the
numbers that count: the reporting part, ``resources/models/cu-k-feff/reporting_ids.txt``);
the training mean over ``splits/train.txt``.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from pathlib import Path

import numpy as np

BOHR_ANGSTROM = 0.529177210903
WINDOW_EV = (8983.173, 9018.173)
N_POINTS = 141
OMNIXAS_GRID_EV = np.linspace(*WINDOW_EV, N_POINTS)


def feff_scale(xsedge50: float) -> float:
    """Factor from FEFF's normalized mu to OmniXAS's units: xsedge+ / a0² × 1000."""
    return float(xsedge50) / BOHR_ANGSTROM ** 2 * 1000.0


def omnixas_spectrum(energy_ev: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """(141,) mu in OmniXAS's window: ends with mu ≤ 0 dropped, points strictly inside
    the window kept, linear interpolation (np.interp holds the end values over the
    sub-step gap between the window's edges and the first/last point inside)."""
    positive = np.flatnonzero(mu > 0)
    energy_ev, mu = energy_ev[positive[0]:positive[-1] + 1], mu[positive[0]:positive[-1] + 1]
    inside = (energy_ev > WINDOW_EV[0]) & (energy_ev < WINDOW_EV[1])
    if inside.sum() < 2:
        raise ValueError("fewer than 2 points inside the OmniXAS window")
    return np.interp(OMNIXAS_GRID_EV, energy_ev[inside], mu[inside])


def xmu_path(root: Path, record_id: str) -> Path:
    material, site = record_id.rsplit("_", 1)
    return root / material / "FEFF-XANES" / f"{site}_Cu" / "xmu.dat"


def read_true(root: Path, record_id: str) -> tuple[np.ndarray, float, float]:
    """(141,) FEFF's spectrum in OmniXAS's convention, its xsedge+ and its edge energy (omega - e)."""
    from model_core.spectra.simulated import read_feff_xmu_table

    table = read_feff_xmu_table(xmu_path(root, record_id))
    xsedge = float(table["xsedge50"])
    if not np.isfinite(xsedge):
        raise ValueError(f"{record_id}: no xsedge+ line in the xmu.dat header")
    mu = omnixas_spectrum(table["omega"], table["mu"] * feff_scale(xsedge))
    return mu, xsedge, float(np.median(table["omega"] - table["e"]))


def eta(pred: np.ndarray, true: np.ndarray, train_mean: np.ndarray) -> float:
    model = np.median(np.mean((pred - true) ** 2, axis=1))
    return float(np.median(np.mean((train_mean - true) ** 2, axis=1)) / model)


def dataset_root(data: str, workdir: Path) -> Path:
    path = Path(data)
    if path.is_dir():
        return path / "cu-k-feff" if (path / "cu-k-feff" / "splits").is_dir() else path
    with tarfile.open(path) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "cu-k-feff"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="cu-k-feff archive or folder")
    parser.add_argument("--model", default="cu-k-feff")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ids", help="file of record ids to score (default: splits/val.txt)")
    args = parser.parse_args()
    from model_core.inference import load_model
    from model_core.spectra.normalize import target_normalization_from_record
    from trainer.data.dataset import prepare_dataset
    from trainer.loss import spectrum_metrics

    with tempfile.TemporaryDirectory() as tmp:
        root = dataset_root(args.data, Path(tmp))
        train_ids = (root / "splits" / "train.txt").read_text().split()
        ids_file = Path(args.ids) if args.ids else root / "splits" / "val.txt"
        val_ids = ids_file.read_text().split()
        train_mean = np.mean([read_true(root, r)[0] for r in train_ids], axis=0)

        predictor = load_model(args.model, device=args.device)
        checkpoint = predictor.checkpoint
        if checkpoint.normalization.get("mode") != "feff":
            raise SystemExit(f"{args.model}: targets are not FEFF's own mu "
                             f"(normalization {checkpoint.normalization.get('mode')}); the xsedge+ "
                             "conversion does not apply")
        grid = checkpoint.model_config.grid
        # As xanes-eval prepares and scores it (trainer.evaluate): no screening.
        dataset, _ = prepare_dataset(root, grid=grid, graph_config=checkpoint.graph_config,
                                     normalization=target_normalization_from_record(checkpoint.normalization),
                                     screen=False, element=checkpoint.element or None, ids=val_ids,
                                     progress=False)
        pred, e0_pred, _ = predictor.predict_graphs(dataset.graphs)
        if e0_pred is None:
            raise SystemExit(f"{args.model}: the model has no E0 head")
        relative = spectrum_metrics(pred, np.asarray(dataset.mu), grid.step_ev, checkpoint.train_mean_spectrum)
        e0_true = np.asarray(dataset.e0_abs, dtype=np.float64)

        truths, own, at_true, floor, feff_edge = [], [], [], [], []
        for k, record_id in enumerate(dataset.ids):
            true_k, xsedge, edge = read_true(root, record_id)
            mu_k = pred[k] * feff_scale(xsedge)
            truths.append(true_k)
            own.append(omnixas_spectrum(grid.energy_ev + e0_pred[k], mu_k))
            at_true.append(omnixas_spectrum(grid.energy_ev + e0_true[k], mu_k))
            # The target itself through the same steps: what the grid and its -10 eV start cost.
            floor.append(omnixas_spectrum(grid.energy_ev + e0_true[k], np.asarray(dataset.mu[k]) * feff_scale(xsedge)))
            feff_edge.append(edge)
        truths = np.array(truths)
    error = e0_pred - e0_true
    print(f"model {args.model}; {args.ids or 'validation split'}: {len(dataset.ids)} of {len(val_ids)} sites; "
          f"training mean over {len(train_ids)} sites of splits/train.txt")
    print(f"true E0 = dataset e0_abs; max |e0_abs - (omega - e)| = "
          f"{np.max(np.abs(e0_true - np.array(feff_edge))):.3f} eV")
    print("FEFF units: each prediction is multiplied by its own site's xsedge+ (from that site's "
          "xmu.dat) / a0^2 x 1000 - information a prediction alone does not have")
    below = int(np.sum(e0_pred + grid.energy_ev[0] > WINDOW_EV[0]))
    print(f"{below} sites placed at their own E0 start above {WINDOW_EV[0]} eV (the model grid starts at "
          f"{grid.energy_ev[0]:g} eV relative): their first predicted value is held down to the window's "
          f"start ({int(np.sum(e0_true + grid.energy_ev[0] > WINDOW_EV[0]))} at the true E0)")
    print(f"eta, edge-relative axis (as xanes-eval)        {relative['eta']:.2f}")
    print(f"eta, OmniXAS convention, model's own E0        {eta(np.array(own), truths, train_mean):.2f}")
    print(f"eta, OmniXAS convention, true E0               {eta(np.array(at_true), truths, train_mean):.2f}")
    print(f"E0 error: MAE {np.mean(np.abs(error)):.3f} eV, RMS {np.sqrt(np.mean(error ** 2)):.3f} eV, "
          f"mean (bias) {np.mean(error):+.3f} eV")
    mse = {name: np.median(np.mean((np.array(v) - truths) ** 2, axis=1))
           for name, v in (("baseline", [train_mean] * len(truths)), ("model", at_true), ("floor", floor))}
    print(f"median MSE (OmniXAS units): training mean {mse['baseline']:.3g}, model at true E0 "
          f"{mse['model']:.3g}, the target on the model grid at the true E0 {mse['floor']:.2g} (resampling floor)")


if __name__ == "__main__":
    main()
