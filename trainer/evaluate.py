"""Evaluate a checkpoint on a dataset: metrics, per-spectrum CSV and an example plot."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from trainer.loss import eta_interval, per_spectrum_mse, spectrum_metrics


@dataclass(frozen=True)
class EvalResult:
    """Outcome of :func:`evaluate`.

    Attributes:
        metrics: mse, median_mse, d1_mse, d2_mse, baseline_median_mse, eta, n (+ e0_mae_ev).
        ids: (N,) record ids.
        energy_ev: (G,) grid relative to the edge.
        true: (N, G) normalized targets.
        pred: (N, G) predictions.
        problems: (record, reason) of every record that could not be used.
        train_mean: (G,) the checkpoint's training-mean spectrum (None if absent).
        e0_true_ev, e0_pred_ev: (N,) absolute edge energies, when the data know them and
            the model predicts them (NaN where unknown; None without an E0 head).
    """

    metrics: dict
    ids: tuple[str, ...]
    energy_ev: np.ndarray
    true: np.ndarray
    pred: np.ndarray
    problems: tuple[tuple[str, str], ...]
    train_mean: np.ndarray | None = None
    e0_true_ev: np.ndarray | None = None
    e0_pred_ev: np.ndarray | None = None


def evaluate(model: str, data: str, ids_file: str | None = None, device: str = "auto",
             screen: bool = False, cache_dir: str | None = None, progress: bool = True) -> EvalResult:
    """Predict every record of ``data`` with ``model`` and score it.

    The data are prepared exactly as for training (the checkpoint's grid, graph
    cropping and normalization). Unphysical-spectrum screening is off by default so a
    test set is scored whole; records that cannot be read are reported, never dropped
    silently.
    """
    from model_core.inference import load_model
    from model_core.spectra.normalize import target_normalization_from_record
    from trainer.data.dataset import prepare_dataset

    predictor = load_model(model, device=device)
    checkpoint = predictor.checkpoint
    dataset, report = prepare_dataset(
        data, grid=checkpoint.model_config.grid, graph_config=checkpoint.graph_config,
        normalization=target_normalization_from_record(checkpoint.normalization), screen=screen,
        element=checkpoint.element or None, cache_dir=cache_dir, progress=progress)
    indices = np.arange(len(dataset.ids))
    if ids_file:
        wanted = [line.strip() for line in Path(ids_file).read_text().splitlines() if line.strip()]
        position = {rid: k for k, rid in enumerate(dataset.ids)}
        indices = np.array([position[r] for r in wanted if r in position], dtype=np.int64)
    if len(indices) == 0:
        raise ValueError(f"{data}: no usable spectra to evaluate")
    graphs = [dataset.graphs[i] for i in indices]
    outputs = predictor.graph_outputs(graphs)
    pred, e0_pred = outputs.mu, outputs.e0
    true = np.asarray(dataset.mu, dtype=np.float64)[indices]
    grid = checkpoint.model_config.grid
    metrics = spectrum_metrics(pred, true, grid.step_ev, checkpoint.train_mean_spectrum)
    e0_true = None
    if e0_pred is not None and dataset.e0_abs is not None:
        e0_true = np.asarray(dataset.e0_abs, dtype=np.float64)[indices]
        known = np.isfinite(e0_true)
        if known.any():
            metrics["e0_mae_ev"] = float(np.mean(np.abs(e0_pred[known] - e0_true[known])))
    if checkpoint.train_mean_spectrum is not None:
        baseline = per_spectrum_mse(np.broadcast_to(checkpoint.train_mean_spectrum, true.shape), true)
        metrics["eta_ci90_low"], metrics["eta_ci90_high"] = eta_interval(per_spectrum_mse(pred, true), baseline)
    metrics.update(band_coverage(predictor.calibration, true, pred, outputs.spread))
    problems = tuple((str(a), str(b)) for a, b in report.problems)
    metrics["n_unusable"] = len(problems)
    return EvalResult(metrics=metrics, ids=tuple(dataset.ids[i] for i in indices),
                      energy_ev=grid.energy_ev, true=true, pred=pred, problems=problems,
                      train_mean=checkpoint.train_mean_spectrum, e0_true_ev=e0_true,
                      e0_pred_ev=None if e0_pred is None else np.asarray(e0_pred, dtype=np.float64))


def band_coverage(calibration, true: np.ndarray, pred: np.ndarray, spread: np.ndarray | None) -> dict:
    """``coverage90``: share of (spectrum, energy) points inside the calibrated 90% band;
    for an uncalibrated ensemble ``coverage90_uncalibrated``, the share inside
    ``pred ± 1.645 spread`` (the raw spread read as a Gaussian standard deviation)."""
    from model_core.trust.calibration import coverage

    if spread is None:
        return {}
    if calibration is None:
        return {"coverage90_uncalibrated": coverage(true, pred - 1.645 * spread, pred + 1.645 * spread)}
    return {"coverage90": coverage(true, *calibration.band(pred, spread, level=0.9))}


def write_per_spectrum_csv(result: EvalResult, path: str | Path) -> Path:
    """One row per spectrum: id, mse, baseline mse (training mean), d1 mse, and the true and
    predicted absolute E0 (eV) when the model has an E0 head."""
    path = Path(path)
    errors = per_spectrum_mse(result.pred, result.true)
    train_mean = result.train_mean
    base = per_spectrum_mse(np.broadcast_to(train_mean, result.true.shape), result.true) \
        if train_mean is not None else np.full(len(errors), np.nan)
    step = float(result.energy_ev[1] - result.energy_ev[0])
    d1 = np.mean((np.diff(result.pred, axis=1) - np.diff(result.true, axis=1)) ** 2, axis=1) / step ** 2
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        e0 = result.e0_pred_ev is not None
        writer.writerow(["id", "mse", "train_mean_mse", "d1_mse"] + (["e0_true_ev", "e0_pred_ev"] if e0 else []))
        true_e0 = result.e0_true_ev if result.e0_true_ev is not None else np.full(len(errors), np.nan)
        for k, (rid, e, b, d) in enumerate(zip(result.ids, errors, base, d1)):
            extra = [f"{true_e0[k]:.3f}", f"{result.e0_pred_ev[k]:.3f}"] if e0 else []
            writer.writerow([rid, f"{e:.6g}", f"{b:.6g}", f"{d:.6g}", *extra])
    return path


def plot_examples(result: EvalResult, path: str | Path, title: str = "") -> Path:
    """PNG with the best, median and worst spectra (by per-spectrum MSE)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    errors = per_spectrum_mse(result.pred, result.true)
    order = np.argsort(errors)
    picks = [("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=False)
    for ax, (label, k) in zip(axes, picks):
        ax.plot(result.energy_ev, result.true[k], color="black", lw=1.5, label="reference")
        ax.plot(result.energy_ev, result.pred[k], color="tab:red", lw=1.2, ls="--", label="predicted")
        ax.set_title(f"{label}: {result.ids[k]}\nMSE {errors[k]:.2e}", fontsize=9)
        ax.set_xlabel("E - E0 (eV)")
    axes[0].set_ylabel("normalized mu")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def format_metrics(metrics: dict) -> str:
    keys = ["n", "mse", "median_mse", "d1_mse", "d2_mse", "baseline_median_mse", "eta", "eta_ci90_low",
            "eta_ci90_high", "e0_mae_ev", "n_unusable",
            "coverage90", "coverage90_uncalibrated"]
    lines = []
    for key in keys:
        if key in metrics:
            value = metrics[key]
            lines.append(f"{key:>20}: {value:.4g}" if isinstance(value, float) else f"{key:>20}: {value}")
    return "\n".join(lines)


__all__: Sequence[str] = ["EvalResult", "evaluate", "write_per_spectrum_csv", "plot_examples", "format_metrics"]
