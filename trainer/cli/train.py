"""``xanes-train CONFIG.yaml [--set key=value ...] [--resume] [--init MODEL]``.

Presets live in ``configs/`` (``paper``: the paper's hyperparameters, for a GPU;
``cpu``: compact, trains a useful model on a 2-core machine). Multi-GPU::

    torchrun --nproc_per_node 4 -m trainer.cli.train configs/cu-k-feff-paper.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from model_core.cli.common import fail, require_paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanes-train", description="Train a XANE(3) model.")
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optim.lr=5e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's train_state.pt")
    parser.add_argument("--init", metavar="MODEL", help="fine-tune from a shipped model name or checkpoint")
    parser.add_argument("--init-member", type=int, default=0, metavar="K",
                        help="with --init an ensemble: fine-tune its member K (spectrum members "
                             "first, then dedicated E0 members; default 0)")
    parser.add_argument("--data", help="shortcut for --set data.source=PATH")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    require_paths([args.config])
    from trainer.config import load_train_config

    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data}")
    try:
        config = load_train_config(args.config, overrides)
    except (OSError, ValueError, TypeError) as exc:
        fail(f"{args.config}: {exc}")
    if not config.data.source or not Path(config.data.source).exists():
        fail(f"{args.config}: data source {config.data.source!r} does not exist")
    from model_core.checkpoint import CheckpointError
    from model_core.inference import ModelLoadError
    from trainer.train import Trainer

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    graph_overrides = [item for item in overrides if item.split("=", 1)[0].strip().startswith("graph.")]
    try:  # the Trainer loads --init once; a bad one is a line naming it, not a traceback
        trainer = Trainer(config, init=args.init, init_member=args.init_member,
                          graph_overrides=graph_overrides, log=log)
    except (ModelLoadError, CheckpointError) as exc:
        fail(f"{args.init}: {exc}" if args.init else str(exc))
    if args.resume:
        trainer.resume()
    best = trainer.run()
    print(best)


if __name__ == "__main__":
    main()
