"""Seconds per training epoch on the Cu training split, for each preset, on this machine.

Times forward + backward + optimizer steps over a sample of training batches and
extrapolates to the full split (3,340 sites), so the benchmark takes a minute or two.

    python benchmarks/train_epoch.py [--presets cpu paper] [--batches 20] [--threads N]
                                     [--set model.l_max=1 --set graph.r_crop=7.0 ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--batches", type=int, default=20, help="batches timed per preset")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--data", help="Cu dataset (default: the preset's source)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as for xanes-train (repeatable)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch_geometric.loader import DataLoader

    from model_core.nn.model import XANE3
    from trainer.config import load_train_config
    from trainer.loss import composite_loss
    from trainer.splits import load_splits

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for preset in args.presets:
        overrides = ([f"data.source={args.data}"] if args.data else []) + args.overrides
        config = load_train_config(REPO / "configs" / f"cu-k-feff-{preset}.yaml", overrides)
        train_split, *_ = load_splits(config, log=lambda *_: None)
        torch.manual_seed(0)
        model = XANE3(config.model).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
        loader = DataLoader(list(train_split.data), batch_size=config.optim.batch_size, shuffle=True)
        n_batches = len(loader)
        timed, elapsed = 0, 0.0
        for k, batch in enumerate(loader):
            if k >= args.batches + 2:
                break
            start = time.perf_counter()
            batch = batch.to(device)
            out = model(batch)
            loss, _ = composite_loss(out["mu"], batch.y, config.model.grid.step_ev, 100, config.loss,
                                     out.get("e0"), batch.e0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if k >= 2:  # the first batches include one-off set-up costs
                elapsed += time.perf_counter() - start
                timed += 1
        per_batch = elapsed / max(timed, 1)
        params = sum(p.numel() for p in model.parameters())
        print(f"{preset:>6}: {params / 1e6:.2f} M parameters, {per_batch:.3f} s/batch of "
              f"{config.optim.batch_size}, ~{per_batch * n_batches:.0f} s/epoch "
              f"({len(train_split.ids)} training sites)")


if __name__ == "__main__":
    main()
