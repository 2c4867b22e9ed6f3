"""``xanes-eval --model NAME_OR_PATH --data DIR_OR_ARCHIVE [--ids FILE] [--json]``.

Prints MSE, median per-spectrum MSE, 1st/2nd-derivative MSE and eta (training-mean
median MSE / model median MSE); writes a per-spectrum CSV and a PNG of the best,
median and worst examples into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from model_core.cli.common import fail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xanes-eval", description="Evaluate a XANE(3) model on a dataset.")
    parser.add_argument("--model", required=True, help="shipped model name or checkpoint path")
    parser.add_argument("--data", required=True, help="dataset directory or .tar.xz/.tar.gz/.zip archive")
    parser.add_argument("--ids", help="file of record ids to evaluate (one per line)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, MPS, CPU; default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--out-dir", help="where the CSV and PNG go (default: eval-<model>)")
    parser.add_argument("--screen", action="store_true", help="drop unphysical spectra before scoring")
    parser.add_argument("--cache-dir", help="cache prepared data here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not Path(args.data).exists():
        fail(f"{args.data}: no such dataset directory or archive")
    if args.ids and not Path(args.ids).is_file():
        fail(f"{args.ids}: no such id file")
    from trainer.evaluate import evaluate, format_metrics, plot_examples, write_per_spectrum_csv

    try:
        result = evaluate(args.model, args.data, args.ids, device=args.device, screen=args.screen,
                          cache_dir=args.cache_dir, progress=not args.json)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    out_dir = Path(args.out_dir or f"eval-{Path(args.model).stem if Path(args.model).exists() else args.model}")
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_per_spectrum_csv(result, out_dir / "per_spectrum.csv")
    png_path = plot_examples(result, out_dir / "examples.png", title=f"{args.model} on {Path(args.data).name}")
    for rid, reason in result.problems[:20]:
        print(f"skipped {rid}: {reason}", file=sys.stderr)
    if len(result.problems) > 20:
        print(f"... and {len(result.problems) - 20} more unusable records", file=sys.stderr)
    if args.json:
        payload = {"model": args.model, "data": args.data, **result.metrics,
                   "per_spectrum_csv": str(csv_path), "examples_png": str(png_path)}
        print(json.dumps(payload))
    else:
        print(format_metrics(result.metrics))
        print(f"per-spectrum CSV: {csv_path}\nexamples: {png_path}")


if __name__ == "__main__":
    main()
