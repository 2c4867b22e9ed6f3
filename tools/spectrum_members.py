"""The release rule for spectrum members of an ensemble, on per-member predictions.

    python tools/spectrum_members.py dump MODEL.pt OUT.npz --data DATA \\
        --ids selection_ids.txt --report-ids reporting_ids.txt [--cache-dir DIR]

writes every spectrum member's predictions of the selection and reporting parts (one
forward pass each, on the graphs the checkpoint asks for; dedicated E0 members are left
out: they do not enter the spectrum).

    python tools/spectrum_members.py rule SHIPPED.npz CAND.npz [CAND.npz ...]

applies the rule the Cu model card writes down, on the selection part alone: candidates are
offered in the order of their eta alone and each joins if the ensemble mean's eta rises;
then the weakest member alone is dropped for as long as that raises it (two members at
least stay). With ``--group``, the weight of those members (against 1 for the others) is
then the one of ``--group-weights`` that maximizes the selection-part eta.
The baseline of eta is the first file's training mean (the shipped model's,
over ``splits/train.txt``). The rule itself compares equal means (a shipped model's
member weights are not in its dump): weights are the ``--group`` step's, chosen after it.
The reporting part is printed after the decisions, for the
card; it decides nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np


def _ids(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def dump(args) -> None:
    from model_core.checkpoint import load_checkpoint, member_roles
    from model_core.inference import XanesPredictor
    from model_core.spectra.normalize import target_normalization_from_record
    from trainer.data.dataset import prepare_dataset

    checkpoint = load_checkpoint(args.model)
    dataset, _ = prepare_dataset(
        args.data, grid=checkpoint.model_config.grid, graph_config=checkpoint.graph_config,
        normalization=target_normalization_from_record(checkpoint.normalization), screen=True,
        element=checkpoint.element or None, cache_dir=args.cache_dir, progress=False)
    parts = {name: dataset.subset(_ids(path)) for name, path in (("sel", args.ids), ("rep", args.report_ids))}
    spectrum, _ = member_roles(checkpoint.model_configs)
    sources = checkpoint.provenance.get("ensemble_members") or [checkpoint.provenance]
    names, preds = [], {"sel": [], "rep": []}
    for k in spectrum:
        one = checkpoint.member(k) if len(checkpoint.state_dicts) > 1 else checkpoint
        one = dataclasses.replace(one, spread_calibration=None, domain_index=None, e0_calibration=None)
        predictor = XanesPredictor(one, f"member {k}", device="cpu")
        for name, part in parts.items():
            preds[name].append(predictor.graph_outputs(list(part.graphs)).mu)
        source = sources[k] if len(sources) == len(checkpoint.state_dicts) else sources[0]
        names.append(str(source.get("config", {}).get("name") or Path(args.model).parent.name))
        print(f"{names[-1]}: done", flush=True)
    np.savez(args.out, names=np.array(names), train_mean=np.asarray(checkpoint.train_mean_spectrum),
             sel_ids=np.array(parts["sel"].ids), rep_ids=np.array(parts["rep"].ids),
             sel_true=np.asarray(parts["sel"].mu, dtype=np.float64),
             rep_true=np.asarray(parts["rep"].mu, dtype=np.float64),
             sel_pred=np.stack(preds["sel"]), rep_pred=np.stack(preds["rep"]))


def eta(pred: np.ndarray, true: np.ndarray, mean: np.ndarray) -> float:
    """Median per-spectrum MSE of the training mean over that of ``pred``."""
    return float(np.median(np.mean((mean - true) ** 2, 1)) / np.median(np.mean((pred - true) ** 2, 1)))


def _aligned(files: list[dict], part: str) -> tuple[np.ndarray, np.ndarray]:
    """(M, N, G) predictions of every member over the first file's ids, and (N, G) truth."""
    ids = list(files[0][f"{part}_ids"])
    preds = []
    for f in files:
        where = {str(r): k for k, r in enumerate(f[f"{part}_ids"])}
        missing = [r for r in ids if str(r) not in where]
        if missing:
            raise SystemExit(f"error: {len(missing)} {part} ids missing from a candidate (e.g. {missing[0]})")
        preds.append(f[f"{part}_pred"][:, [where[str(r)] for r in ids]])
    return np.concatenate(preds), files[0][f"{part}_true"]


def rule(args) -> None:
    files = [dict(np.load(p)) for p in [args.shipped, *args.candidates]]
    names = [str(n) for f in files for n in f["names"]]
    mean = files[0]["train_mean"]
    sel, sel_true = _aligned(files, "sel")
    rep, rep_true = _aligned(files, "rep")
    shipped = list(range(len(files[0]["names"])))
    alone = [eta(p, sel_true, mean) for p in sel]
    for k, name in enumerate(names):
        print(f"  {name:12s} alone: selection {alone[k]:.3f}  reporting {eta(rep[k], rep_true, mean):.3f}")

    def score(members: list[int]) -> float:
        return eta(sel[members].mean(0), sel_true, mean)

    members = list(shipped)
    current = score(members)
    print(f"shipped {len(members)}: selection eta {current:.3f}")
    for k in sorted(set(range(len(names))) - set(shipped), key=lambda j: -alone[j]):
        trial = score(members + [k])
        joins = trial > current
        print(f"offer {names[k]}: {current:.3f} -> {trial:.3f}  {'joins' if joins else 'stays out'}")
        if joins:
            members, current = members + [k], trial
    while len(members) > 2:
        weakest = min(members, key=lambda j: alone[j])
        trial = score([j for j in members if j != weakest])
        drops = trial > current
        print(f"drop {names[weakest]}: {current:.3f} -> {trial:.3f}  {'dropped' if drops else 'stays'}")
        if not drops:
            break
        members, current = [j for j in members if j != weakest], trial
    before = rep[shipped].mean(0)
    after = rep[members].mean(0)
    better = np.mean(np.mean((after - rep_true) ** 2, 1) < np.mean((before - rep_true) ** 2, 1))
    print(f"decided: {' '.join(names[j] for j in members)}")
    print(f"selection eta {score(shipped):.3f} -> {current:.3f}")
    print(f"reporting eta {eta(before, rep_true, mean):.3f} -> {eta(after, rep_true, mean):.3f}; "
          f"mean MSE {np.mean((before - rep_true) ** 2):.4e} -> {np.mean((after - rep_true) ** 2):.4e}; "
          f"{better:.0%} of its sites fitted better")
    with np.errstate(invalid="ignore"):
        resid = (sel[members] - sel_true).reshape(len(members), -1)
        corr = np.corrcoef(resid)[~np.eye(len(members), dtype=bool)]
    if args.group:
        group = set(args.group.split(","))
        print(f"weight of {', '.join(sorted(group))} against 1 for the others (chosen on the selection part):")
        best = (current, 1.0)
        for w in [float(x) for x in args.group_weights.split(",")]:
            weights = np.array([w if names[j] in group else 1.0 for j in members])[:, None, None]
            sel_w = eta((weights * sel[members]).sum(0) / weights.sum(), sel_true, mean)
            rep_w = eta((weights * rep[members]).sum(0) / weights.sum(), rep_true, mean)
            print(f"  x{w:g}: selection {sel_w:.3f}  reporting {rep_w:.3f}")
            if sel_w > best[0]:
                best = (sel_w, w)
        print(f"chosen: x{best[1]:g} (selection eta {best[0]:.3f})")
    print(f"members' residual correlation on the selection part: {corr.min():.2f}-{corr.max():.2f} "
          f"(median {np.median(corr):.2f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="per-member predictions of the selection and reporting parts")
    d.add_argument("model")
    d.add_argument("out")
    d.add_argument("--data", required=True)
    d.add_argument("--ids", required=True, help="the selection part's ids")
    d.add_argument("--report-ids", required=True, help="the reporting part's ids")
    d.add_argument("--cache-dir")
    r = sub.add_parser("rule", help="the release rule on dumped predictions")
    r.add_argument("shipped", help="dump of the shipped model")
    r.add_argument("candidates", nargs="+", help="dumps of candidate members")
    r.add_argument("--group", metavar="NAME,NAME", help="after the rule: members whose common weight "
                   "(against 1 for the others) is chosen on the selection part")
    r.add_argument("--group-weights", default="1,2,3,4", metavar="W,W", help="weights tried for --group")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # beside trainings on a small machine
    (dump if args.command == "dump" else rule)(args)


if __name__ == "__main__":
    main()
