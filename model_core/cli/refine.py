"""``xanes-refine``: refine the local structure around an absorber against a measured spectrum.

Usage::

    xanes-refine STRUCTURE --measured FILE [--group NAME] [--element EL | --sites I,J,...]
                 [--model NAME_OR_PATH] [--reference FOIL_FILE [--reference-structure FILE]]
                 [--params shells,strain] [--shells N] [--window=LO,HI] [--shift-tolerance EV]
                 [--background] [--max-iterations N] [--device auto|cpu|cuda] [--out REFINED_FILE] [--json]

Radial scale factors of the first ``--shells`` coordination shells (shells: absorber-
neighbour distances split at gaps > 0.25 Å) and, for a crystal, an isotropic strain are
refined through the model together with the shift (within ``--shift-tolerance`` of the
element's calibration, from ``--reference`` or the tabulated edge), broadening and scale;
see :mod:`model_core.interpret.refine`.

``--json`` prints one object: ``first_shell`` (``distance_a``, ``start_a``, ``stderr_a``,
``n_atoms``; first shell = neighbours within 1.15 x the nearest distance),
``parameters`` (each ``{"value", "stderr"[, "start"]}``), ``shells``, ``metrics_start``,
``metrics_end``, ``calibration``, ``structure``, ``measured``, ``model``, ``sites``, ``out``.
Without ``--json`` the same is printed as ``key: value`` lines. ``--out`` writes the
refined structure (format from the extension, by ASE): the strained crystal when only
the strain is refined, else the refined cluster around the first site (absorber first),
or the molecule with its atoms moved.

Bad input exits with status 2 and one ``error: FILE: problem`` line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Sequence

from model_core.cli.common import CliError, add_site_options, fail, join_negative_values, require_paths
from model_core.cli.compare import _json_safe
from model_core.cli.identify import (PredictorFactory, _normalized, _positive_int, add_fit_options,
                                     load_calibration)


def _params(text: str) -> tuple[str, ...]:
    from model_core.interpret.refine import PARAMS

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in names if p not in PARAMS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"--params takes a comma list of {', '.join(PARAMS)}; got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanes-refine",
        description="Refine coordination-shell distances (and the strain of a crystal) through the "
                    "differentiable model against a measured spectrum, with the shift, broadening and scale.")
    parser.add_argument("structure", metavar="STRUCTURE", help="starting structure file")
    parser.add_argument("--measured", required=True, metavar="FILE", help="measured spectrum")
    parser.add_argument("--group", help="Athena project group (default: the first)")
    add_site_options(parser)
    parser.add_argument("--model", help="shipped model name or checkpoint path (default: the element's model)")
    parser.add_argument("--reference", metavar="FOIL_FILE",
                        help="reference measured with the sample (metal foil) for the energy calibration")
    parser.add_argument("--reference-structure", metavar="FILE",
                        help="the reference's structure (default: the metal from ase.build.bulk)")
    parser.add_argument("--params", type=_params, default=None, metavar="shells,strain",
                        help="what to refine (default: shells,strain for a crystal, shells for a molecule)")
    parser.add_argument("--shells", type=_positive_int, default=3, metavar="N",
                        help="number of coordination shells refined (default 3)")
    add_fit_options(parser)
    parser.add_argument("--max-iterations", type=_positive_int, default=30, metavar="N",
                        help="L-BFGS iterations per round (two rounds; default 30)")
    parser.add_argument("--device", default="cpu", help="device of the predictions (default cpu; the refinement itself runs on the CPU)")
    parser.add_argument("--out", metavar="REFINED_FILE",
                        help="write the refined structure (ASE format from the name)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run_refine(args: argparse.Namespace, predictor_factory: PredictorFactory | None = None,
               stdout=None) -> dict[str, Any]:
    """Run ``xanes-refine``; returns the JSON summary."""
    from model_core.cli.compare import _select
    from model_core.cli.identify import load_predictor
    from model_core.interpret.identify import DEFAULT_SHIFT_TOLERANCE_EV
    from model_core.interpret.refine import refine_structure
    from model_core.io import read_structure

    stdout = stdout or sys.stdout
    measured, norm = _normalized(args.measured, args.group)
    structure = read_structure(args.structure)
    if args.sites is not None:
        selection = _select(structure, args, None)
        element = structure.symbols[int(selection.indices[0])]
    else:
        element = args.element or (measured.element if measured.element in structure.elements else None)
    predictor, element = load_predictor(predictor_factory, args.model, element, args.device, args.structure)
    if args.sites is None:
        selection = _select(structure, args, element)
    if not hasattr(predictor, "checkpoint"):
        raise CliError(f"model {predictor.info.name}: refinement needs a checkpoint (a differentiable model)")
    params = args.params or (("shells", "strain") if structure.is_periodic else ("shells",))
    if "strain" in params and not structure.is_periodic:
        raise CliError(f"{args.structure}: --params strain needs a crystal (no periodic cell)")
    calibration = load_calibration(predictor, element, args.reference, args.reference_structure, norm.e0)
    tolerance = DEFAULT_SHIFT_TOLERANCE_EV if args.shift_tolerance is None else args.shift_tolerance
    window = None if args.window is None else (norm.e0 + args.window[0], norm.e0 + args.window[1])
    try:
        result = refine_structure(predictor, structure, selection.indices, selection.weights, norm.energy_ev,
                                  norm.flat, calibration, element=element, params=params,
                                  max_shells=args.shells, shift_tolerance_ev=tolerance, window=window,
                                  background=args.background, max_iterations=args.max_iterations)
    except ValueError as exc:
        raise CliError(f"{args.structure}: {exc}") from exc
    if args.out:
        _write(result.structure, args.out)
    summary = {
        "structure": str(args.structure), "measured": str(args.measured), "group": measured.group,
        "model": predictor.info.name, "element": element, "sites": [int(i) for i in selection.indices],
        "weights": [float(w) for w in selection.weights], "params": list(params),
        "calibration": calibration.to_dict(), "shift_tolerance_ev": tolerance, **result.to_dict(),
        "window_ev": list(result.fit_end.window), "out": args.out,
    }
    if args.json:
        stdout.write(json.dumps(_json_safe(summary)) + "\n")
    else:
        for key in ("first_shell", "parameters", "metrics_start", "metrics_end"):
            value = summary[key]
            for name, item in value.items():
                text = (f"{item['value']:.6g} +- {item['stderr']:.3g}" if isinstance(item, dict)
                        else f"{item:.6g}" if isinstance(item, float) and math.isfinite(item) else item)
                stdout.write(f"{key}.{name}: {text}\n")
    return summary


def _write(structure: Any, path: str) -> None:
    from ase.io import write

    from model_core.io.convert import to_ase

    atoms = to_ase(structure)
    try:
        write(path, atoms)
    except OSError as exc:
        raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except Exception as exc:  # noqa: BLE001 - ASE raises anything for unknown extensions
        raise CliError(f"{path}: cannot write the refined structure ({exc})") from exc


def main(argv: Sequence[str] | None = None, predictor_factory: PredictorFactory | None = None) -> int:
    """Entry point of ``xanes-refine``; returns 0, or exits with status 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(join_negative_values(argv, ("--window",)))
    require_paths([p for p in (args.structure, args.measured, args.reference) if p])
    try:
        run_refine(args, predictor_factory)
    except (CliError, ValueError, OSError, IndexError) as exc:
        fail(str(exc))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
