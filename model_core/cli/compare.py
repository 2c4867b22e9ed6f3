"""``xanes-compare``: compare a predicted spectrum with a measured one.

Usage::

    xanes-compare STRUCTURE --measured FILE [--element EL | --sites I,J,...]
                  [--model NAME_OR_PATH] [--group NAME] [--columns SPEC] [--shift EV]
                  [--no-align] [--broaden FWHM] [--window LO,HI] [--device auto|cpu|cuda]
                  [--out FILE.csv] [--json]

The structure's absorber sites are predicted (multiplicity-weighted average),
the measured spectrum is read and normalized (larch ``pre_edge``), the
prediction is placed at its predicted E0 (or the measured E0 when the model
predicts none), aligned by derivative cross-correlation unless ``--no-align``,
optionally broadened, and both are written as CSV (``# key: value`` metadata,
then ``energy_ev,measured,predicted,d_measured,d_predicted``) to ``--out`` or
stdout. ``--json`` prints one JSON object with E0, edge step, shift and the
similarity metrics instead of the CSV on stdout. Every guess and repair made
while reading the measured file is also one ``warning:`` line on stderr.
``--columns`` names the columns when the reader's guess fails or is wrong,
e.g. ``--columns energy=Angle(o),i0=I0,if=SCA1+SCA2`` or ``--columns energy=1,mu=3``.

Bad input exits with status 2 and one ``error: FILE: problem`` line on stderr,
FILE as given on the command line; missing files are reported before anything
slow is imported.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Sequence

import numpy as np

from model_core.cli.common import (CliError, add_site_options, column_spec, error_message, fail, nonnegative_ev,
                                   join_negative_values, require_paths, wrong_kind)

PredictorFactory = Callable[..., Any]


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--window expects LO,HI in eV relative to E0, e.g. -20,80; got {text!r}") from exc
    if not hi > lo:
        raise argparse.ArgumentTypeError(f"--window needs LO < HI, got {text!r}")
    return lo, hi


_fwhm = nonnegative_ev("--broaden", "a FWHM in eV")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of eV, got {text!r}") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of eV, got {text!r}")
    return value


def _columns_help() -> str:
    from model_core.spectra.measured.channels import COLUMN_SPEC_HELP

    return COLUMN_SPEC_HELP


def read_measured_file(path: str, group: str | None, spec: dict[str, object] | None):
    """The measured spectrum of ``path``, with the ``--columns`` choice when given."""
    from model_core.spectra.measured import choice_from_spec, inspect_columns, read_measured

    choice = None
    if spec is not None:
        choice = choice_from_spec(spec, inspect_columns(path, group=group).names, path)
    return read_measured(path, group=group, columns=choice)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanes-compare",
        description="Compare the predicted K-edge XANES of a structure with a measured spectrum.")
    parser.add_argument("structure", metavar="STRUCTURE",
                        help="structure file: CIF, POSCAR, XYZ, extended XYZ, feff.inp, PDB, ...")
    parser.add_argument("--measured", required=True, metavar="FILE",
                        help="measured spectrum: XDI, Athena .prj, column/CSV file, FEFF xmu.dat, FDMNES output")
    add_site_options(parser)
    parser.add_argument("--model", help="shipped model name or checkpoint path "
                                        "(default: the model for the absorbing element)")
    parser.add_argument("--group", help="Athena project group to compare with (default: the first)")
    parser.add_argument("--columns", type=column_spec, metavar="SPEC", help=_columns_help())
    parser.add_argument("--shift", type=_finite, default=0.0, metavar="EV",
                        help="energy shift added to the prediction, eV (the start of the automatic alignment)")
    parser.add_argument("--no-align", action="store_true",
                        help="no automatic alignment: place the prediction at E0 plus --shift")
    parser.add_argument("--broaden", type=_fwhm, default=0.0, metavar="FWHM",
                        help="Gaussian broadening of the prediction, FWHM in eV (default 0: none)")
    parser.add_argument("--window", type=_window, metavar="LO,HI",
                        help="compare only LO..HI eV relative to the measured E0, e.g. --window -20,80")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--out", metavar="FILE.csv", help="write the CSV here instead of stdout")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (E0, edge step, shift, metrics) instead of the CSV")
    parser.add_argument("--fit", action="store_true",
                        help="also fit shift (free alignment), Gaussian and Lorentzian broadening and scale "
                             "by least squares; --json gains a \"fit\" object")
    return parser


def _absorbing_element(args: argparse.Namespace, structure: Any, measured: Any) -> str | None:
    """Element hint for choosing a model: --element, the measured file's, the structure's absorber."""
    from model_core.types import element_symbol

    if args.element:
        return args.element
    if measured.element and measured.element in structure.elements:
        return measured.element
    if structure.absorber_index is not None:
        return element_symbol(structure.atomic_numbers[structure.absorber_index])
    return measured.element


def _select(structure: Any, args: argparse.Namespace, element: str | None):
    from model_core.sites import select_sites

    label = structure.source or structure.name
    try:
        if args.sites is not None:
            return select_sites(structure, sites=args.sites)
        if args.element is None and structure.absorber_index is not None \
                and structure.symbols[structure.absorber_index] == element:
            # A FEFF cluster names its absorber; the other atoms of that element sit
            # near the cluster's edge with truncated environments.
            return select_sites(structure, sites=[structure.absorber_index])
        if element is None:
            raise CliError(f"{label}: cannot tell the absorbing element; give --element or --model")
        return select_sites(structure, element=element)
    except ValueError as exc:
        raise CliError(f"{label}: {exc}") from exc


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_compare(args: argparse.Namespace, predictor_factory: PredictorFactory | None = None,
                stdout=None) -> dict[str, Any]:
    """Run the comparison described by parsed ``args``.

    Args:
        args: namespace from :func:`build_parser`.
        predictor_factory: called as ``factory(name_or_path, device=..., element=...)``
            and returning a :class:`~model_core.inference.Predictor`; defaults to
            :func:`model_core.inference.load_model` (tests inject a fake).
        stdout: stream for the CSV/JSON output (default ``sys.stdout``).

    Returns:
        The summary that ``--json`` prints.

    Raises:
        CliError, ValueError, OSError: bad input; :func:`main` turns them into one line.
    """
    from model_core.io import read_structure
    from model_core.spectra.align import comparison_to_csv, compare
    from model_core.spectra.normalize import NormalizationError, normalize

    stdout = stdout or sys.stdout
    if predictor_factory is None:
        from model_core.inference import load_model

        predictor_factory = load_model

    # Cheap, most error-prone inputs first: the measured file, then the structure.
    measured = read_measured_file(args.measured, args.group, getattr(args, "columns", None))
    try:
        norm = normalize(measured.energy_ev, measured.mu)
    except NormalizationError as exc:
        raise CliError(f"{args.measured}: {exc}") from exc
    structure = read_structure(args.structure)

    selection = None
    if args.sites is not None:
        # Explicit sites are checked before a model is loaded, and name the element.
        selection = _select(structure, args, None)
        element = structure.symbols[int(selection.indices[0])]
    else:
        element = _absorbing_element(args, structure, measured)
    if args.model:
        predictor = predictor_factory(args.model, device=args.device)
    else:
        if element is None:
            raise CliError(f"{args.structure}: cannot tell the absorbing element; give --element or --model")
        predictor = predictor_factory(None, device=args.device, element=element)
    info = predictor.info
    if selection is None:
        if not args.element and info.element:
            element = info.element
        selection = _select(structure, args, element)
    prediction = predictor.predict(structure, selection)
    spectrum = prediction.average_spectrum()

    warnings = list(measured.warnings) + list(norm.warnings)
    if measured.element and info.element and measured.element != info.element:
        warnings.append(f"the measured file is a {measured.element} spectrum but model {info.name} "
                        f"predicts {info.element}")
    if not info.trained:
        warnings.append(f"model {info.name} is UNTRAINED: the prediction is not meaningful")
    window = None
    if args.window is not None:
        window = (norm.e0 + args.window[0], norm.e0 + args.window[1])
    try:
        result = compare(measured, norm, spectrum, mode="manual" if args.no_align else "auto",
                         shift_ev=args.shift, broaden_fwhm_ev=args.broaden, window=window)
    except ValueError as exc:
        raise CliError(f"{args.measured}: {exc}") from exc

    sites = [int(i) for i in prediction.site_indices]
    summary: dict[str, Any] = {
        "structure": str(args.structure),
        "measured": str(args.measured),
        "group": measured.group,
        "channel": measured.channel,
        "model": info.name,
        "trained": bool(info.trained),
        "element": prediction.element or info.element,
        "edge": prediction.edge or info.edge,
        "sites": sites,
        "weights": [float(w) for w in prediction.weights],
        "e0": result.e0,
        "edge_step": result.edge_step,
        "shift_ev": result.shift_ev,
        "alignment": result.mode,
        "e0_reference": result.e0_reference,
        "e0_predicted": result.e0_predicted_ev,
        "broaden_fwhm_ev": result.broaden_fwhm_ev,
        "window_ev": list(result.window),
        **{key: result.metrics[key] for key in ("mse", "pearson_r", "pearson_r_deriv", "cosine", "n_points")},
        "metrics": dict(result.metrics),
        "normalization": {k: v for k, v in vars(norm.params).items()},
        "warnings": warnings,
        "out": args.out,
    }
    if prediction.domain_score is not None:  # per site, in "sites" order; > 1: outside the domain
        summary["domain_score"] = [float(v) for v in prediction.domain_score]
        far = [site for site, v in zip(sites, prediction.domain_score) if v > 1]
        if far:
            warnings.append(f"site(s) {' '.join(map(str, far))} lie outside model {info.name}'s training "
                            "domain (domain_score > 1): the prediction is extrapolation")
    if args.fit:
        from model_core.interpret.fit import fit_comparison

        summary["fit"] = {**fit_comparison(norm, spectrum, result).to_dict(), "alignment": "free alignment"}
    metadata = {
        "structure": args.structure,
        "measured": args.measured + (f" (group {measured.group})" if measured.group else ""),
        "measured_channel": measured.channel,
        "model": info.name,
        "trained": "yes" if info.trained else "NO - untrained model, predictions are not meaningful",
        "absorbing_element": summary["element"],
        "sites": " ".join(map(str, sites)),
        "device": f"{getattr(info, 'device', '')} ({getattr(info, 'device_name', '')})",
    }
    if args.fit:
        metadata["fit"] = json.dumps(_json_safe(summary["fit"]["parameters"]))
    for k, warning in enumerate(warnings):
        metadata[f"warning_{k + 1}"] = warning
    if args.out:
        try:
            comparison_to_csv(result, args.out, metadata)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write ({exc.strerror or exc})") from exc
    elif not args.json:
        comparison_to_csv(result, stdout, metadata)
    if args.json:
        stdout.write(json.dumps(_json_safe(summary)) + "\n")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return summary


def main(argv: Sequence[str] | None = None, predictor_factory: PredictorFactory | None = None) -> int:
    """Entry point of ``xanes-compare``; returns 0, or exits with status 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(join_negative_values(argv, ("--window",)))
    require_paths([args.measured, args.structure])
    try:
        run_compare(args, predictor_factory)
    except (CliError, ValueError, OSError, IndexError) as exc:
        # MeasuredReadError, StructureReadError, ModelLoadError and
        # ElementMismatchError are ValueErrors whose messages already name the file.
        message = error_message(exc, [args.measured, args.structure])
        for path, kind in ((args.measured, "spectrum"), (args.structure, "structure")):
            if message.startswith(f"{path}: "):
                message += wrong_kind(path, kind)
                break
        if message.startswith(f"{args.measured}: ") and message.endswith("explicitly"):
            message += " with --columns (see --help)"
        fail(message)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
