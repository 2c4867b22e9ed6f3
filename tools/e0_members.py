"""Compare E0 members from their ``xanes-eval`` per-spectrum CSVs (one per member, same ids).

    python tools/e0_members.py eval-m5/per_spectrum.csv eval-m6/per_spectrum.csv ...

Prints each member's E0 mean absolute error, the mean and the median over members (what
an ensemble of them would predict), the errors' correlation between members and the
greedy order in which adding members lowers the mean's error. Used to decide which E0
members join a shipped ensemble (on the selection part; the reporting part only reports).
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np


def read(path: str) -> dict[str, tuple[float, float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(row for row in handle if not row.startswith("#")))
    if not rows or "e0_pred_ev" not in rows[0]:
        raise SystemExit(f"error: {path}: no e0_pred_ev column (evaluate a model with an E0 head)")
    return {r["id"]: (float(r["e0_true_ev"]), float(r["e0_pred_ev"])) for r in rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="per-spectrum CSVs of xanes-eval, one per member")
    args = parser.parse_args(argv)
    tables = [read(p) for p in args.csv]
    ids = sorted(set.intersection(*(set(t) for t in tables)))
    true = np.array([tables[0][i][0] for i in ids])
    pred = np.array([[t[i][1] for i in ids] for t in tables])  # (M, N)
    known = np.isfinite(true)
    true, pred = true[known], pred[:, known]
    err = pred - true
    print(f"{len(true)} sites with a known E0")
    for path, e in zip(args.csv, err):
        print(f"  {np.mean(np.abs(e)):.4f} eV  {path}")
    print(f"mean of all   {np.mean(np.abs(err.mean(0))):.4f} eV (RMS {np.sqrt(np.mean(err.mean(0) ** 2)):.4f})")
    print(f"median of all {np.mean(np.abs(np.median(err, 0))):.4f} eV")
    if len(err) > 1:
        corr = np.corrcoef(err)
        off = corr[~np.eye(len(err), dtype=bool)]
        print(f"error correlation between members: {off.min():.2f}-{off.max():.2f} (mean {off.mean():.2f})")
    chosen: list[int] = []
    while len(chosen) < len(err):
        best = min((k for k in range(len(err)) if k not in chosen),
                   key=lambda k: np.mean(np.abs(err[chosen + [k]].mean(0))))
        chosen.append(best)
        print(f"greedy +{args.csv[best]}: {np.mean(np.abs(err[chosen].mean(0))):.4f} eV")


if __name__ == "__main__":
    main(sys.argv[1:])
