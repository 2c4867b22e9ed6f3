"""``xanes-calibrate MODEL --data DATA --ids VAL_IDS --out NEW.pt``.

Adds the trust entries to a checkpoint (every other key is kept as it was):

* ``spread_calibration``: per-energy-point split-conformal scales of the ensemble
  members' spread, fitted on the validation sites ``--ids`` (ensembles only; see
  :mod:`model_core.trust.calibration`);
* ``domain_index``: the training sites' embeddings (``--train-ids``; default every
  record of DATA whose material/complex has no validation record), scaled so 95% of the
  validation sites (or the ``--domain-ids`` sites) score <= 1 (see
  :mod:`model_core.trust.domain`);
* ``e0_calibration``: the split-conformal half-width of the predicted edge energy E0,
  scaled by the members' E0 spread for an ensemble, fitted on the validation sites with a
  known E0 (models with an E0 head; see :mod:`model_core.trust.e0`).

Before fitting on all validation sites it measures what the fitted entries do on unseen
sites: the validation materials are split into two halves (grouped, seeded); each half is
fitted and scored on the other, and the mean over both directions is reported (and stored
under ``info``) as the held-out coverage and the held-out share of sites with score <= 1.
The validation split also chose the members' epochs, so those numbers are optimistic only
as far as that choice fits validation noise. ``--report-ids`` names sites that chose
nothing (the reporting part of ``data.report_fraction``): the fitted entries are scored
on them once, as ``reporting_coverage`` and ``reporting_share_domain_score_le_1``. The E0
interval is measured the same ways: ``e0_heldout_coverage``, ``e0_reporting_coverage``
(and the median half-width and the mean absolute E0 error on those sites).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from model_core.cli.common import fail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanes-calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("model", metavar="MODEL", help="shipped model name or checkpoint path")
    parser.add_argument("--data", required=True, help="dataset directory or .tar.xz/.tar.gz/.zip archive")
    parser.add_argument("--ids", required=True,
                        help="validation record ids: a file (one per line) or a split name of DATA (val.txt)")
    parser.add_argument("--train-ids", help="training record ids for the domain index (file or split name; "
                                            "default: every record of a group with no validation record)")
    parser.add_argument("--report-ids", help="sites that chose nothing (file or split name): score the "
                                             "fitted band and domain index on them, never fit")
    parser.add_argument("--domain-ids", help="sites whose domain scores set the domain threshold (file or "
                                             "split name; default --ids): e.g. the whole validation split, "
                                             "when --ids is too few sites for a steady 95%% quantile")
    parser.add_argument("--out", required=True, help="where the calibrated checkpoint goes")
    parser.add_argument("--level", type=float, default=0.9, help="central-interval probability (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the grouped half split (default 0)")
    parser.add_argument("--screen", action="store_true", help="drop unphysical spectra (as training did)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", help="cache prepared data here")
    return parser


def _read_ids(spec: str, splits: dict) -> list[str]:
    path = Path(spec)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    for key in (spec, path.stem):
        if key in splits:
            return list(splits[key])
    raise ValueError(f"{spec}: neither an id file nor a split of the data ({', '.join(splits) or 'none'})")


def _halves(groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of two halves of the rows, whole groups on one side."""
    names = np.array(sorted(set(map(str, groups))))
    chosen = set(np.random.default_rng(seed).permutation(names)[: len(names) // 2].tolist())
    first = np.array([str(g) in chosen for g in groups])
    return first, ~first


def held_out(true, mu, spread, val_embedding, groups, seed, level, domain_base) -> dict:
    """Two-fold grouped estimate of coverage and of the share of sites with score <= 1."""
    from model_core.trust.calibration import coverage, fit_calibration

    report: dict = {}
    folds = _halves(groups, seed)
    if spread is not None:
        covers, raw, worst = [], [], []
        for fit, score in (folds, folds[::-1]):
            calibration = fit_calibration(true[fit], mu[fit], spread[fit], level=level)
            lo, hi = calibration.band(mu[score], spread[score])
            covers.append(coverage(true[score], lo, hi))
            inside = (true[score] >= lo) & (true[score] <= hi)
            worst.append(float(inside.mean(axis=0).min()))
            raw.append(coverage(true[score], mu[score] - 1.645 * spread[score], mu[score] + 1.645 * spread[score]))
        report.update({"heldout_coverage": float(np.mean(covers)),
                       "heldout_coverage_worst_energy_point": float(np.mean(worst)),
                       "heldout_raw_spread_coverage_1.645sd": float(np.mean(raw))})
    shares = []
    for fit, score in (folds, folds[::-1]):
        index = domain_base.with_threshold(val_embedding[fit])
        shares.append(float(np.mean(index.score(val_embedding[score]) <= 1.0)))
    report["heldout_share_domain_score_le_1"] = float(np.mean(shares))
    report["heldout_split"] = f"validation groups in two halves (seed {seed}), mean of both directions"
    return report


def e0_held_out(true_ev, e0_ev, spread_ev, groups, seed, level) -> dict:
    """Two-fold grouped estimate of the E0 interval's coverage and median half-width
    (empty when a half has too few sites with a known E0)."""
    from model_core.trust.e0 import fit_e0_calibration

    covers, widths = [], []
    folds = _halves(groups, seed)
    for fit, score in (folds, folds[::-1]):
        if not np.isfinite(true_ev[score]).any():
            return {}
        try:
            calibration = fit_e0_calibration(true_ev[fit], e0_ev[fit], _rows(spread_ev, fit), level=level)
        except ValueError:
            return {}
        scored = _score_e0(calibration, true_ev[score], e0_ev[score], _rows(spread_ev, score), "")
        covers.append(scored["e0_coverage"])
        widths.append(scored["e0_halfwidth_median_ev"])
    return {"e0_heldout_coverage": float(np.mean(covers)), "e0_heldout_halfwidth_median_ev": float(np.mean(widths))}


def _rows(values, mask):
    return None if values is None else values[mask]


def _score_e0(calibration, true_ev, e0_ev, spread_ev, prefix: str) -> dict:
    """``e0_{prefix}coverage``, ``e0_{prefix}halfwidth_median_ev`` and ``e0_{prefix}mae_ev`` on
    the sites with a known E0."""
    from model_core.trust.e0 import e0_coverage

    known = np.isfinite(true_ev)
    lo, hi = calibration.interval(e0_ev, spread_ev)
    return {f"e0_{prefix}coverage": e0_coverage(true_ev, lo, hi),
            f"e0_{prefix}halfwidth_median_ev": float(np.median(0.5 * (hi - lo)[known])),
            f"e0_{prefix}mae_ev": float(np.mean(np.abs(true_ev - e0_ev)[known]))}


def _calibrate_e0(val, val_out, provenance: dict, args) -> tuple[dict | None, dict]:
    """The ``e0_calibration`` entry (None when it cannot be fitted) and its summary keys."""
    from model_core.trust.e0 import fit_e0_calibration

    if val_out.e0 is None:
        return None, {"e0_calibration": "none: the model predicts no edge energy (no E0 head)"}
    true = np.asarray(val.e0_abs, dtype=np.float64)
    report = e0_held_out(true, val_out.e0, val_out.e0_spread, np.asarray(val.group_ids), args.seed, args.level)
    try:
        calibration = fit_e0_calibration(true, val_out.e0, val_out.e0_spread, level=args.level,
                                         info={**provenance, **report})
    except ValueError as exc:
        return None, {"e0_calibration": f"none: {exc}"}
    fitted = _score_e0(calibration, true, val_out.e0, val_out.e0_spread, "")
    return calibration.to_dict(), {
        **report, "e0_method": calibration.method, "e0_scale": calibration.scale(),
        "e0_validation_sites": calibration.n_sites, "e0_fitted_coverage": fitted["e0_coverage"],
        "e0_halfwidth_median_ev": fitted["e0_halfwidth_median_ev"], "e0_mae_ev": fitted["e0_mae_ev"]}


def _score_reporting(entries: dict, true: np.ndarray, out, true_e0: np.ndarray) -> dict:
    """Coverage of the fitted band, share of domain scores <= 1 and the E0 interval's coverage,
    median half-width and mean absolute error on sites that chose nothing."""
    from model_core.trust.calibration import SpreadCalibration, coverage
    from model_core.trust.domain import DomainIndex

    scores = DomainIndex.from_dict(entries["domain_index"]).score(out.embedding)
    result = {"reporting_share_domain_score_le_1": float(np.mean(scores <= 1.0))}
    if "spread_calibration" in entries and out.spread is not None:
        lo, hi = SpreadCalibration.from_dict(entries["spread_calibration"]).band(out.mu, out.spread)
        result["reporting_coverage"] = coverage(true, lo, hi)
    if "e0_calibration" in entries and out.e0 is not None and np.isfinite(true_e0).any():
        from model_core.trust.e0 import E0Calibration

        result.update(_score_e0(E0Calibration.from_dict(entries["e0_calibration"]), true_e0, out.e0,
                                out.e0_spread, "reporting_"))
    return result


def run(argv: Sequence[str] | None = None) -> dict:
    """Calibrate and write the checkpoint; returns the JSON summary."""
    args = build_parser().parse_args(argv)
    if not Path(args.data).exists():
        fail(f"{args.data}: no such dataset directory or archive")
    if not 0 < args.level < 1:
        fail(f"--level must lie between 0 and 1, got {args.level}")
    from model_core.checkpoint import CheckpointError, add_entries
    from model_core.inference import ModelLoadError, XanesPredictor, load_model
    from model_core.trust.calibration import coverage, fit_calibration
    from model_core.trust.domain import fit_domain_index
    from trainer.data.dataset import prepare_dataset

    try:
        predictor = load_model(args.model, device=args.device)
        checkpoint = predictor.checkpoint
        dataset, _ = prepare_dataset(
            args.data, grid=checkpoint.model_config.grid, graph_config=checkpoint.graph_config,
            normalization=str(checkpoint.normalization.get("mode", "feff")), screen=args.screen,
            element=checkpoint.element or None, cache_dir=args.cache_dir, progress=False)
        val = dataset.subset(_read_ids(args.ids, dataset.splits))
        if args.train_ids:
            train = dataset.subset(_read_ids(args.train_ids, dataset.splits))
        else:
            val_groups = set(map(str, val.group_ids))
            train = dataset.take(np.array([k for k, g in enumerate(dataset.group_ids)
                                           if str(g) not in val_groups], dtype=np.int64))
        reporting = dataset.subset(_read_ids(args.report_ids, dataset.splits)) if args.report_ids else None
        threshold_set = dataset.subset(_read_ids(args.domain_ids, dataset.splits)) if args.domain_ids else None
        held = {str(g) for part in (val, reporting, threshold_set) if part is not None for g in part.group_ids}
        train = train.take(np.array([k for k, g in enumerate(train.group_ids) if str(g) not in held],
                                    dtype=np.int64))
        if len(val) < 2 or len(train) < 10:
            raise ValueError(f"{args.data}: {len(val)} validation and {len(train)} training sites "
                             "found; need at least 2 and 10")
        val_out = predictor.graph_outputs(list(val.graphs))
        # The embedding is member 0's readout: the training sites need only that member.
        first = XanesPredictor(dataclasses.replace(checkpoint, member_state_dicts=(), member_model_configs=(),
                                                   member_weights=()),
                               predictor.info.name, device=args.device)
        train_out = first.graph_outputs(list(train.graphs))
        report_out = predictor.graph_outputs(list(reporting.graphs)) if reporting is not None else None
        threshold_embedding = (first.graph_outputs(list(threshold_set.graphs)).embedding
                               if threshold_set is not None else None)
    except (ValueError, OSError, KeyError, CheckpointError, ModelLoadError) as exc:
        fail(str(exc))
    true = np.asarray(val.mu, dtype=np.float64)
    provenance = {"data": Path(args.data).name, "validation_sites": len(val), "training_sites": len(train),
                  "validation_ids": Path(args.ids).name, "screen": bool(args.screen)}
    domain = fit_domain_index(train_out.embedding, val_out.embedding)
    report = held_out(true, val_out.mu, val_out.spread, val_out.embedding, np.asarray(val.group_ids),
                      args.seed, args.level, domain)
    if threshold_embedding is not None:
        provenance_domain = {**provenance, "domain_threshold_ids": Path(args.domain_ids).name,
                             "domain_threshold_sites": len(threshold_set)}
    else:
        threshold_embedding, provenance_domain = val_out.embedding, provenance
    entries = {"domain_index": domain.with_threshold(
        threshold_embedding,
        info={**provenance_domain, **{k: v for k, v in report.items() if "domain" in k}}).to_dict()}
    summary = {"model": args.model, "out": str(args.out), **provenance, **report,
               "domain_train_score_median": float(np.median(
                   domain.distance(train_out.embedding, exclude_self=True) / domain.threshold))}
    if val_out.spread is not None:
        calibration = fit_calibration(true, val_out.mu, val_out.spread, level=args.level,
                                      info={**provenance, **{k: v for k, v in report.items() if "domain" not in k}})
        entries["spread_calibration"] = calibration.to_dict()
        summary.update({"level": args.level, "method": calibration.method,
                        "scale_median": float(np.median(calibration.scale())),
                        "fitted_coverage": coverage(true, *calibration.band(val_out.mu, val_out.spread))})
    else:
        summary["spread_calibration"] = "none: a single model has no members' spread to calibrate"
    e0_entry, e0_summary = _calibrate_e0(val, val_out, provenance, args)
    summary.update(e0_summary)
    if e0_entry is not None:
        entries["e0_calibration"] = e0_entry
    if report_out is not None:
        summary.update(_score_reporting(entries, np.asarray(reporting.mu, dtype=np.float64), report_out,
                                        np.asarray(reporting.e0_abs, dtype=np.float64)))
        summary["reporting_sites"] = len(reporting)
    try:
        add_entries(predictor.info.path, args.out, entries)
    except (CheckpointError, OSError) as exc:
        fail(f"{args.out}: {exc}")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    print(json.dumps(run(argv)))


if __name__ == "__main__":
    main()
