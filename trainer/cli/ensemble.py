"""``xanes-ensemble MEMBER.pt MEMBER.pt [...] --out MODEL.pt``: deep-ensemble checkpoints.

What it does is :data:`DESCRIPTION`, which ``--help`` prints as plain text.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from model_core.cli.common import fail


DESCRIPTION = """\
Join independently trained checkpoints of one validation split (and one energy grid and
graph setting; their architectures may differ, and a member may have been trained on more
sites: the first checkpoint's training mean stays the baseline of eta, so give a member
of the plain training split first) into a deep-ensemble checkpoint: the model then
predicts the mean of its members, and their standard deviation comes with every
prediction as a rough uncertainty. Measure the ensemble with xanes-eval on the members'
common validation split. --weights gives each checkpoint a weight in that mean (all
of its members get it): choose them on data that will not also report the ensemble."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanes-ensemble", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("members", nargs="+", help="trained checkpoints (paths or shipped model names)")
    parser.add_argument("--out", required=True, metavar="MODEL.pt", help="where the ensemble checkpoint goes")
    parser.add_argument("--weights", metavar="W,W,...",
                        help="one positive weight per checkpoint in the spectrum mean (default: equal)")
    parser.add_argument("--calibrate-data", metavar="DATA",
                        help="then calibrate the band and domain score on DATA (as xanes-calibrate does)")
    parser.add_argument("--calibrate-ids", default="val.txt",
                        help="validation ids for --calibrate-data: a file or a split name (default val.txt)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from model_core.checkpoint import CheckpointError, load_checkpoint, make_ensemble, save_checkpoint
    from model_core.inference import ModelLoadError, resolve_model_path

    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            fail(f"--weights {args.weights}: not a comma-separated list of numbers")
        if len(weights) != len(args.members) or not all(w > 0 for w in weights):
            fail(f"--weights {args.weights}: need one positive weight per checkpoint ({len(args.members)})")
    checkpoints = []
    for member in args.members:
        try:
            checkpoints.append(load_checkpoint(resolve_model_path(member)[1]))
        except (CheckpointError, ModelLoadError) as exc:
            fail(f"{member}: {exc}")
    try:
        ensemble = make_ensemble(checkpoints, weights=weights)
    except CheckpointError as exc:
        fail(f"cannot join {', '.join(args.members)}: {exc}")
    path = save_checkpoint(ensemble, Path(args.out))
    print(f"{path}: ensemble of {len(ensemble.state_dicts)} members ({ensemble.element} {ensemble.edge})")
    if args.calibrate_data:
        import json

        from trainer.cli.calibrate import run

        print(json.dumps(run([str(path), "--data", args.calibrate_data, "--ids", args.calibrate_ids,
                              "--out", str(path)])))


if __name__ == "__main__":
    main()
