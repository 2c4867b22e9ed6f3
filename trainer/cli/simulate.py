"""``xanes-simulate``: first-principles XANES of absorber sites with FEFF10.

Usage::

    xanes-simulate STRUCTURE [STRUCTURE ...] [--element EL | --sites I,J,...]
                   [--preset reference|medium|fast] [--edge K|L3] [--out DIR]
                   [--inputs-only] [--workers N] [--parsl-config FILE] [--timeout S]
    xanes-simulate --list-presets

Results go to ``DIR/<structure name>/FEFF-XANES/<NNN>_<El>/{feff.inp,xmu.dat}`` with the
structure beside them (``POSCAR``; ``structure.xyz`` for molecules), the layout of the
Cu FEFF dataset. Symmetry-equivalent sites are computed once; finished sites are
skipped when the command is run again. Exit status: 0 when every site is computed,
1 when some site failed (or FEFF10 is unavailable), 2 for bad input, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from model_core.cli.common import add_site_options, error_message, fail, require_paths, wrong_kind


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanes-simulate",
        description="Compute XANES of absorber sites with FEFF10 (feff10-rs), locally or with Parsl.")
    parser.add_argument("inputs", nargs="*", metavar="STRUCTURE",
                        help="structure files: CIF, POSCAR, XYZ, extended XYZ, feff.inp, PDB, ...")
    add_site_options(parser, element_default="the absorber the structure file designates, as in a feff.inp")
    parser.add_argument("--preset", default="reference",
                        help="FEFF parameter preset (default: reference, the Cu dataset's settings; "
                             "see --list-presets)")
    parser.add_argument("--edge", default="K", help="absorption edge: K (default) or L3")
    parser.add_argument("--out", default="feff-runs", help="output folder (default: ./feff-runs)")
    parser.add_argument("--inputs-only", action="store_true", help="write feff.inp files without running FEFF")
    parser.add_argument("--workers", type=int, default=1, help="FEFF runs in parallel on this machine (default 1)")
    parser.add_argument("--parsl-config", metavar="FILE",
                        help="Python file defining `config` (a parsl.config.Config): run the sites with Parsl")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="wall-time limit per site")
    parser.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    return parser


def _list_presets() -> None:
    from model_core.feff.inputs import PRESETS

    print(f"{'preset':<10} {'~s/site':>8} {'cluster':>8}  description")
    for preset in PRESETS.values():
        print(f"{preset.name:<10} {preset.expected_seconds_per_site:>8.0f} {preset.radius:>6.1f} Å  "
              f"{preset.description}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_presets:
        _list_presets()
        return
    if not args.inputs:
        parser.error("give at least one STRUCTURE (or --list-presets)")
    if args.workers < 1:
        fail("--workers must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        fail("--timeout must be positive")
    require_paths(args.inputs)

    from model_core.io import StructureReadError, read_structure
    from model_core.sites import select_sites
    from model_core.feff.errors import FeffUnavailableError
    from model_core.feff.inputs import get_preset, normalize_edge
    from model_core.feff.simulation import simulate, structure_folder_name

    try:
        preset = get_preset(args.preset)
        edge = normalize_edge(args.edge)
    except ValueError as exc:
        fail(str(exc))
    if args.parsl_config and not Path(args.parsl_config).is_file():
        fail(f"{args.parsl_config}: Parsl config file not found")

    # Read and check everything before the first (possibly hours-long) FEFF run.
    jobs = []
    folders: dict[str, str] = {}
    for path in args.inputs:
        try:
            structure = read_structure(path)
        except StructureReadError as exc:
            fail(error_message(exc, [path]) + wrong_kind(path, "structure"))
        try:
            selection = select_sites(structure, element=args.element, sites=args.sites)
        except ValueError as exc:
            fail(f"{path}: {exc}")
        folder = structure_folder_name(structure)
        if folder in folders:
            fail(f"{path}: its output folder {folder!r} is also that of {folders[folder]}; rename one file")
        folders[folder] = path
        jobs.append((path, structure, selection))

    from tqdm import tqdm

    failed = cancelled = 0
    for path, structure, selection in jobs:
        bar: tqdm | None = None

        def open_bar(total: int) -> tqdm:
            nonlocal bar
            if bar is None:
                # smoothing=0: the rate is the mean since `prepared` restarted the clock.
                bar = tqdm(total=total, desc=structure_folder_name(structure), unit="site", file=sys.stderr,
                           dynamic_ncols=True, smoothing=0)
            return bar

        def progress(finished: int, total: int, status: str) -> None:
            current = open_bar(total)
            current.set_postfix_str(status, refresh=False)
            current.update(finished - current.n)

        def prepared(finished: int, total: int) -> None:
            # The FEFF runs start now: the sites finished without a run (already computed,
            # inputs written) become the bar's initial count and the clock restarts, so the
            # rate is that of FEFF runs, not thousands of skipped sites per second.
            current = open_bar(total)
            current.reset(total)
            current.initial = current.n = finished
            current.refresh()

        try:
            summary = simulate(structure, selection, args.out, preset, edge, workers=args.workers,
                               inputs_only=args.inputs_only, parsl_config=args.parsl_config,
                               progress=progress, timeout_s=args.timeout, prepared=prepared)
        except FeffUnavailableError as exc:
            fail(str(exc), code=1)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print("interrupted: running FEFF processes were stopped; run again to resume", file=sys.stderr)
            raise SystemExit(130) from None
        except ValueError as exc:
            fail(f"{path}: {exc}")
        finally:
            if bar is not None:
                bar.close()
        print(summary.describe())
        failed += len(summary.failed)
        cancelled += len(summary.cancelled)
    if failed or cancelled:
        print(f"{failed} site(s) failed, {cancelled} cancelled", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
