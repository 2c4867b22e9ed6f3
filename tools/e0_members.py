"""Compare E0 members from their ``xanes-eval`` per-spectrum CSVs (one per member, same ids).

    python tools/e0_members.py eval-m5/per_spectrum.csv eval-m6/per_spectrum.csv ...

Prints each member's E0 mean absolute error, the mean and the median over members (what
an ensemble of them would predict), the errors' correlation between members and the
greedy order in which adding members lowers the mean's error. Used to decide which E0
members join a shipped ensemble (on the selection part; the reporting part only reports).

    python tools/e0_members.py --members 4 shipped-m9.csv ... cand-a.csv cand-b.csv

applies the release rule to the first four CSVs (the shipped E0 members) and the rest (new
candidates): candidates are offered in the order of their error alone and each joins if it
lowers the mean's error; then the weakest member alone is dropped for as long as that does
not raise it (two members at least stay).
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
    parser.add_argument("--members", type=int, default=0, metavar="N",
                        help="the first N CSVs are the shipped members, the rest candidates: "
                             "print the release rule's decision")
    args = parser.parse_args(argv)
    if not 0 <= args.members <= len(args.csv):
        raise SystemExit(f"error: --members {args.members} but {len(args.csv)} CSVs given")
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
        with np.errstate(invalid="ignore", divide="ignore"):  # a member with constant errors has none
            corr = np.corrcoef(err)
        off = corr[~np.eye(len(err), dtype=bool)]
        off = off[np.isfinite(off)]
        if off.size:
            print(f"error correlation between members: {off.min():.2f}-{off.max():.2f} (mean {off.mean():.2f})")
        else:
            print("error correlation between members: undefined (constant errors)")
    chosen: list[int] = []
    while len(chosen) < len(err):
        best = min((k for k in range(len(err)) if k not in chosen),
                   key=lambda k: np.mean(np.abs(err[chosen + [k]].mean(0))))
        chosen.append(best)
        print(f"greedy +{args.csv[best]}: {np.mean(np.abs(err[chosen].mean(0))):.4f} eV")
    if args.members:
        kept = release_rule(err, args.members, [print])
        print("members: " + " ".join(args.csv[k] for k in kept))


def release_rule(err: np.ndarray, n_members: int, log=()) -> list[int]:
    """Indices (into ``err``, (M, N) E0 errors) of the E0 members the release rule keeps.

    Rows below ``n_members`` are the shipped members, the rest candidates. The rule is
    fixed before measuring: candidates join one at a time, best alone first, when the
    ensemble's mean absolute error falls; then the weakest member alone leaves while its
    leaving does not raise it.
    """
    def mae(rows: list[int]) -> float:
        return float(np.mean(np.abs(err[rows].mean(0))))

    def say(text: str) -> None:
        for f in log:
            f(text)

    alone = [mae([k]) for k in range(len(err))]
    kept = list(range(n_members))
    score = mae(kept) if kept else np.inf
    for k in sorted(range(n_members, len(err)), key=alone.__getitem__):
        trial = mae(kept + [k])
        joins = trial < score
        say(f"offer {k} ({alone[k]:.4f} eV alone): {score:.4f} -> {trial:.4f} eV, "
            f"{'joins' if joins else 'stays out'}")
        if joins:
            kept, score = kept + [k], trial
    while len(kept) > 2:
        weakest = max(kept, key=alone.__getitem__)
        trial = mae([k for k in kept if k != weakest])
        leaves = trial <= score
        say(f"drop {weakest} ({alone[weakest]:.4f} eV alone): {score:.4f} -> {trial:.4f} eV, "
            f"{'leaves' if leaves else 'stays'}")
        if not leaves:
            break
        kept, score = [k for k in kept if k != weakest], trial
    return kept


if __name__ == "__main__":
    main(sys.argv[1:])
