"""``xanes-identify``: rank candidate structures against a measured spectrum.

Usage::

    xanes-identify MEASURED [--group NAME] --candidates PATH [PATH ...] [--library DIR]
                   [--element EL] [--model NAME_OR_PATH]
                   [--reference FOIL_FILE [--reference-structure FILE]] [--window=LO,HI]
                   [--shift-tolerance EV] [--background] [--lcf K] [--lcf-candidates N]
                   [--device auto|cpu|cuda] [--json] [--out FILE.csv]

Every candidate (structure files; folders are searched for structure files; a
``--library`` folder keeps its predictions cached in ``DIR/.xanes-cache``) is
predicted (multiplicity-weighted average over its sites of the element), placed with
the element's calibration (from ``--reference``, the measured metal foil, or else from
the tabulated edge energy), fitted (broadening, scale, and the shift within
``--shift-tolerance`` of the calibration), scored and ranked; see
:mod:`model_core.interpret.identify` for the score and the confidence.

Output: ``--json`` prints one object ``{"measured", "element", "model", "calibration",
"window_ev", "score_definition", "confidence_definition", "ranking": [{"rank",
"structure", "score", "confidence", "shift_ev", "broaden_fwhm_ev", "scale", "metrics",
...}], "skipped": [...], "warnings": [...]}`` (plus ``"lcf"`` with ``--lcf K``);
otherwise (and always to ``--out``) a CSV: ``# key: value`` lines, then
``rank,structure,score,confidence,shift_ev,broaden_fwhm_ev,scale,mse,pearson_r,pearson_r_deriv,cosine``.

Exit status: 0; 1 when some candidate could not be used (reported on stderr, left
out, the others ranked); 2 on bad input (one ``error: FILE: problem`` line).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any, Callable, Sequence

import numpy as np

from model_core.cli.common import (CliError, fail, int_at_least, join_negative_values, nonnegative_ev,
                                   require_paths)
# One parser of LO,HI windows and one JSON cleaner for every CLI.
from model_core.cli.compare import _json_safe, _window

PredictorFactory = Callable[..., Any]
_CSV_COLUMNS = ("rank", "structure", "score", "confidence", "shift_ev", "broaden_fwhm_ev", "scale",
                "mse", "pearson_r", "pearson_r_deriv", "cosine")


_positive_int = int_at_least(1)


_tolerance = nonnegative_ev("--shift-tolerance")


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """--window, --shift-tolerance, --background: how a prediction is fitted to the measurement
    (shared by xanes-identify and xanes-refine)."""
    parser.add_argument("--window", type=_window, metavar="LO,HI",
                        help="fit only LO..HI eV relative to the measured E0 (e.g. --window -20,80)")
    parser.add_argument("--shift-tolerance", type=_tolerance, default=None, metavar="EV",
                        help="the fitted shift stays within the calibration +- EV (default 1)")
    parser.add_argument("--background", action="store_true", help="also fit a linear background")


def build_parser() -> argparse.ArgumentParser:
    from model_core.interpret.identify import CONFIDENCE_DEFINITION, SCORE_DEFINITION

    parser = argparse.ArgumentParser(
        prog="xanes-identify",
        description="Rank candidate structures by how well their predicted XANES, placed with one "
                    "energy calibration per element and fitted (broadening, scale, shift near the "
                    f"calibration), matches a measured spectrum. Score: {SCORE_DEFINITION}. "
                    f"Confidence: {CONFIDENCE_DEFINITION}.")
    parser.add_argument("measured", metavar="MEASURED",
                        help="measured spectrum: XDI, Athena .prj, column/CSV file, FEFF xmu.dat, FDMNES output")
    parser.add_argument("--group", help="Athena project group (default: the first)")
    parser.add_argument("--candidates", nargs="+", default=[], metavar="PATH",
                        help="candidate structure files, or folders searched for them")
    parser.add_argument("--library", metavar="DIR",
                        help="a folder of known structures whose predictions are cached in DIR/.xanes-cache")
    parser.add_argument("--element", help="absorbing element (default: the measured file's, else the model's)")
    parser.add_argument("--model", help="shipped model name or checkpoint path (default: the element's model)")
    parser.add_argument("--reference", metavar="FOIL_FILE",
                        help="reference measured with the sample (metal foil): calibrates the energy axis; "
                             "without it the tabulated edge energy is used")
    parser.add_argument("--reference-structure", metavar="FILE",
                        help="the reference's structure (default: the metal from ase.build.bulk)")
    add_fit_options(parser)
    parser.add_argument("--lcf", type=_positive_int, metavar="K",
                        help="also fit linear combinations of up to K of the top candidates")
    parser.add_argument("--lcf-candidates", type=_positive_int, default=8, metavar="N",
                        help="combine the top N ranked candidates (at most 8; default 8)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the CSV")
    parser.add_argument("--out", metavar="FILE.csv", help="write the ranking CSV here")
    return parser


def _normalized(path: str, group: str | None):
    from model_core.spectra.measured import read_measured
    from model_core.spectra.normalize import NormalizationError, normalize

    measured = read_measured(path, group=group)
    try:
        return measured, normalize(measured.energy_ev, measured.mu)
    except NormalizationError as exc:
        raise CliError(f"{path}: {exc}") from exc


def load_calibration(predictor: Any, element: str, reference: str | None, reference_structure: str | None,
                     measured_e0_ev: float | None = None):
    """The calibration of the CLIs: from ``reference`` (a measured foil) or tabulated."""
    from model_core.interpret.calibration import calibrate_from_reference, calibrate_tabulated

    if reference is None:
        if reference_structure is not None:
            raise CliError(f"{reference_structure}: --reference-structure needs --reference")
        return calibrate_tabulated(predictor, element, measured_e0_ev=measured_e0_ev)
    _, norm = _normalized(reference, None)
    structure = None
    if reference_structure is not None:
        from model_core.io import read_structure

        structure = read_structure(reference_structure)
        if element not in structure.elements:
            raise CliError(f"{reference_structure}: no {element} site in the reference structure")
    try:
        return calibrate_from_reference(predictor, norm.energy_ev, norm.flat, element, structure=structure,
                                        reference=reference)
    except ValueError as exc:
        raise CliError(f"{reference}: {exc}") from exc


def load_predictor(factory: PredictorFactory | None, model: str | None, element: str | None, device: str,
                   label: str):
    """(predictor, element) from ``--model``/``--element`` as ``xanes-compare`` chooses them."""
    if factory is None:
        from model_core.inference import load_model

        factory = load_model
    if model:
        predictor = factory(model, device=device)
    elif element:
        predictor = factory(None, device=device, element=element)
    else:
        raise CliError(f"{label}: cannot tell the absorbing element; give --element or --model")
    element = element or predictor.info.element
    if predictor.info.element and element != predictor.info.element:
        raise CliError(f"model {predictor.info.name} predicts {predictor.info.element}, not {element}")
    return predictor, element


def run_identify(args: argparse.Namespace, predictor_factory: PredictorFactory | None = None,
                 stdout=None) -> tuple[dict[str, Any], int]:
    """Run ``xanes-identify``; returns (the JSON summary, exit status 0 or 1)."""
    from pathlib import Path

    from model_core.interpret.identify import (CONFIDENCE_DEFINITION, DEFAULT_SHIFT_TOLERANCE_EV,
                                               SCORE_DEFINITION, rank_candidates, ranking_metadata)
    from model_core.interpret.lcf import MAX_LCF_CANDIDATES, linear_combinations
    from model_core.interpret.library import (CACHE_DIR, CandidateError, expand_paths, member_predictors,
                                              predict_candidate)

    stdout = stdout or sys.stdout
    if not args.candidates and not args.library:
        raise CliError("give candidates (--candidates PATH ...) or a --library folder")
    if args.library and not Path(args.library).is_dir():
        raise CliError(f"{args.library}: --library must be a folder")
    if args.lcf_candidates > MAX_LCF_CANDIDATES:
        raise CliError(f"--lcf-candidates: at most {MAX_LCF_CANDIDATES}")
    measured, norm = _normalized(args.measured, args.group)
    element = args.element or measured.element
    predictor, element = load_predictor(predictor_factory, args.model, element, args.device, args.measured)
    calibration = load_calibration(predictor, element, args.reference, args.reference_structure, norm.e0)
    tolerance = DEFAULT_SHIFT_TOLERANCE_EV if args.shift_tolerance is None else args.shift_tolerance

    members = member_predictors(predictor)
    candidates, skipped = [], []
    jobs = [(p, None) for p in expand_paths(args.candidates)]
    if args.library:
        jobs += [(p, Path(args.library) / CACHE_DIR) for p in expand_paths([args.library])]
    if not jobs:
        raise CliError(f"{(args.candidates or [args.library])[0]}: no structure files found")
    for path, cache in jobs:
        try:
            candidates.append(predict_candidate(predictor, path, element, members=members, cache_dir=cache))
        except CandidateError as exc:
            skipped.append(str(exc))
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    if not candidates:
        raise CliError("no candidate could be predicted (see above)")

    window = None
    if args.window is not None:
        window = (norm.e0 + args.window[0], norm.e0 + args.window[1])
    try:
        ranking = rank_candidates(norm.energy_ev, norm.flat, candidates, calibration, element=element,
                                  shift_tolerance_ev=tolerance, window=window, background=args.background)
        lcf = None
        if args.lcf:
            top = [row.candidate for row in ranking[:args.lcf_candidates]]
            lcf = linear_combinations(norm.energy_ev, norm.flat, top, calibration, args.lcf, element=element,
                                      shift_tolerance_ev=tolerance, window=window, background=args.background,
                                      start=ranking[0].fit)
    except ValueError as exc:
        raise CliError(f"{args.measured}: {exc}") from exc

    warnings = list(measured.warnings) + list(norm.warnings)
    if not predictor.info.trained:
        warnings.append(f"model {predictor.info.name} is UNTRAINED: the ranking is not meaningful")
    foreign = [row.candidate.path for row in ranking
               if row.candidate.domain_score is not None and np.any(row.candidate.domain_score > 1)]
    if foreign:
        warnings.append(f"outside model {predictor.info.name}'s training domain (domain_score > 1), "
                        f"their spectra are extrapolation: {', '.join(foreign)}")
    summary: dict[str, Any] = {
        "measured": str(args.measured), "group": measured.group, "element": element,
        "model": predictor.info.name, "e0": norm.e0, "calibration": calibration.to_dict(),
        "shift_tolerance_ev": tolerance, "window_ev": list(ranking[0].fit.window),
        "score_definition": SCORE_DEFINITION, "confidence_definition": CONFIDENCE_DEFINITION,
        "ranking": [row.to_dict() for row in ranking], "skipped": skipped, "warnings": warnings,
    }
    if lcf is not None:
        summary["lcf"] = [entry.to_dict() for entry in lcf]
    metadata = {"measured": args.measured, "model": predictor.info.name, "element": element,
                "measured_e0_ev": f"{norm.e0:.3f}", **ranking_metadata(calibration),
                "shift_tolerance_ev": f"{tolerance:g}",
                "window_ev": f"{ranking[0].fit.window[0]:.3f} {ranking[0].fit.window[1]:.3f}"}
    for k, warning in enumerate(warnings):
        metadata[f"warning_{k + 1}"] = warning
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8", newline="") as handle:
                _write_csv(handle, summary, metadata)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write ({exc.strerror or exc})") from exc
    if args.json:
        stdout.write(json.dumps(_json_safe(summary)) + "\n")
    elif not args.out:
        _write_csv(stdout, summary, metadata)
    return summary, 1 if skipped else 0


def _write_csv(stream, summary: dict[str, Any], metadata: dict[str, Any]) -> None:
    for key, value in metadata.items():
        stream.write(f"# {key}: {' '.join(str(value).split())}\n")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in summary["ranking"]:
        metrics = row["metrics"]
        writer.writerow([row["rank"], row["structure"], f"{row['score']:.6g}", f"{row['confidence']:.6g}",
                         f"{row['shift_ev']:.4f}", f"{row['broaden_fwhm_ev']:.4f}", f"{row['scale']:.6g}",
                         *(f"{metrics[k]:.6g}" for k in ("mse", "pearson_r", "pearson_r_deriv", "cosine"))])


def main(argv: Sequence[str] | None = None, predictor_factory: PredictorFactory | None = None) -> int:
    """Entry point of ``xanes-identify``: 0, 1 when a candidate was left out, 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(join_negative_values(argv, ("--window",)))
    # Candidates that are missing are reported and left out (exit 1); these are not optional.
    require_paths([p for p in (args.measured, args.reference, args.reference_structure) if p])
    try:
        _, status = run_identify(args, predictor_factory)
    except (CliError, ValueError, OSError, IndexError) as exc:
        fail(str(exc))
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
