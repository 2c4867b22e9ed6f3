"""``xanes-predict``: predict K-edge XANES of absorber sites from structure files.

Usage::

    xanes-predict INPUT [INPUT ...] [--element EL | --sites I,J,...]
                  [--model NAME_OR_PATH] [--device auto|cpu|cuda] [--out FILE.csv]
                  [--energy relative|absolute]
                  [--attribution FILE.json [--window-ev LO,HI]]

One INPUT gives a wide CSV (``energy_ev,site_<i>,...,average``); several INPUTs give a
tidy CSV (``source,site,element,energy_ev,mu``, plus rows with ``site`` = ``average``
holding each input's multiplicity-weighted average). Metadata lines start with ``#``.
Energies are in eV relative to the edge, or with ``--energy absolute`` absolute eV with
each site at its own predicted E0: the tidy CSV gives each site its own energies; the wide
CSV interpolates the sites to one absolute grid (the model grid's step) spanning the
intersection of their ranges, where the average is taken
(:func:`model_core.spectra.absolute.on_absolute_grid`). A model trained on FDMNES data
has energies relative to one fixed energy (the tabulated edge, 7112 eV for Fe; its E0 is
the Fermi level): its sites go on the absolute axis at that energy, as FDMNES put them,
and the ``energy_reference`` line names it. Symmetry-equivalent sites are
predicted once and their columns share that prediction.

An INPUT that cannot be used gives one ``error: INPUT: problem`` line on stderr (INPUT
as given; missing files are reported before the model stack is imported) and the
others are still predicted. Exit status: 0, 1 when some INPUT failed, 2 when all did.

Trust (models calibrated with ``xanes-calibrate``): the wide CSV appends the columns
``lo,hi`` (calibrated band of the average) and the lines ``# domain_score:`` and, when a
site scores > 1, ``# warning:``; the tidy CSV appends ``mu_lo,mu_hi`` and ``domain_score``.
Edge energies (models with an E0 head): the wide CSV gives ``# predicted_e0_ev:`` (the
weighted average), ``# site_e0_ev:`` (site=E0 pairs) and, for ensembles, the members'
standard deviations ``# predicted_e0_spread_ev:`` and ``# site_e0_spread_ev:``; a model
with an E0 calibration adds the calibrated intervals ``# predicted_e0_interval90_ev: LO,HI``
and ``# site_e0_interval90_ev:`` (site=LO,HI pairs; the number is the level in percent).
``--attribution`` writes the occlusion attribution of every predicted site (see
:mod:`model_core.trust.attribution`).
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from model_core.cli.common import (CliError, add_site_options, check_paths, error_message, fail, write_metadata,
                                   wrong_kind)


@dataclass(frozen=True)
class SiteResult:
    """Prediction of one input expanded to every requested site."""

    source: str
    site_indices: np.ndarray  # (S,) every requested site, input order
    spectra: np.ndarray  # (S, G) each site's spectrum (equivalent sites share one)
    rows: np.ndarray  # (S,) each site's row of prediction.mu
    average: np.ndarray  # (G,) multiplicity-weighted average
    element: str
    prediction: object  # model_core.types.Prediction of the representatives
    equivalences: dict[int, list[int]]  # representative -> the sites it stands for
    structure: object = None  # model_core.types.Structure that was read


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xanes-predict",
        description="Predict K-edge XANES spectra of absorber sites with a XANE(3) model.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="structure files: CIF, POSCAR, XYZ, extended XYZ, feff.inp, PDB, ...")
    add_site_options(parser)
    parser.add_argument("--model", help="shipped model name or checkpoint path (default: by element)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--out", help="write CSV here instead of stdout")
    parser.add_argument("--energy", choices=("relative", "absolute"), default="relative",
                        help="relative: E - E0 (default); absolute: each site at its own predicted E0")
    parser.add_argument("--attribution", metavar="FILE.json",
                        help="also write each site's occlusion attribution per neighbouring atom here")
    parser.add_argument("--window-ev", type=_window, metavar="LO,HI",
                        help="energy window of --attribution, eV relative to the edge (default: the whole grid)")
    return parser


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--window-ev expects LO,HI in eV, got {text!r}") from exc
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"--window-ev: LO must be below HI, got {text!r}")
    return lo, hi


def choose_element(structure, args, model_element: str | None) -> str:
    """The absorbing element: --element, else the model's, else the file's absorber."""
    from model_core.types import element_symbol

    if args.element:
        return args.element
    if model_element:
        return model_element
    if structure.absorber_index is not None:
        return element_symbol(structure.atomic_numbers[structure.absorber_index])
    from model_core import registry

    for entry in registry.list_models():
        if entry.element in structure.elements:
            return entry.element
    raise CliError(f"{structure.source}: no shipped model for any element in {structure.formula}; "
                   "give --model")


def select(structure, args, element: str):
    """Representative sites with weights, and the expansion to every requested site."""
    from model_core.sites import select_sites
    from model_core.symmetry import analyze_symmetry

    if args.sites is not None:
        selection = select_sites(structure, sites=args.sites)
        return selection, {int(i): [int(i)] for i in selection.indices}
    if args.element is None and structure.absorber_index is not None \
            and structure.symbols[structure.absorber_index] == element:
        # A FEFF cluster names its absorber; the other atoms of that element sit near the
        # cluster's edge with truncated environments, so they are not predicted by default.
        selection = select_sites(structure, sites=[structure.absorber_index])
        return selection, {structure.absorber_index: [structure.absorber_index]}
    symmetry = analyze_symmetry(structure)
    selection = select_sites(structure, element=element, symmetry=symmetry)
    all_sites = structure.indices_of(element)
    rep_of_group = {int(symmetry.group[r]): int(r) for r in selection.indices}
    equivalences: dict[int, list[int]] = {int(r): [] for r in selection.indices}
    for i in all_sites:
        equivalences[rep_of_group[int(symmetry.group[i])]].append(int(i))
    return selection, equivalences


class ModelCache:
    """Load each model once, even when many inputs use it."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._loaded: dict[str, object] = {}

    def get(self, name: str | None, element: str | None):
        from model_core.inference import load_model, resolve_model_path

        _, path, _ = resolve_model_path(name, element)
        if path not in self._loaded:
            self._loaded[path] = load_model(path, device=self.device)
        return self._loaded[path]


def predict_one(source: str, args, models: ModelCache) -> tuple[SiteResult, object]:
    from model_core.io import read_structure

    structure = read_structure(source)
    predictor = models.get(args.model, None) if args.model else None
    element = choose_element(structure, args, predictor.info.element if predictor else None)
    if predictor is None:
        predictor = models.get(None, element)
    if args.energy == "absolute" and not predictor.info.has_e0:
        fail(f"model {predictor.info.name} predicts no edge energy (no E0 head); use --energy relative")
    if element not in structure.elements and args.sites is None:
        raise CliError(f"{source}: no {element} atoms in {structure.formula}")
    selection, equivalences = select(structure, args, element)
    prediction = predictor.predict(structure, selection)
    row_of_rep = {int(r): k for k, r in enumerate(prediction.site_indices)}
    sites = sorted(i for members in equivalences.values() for i in members)
    rep_of_site = {i: rep for rep, members in equivalences.items() for i in members}
    rows = np.array([row_of_rep[rep_of_site[i]] for i in sites])
    result = SiteResult(source=source, site_indices=np.array(sites), spectra=prediction.mu[rows], rows=rows,
                        average=prediction.average, element=element, prediction=prediction,
                        equivalences=equivalences, structure=structure)
    return result, predictor


def _fmt(values: np.ndarray) -> list[str]:
    return [f"{v:.6g}" for v in values]


ENERGY_REFERENCE = {"relative": "eV relative to the edge (E - E0)",
                    "absolute": "absolute eV, each site at its own predicted E0"}


def energy_reference(energy: str, origin_ev: float | None) -> str:
    """The ``energy_reference`` text for a model whose grid is relative to each site's E0
    (``origin_ev`` None, FEFF) or to one fixed energy (FDMNES's tabulated edge)."""
    if origin_ev is None:
        return ENERGY_REFERENCE[energy]
    if energy == "relative":
        return (f"eV relative to the edge (E - {origin_ev:.1f} eV, the tabulated edge the model's "
                "training energies were given against; site_e0_ev is the predicted Fermi-level E0)")
    return f"absolute eV: the model grid + {origin_ev:.1f} eV (the tabulated edge it was trained against)"


def write_wide(stream, result: SiteResult, predictor, energy: str = "relative") -> None:
    info = predictor.info
    pred = result.prediction
    grid, spectra, average = pred.energy_ev, result.spectra, result.average
    spread, band = pred.average_spread, pred.average_band
    if energy == "absolute":
        from model_core.spectra.absolute import on_absolute_grid

        placed = on_absolute_grid(pred)
        grid, spectra, average = placed.energy_ev, placed.mu[result.rows], placed.average
        spread, band = placed.spread, placed.band
    meta = [
        ("model", info.name),
        ("trained", "yes" if info.trained else "NO - untrained model, predictions are not meaningful"),
        ("absorbing_element", result.element),
        ("edge", info.edge),
        ("energy_reference", energy_reference(energy, pred.grid_origin_ev)
         + ("; sites interpolated to one grid spanning the overlap of their ranges"
            if energy == "absolute" and pred.grid_origin_ev is None else "")),
        ("device", f"{info.device} ({info.device_name})"),
        ("source", result.source),
        ("sites", " ".join(map(str, result.site_indices))),
    ]
    if any(len(m) > 1 for m in result.equivalences.values()):
        groups = ["=".join(map(str, m)) for m in result.equivalences.values()]
        meta.append(("symmetry_equivalent_sites", " ".join(groups)))
    if pred.e0_ev is not None:
        meta.append(("predicted_e0_ev", f"{pred.average_e0_ev:.2f}"))
        meta.extend(_e0_lines(result))
    if spread is not None:
        meta.append(("ensemble_members", f"{info.n_members}; column 'spread' is the weighted "
                                         "mean over sites of the members' standard deviation"))
    if band is not None:
        meta.append(("band", f"columns 'lo','hi': calibrated {pred.band.label} of the average "
                             f"({pred.band.method}; the weighted mean of the sites' bounds)"))
    elif spread is not None:
        meta.append(("band", "none: the members' spread is uncalibrated (run xanes-calibrate)"))
    meta.extend(_domain_lines(result))
    write_metadata(stream, meta)
    header = ["energy_ev", *[f"site_{i}" for i in result.site_indices], "average"]
    header += (["spread"] if spread is not None else []) + (["lo", "hi"] if band is not None else [])
    stream.write(",".join(header) + "\n")
    for g, e in enumerate(grid):
        row = [f"{e:.4f}", *_fmt(spectra[:, g]), f"{average[g]:.6g}"]
        if spread is not None:
            row.append(f"{spread[g]:.3g}")
        if band is not None:
            row += [f"{band[0][g]:.6g}", f"{band[1][g]:.6g}"]
        stream.write(",".join(row) + "\n")


def _e0_lines(result: SiteResult) -> list[tuple[str, str]]:
    """The E0 interval and members' spread of the average, then each site's E0, interval and
    spread as site=value pairs (``predicted_e0_ev`` itself is written by the caller)."""
    pred = result.prediction
    rows = list(zip(result.site_indices, result.rows))
    lines = []
    interval = pred.average_e0_interval_ev
    name = "" if pred.e0_band is None else f"interval{100 * pred.e0_band.level:.0f}"
    if interval is not None:
        lines.append((f"predicted_e0_{name}_ev", f"{interval[0]:.2f},{interval[1]:.2f}"))
    else:
        lines.append(("e0_interval", "none: the edge energy is uncalibrated (run xanes-calibrate)"))
    if pred.average_e0_spread_ev is not None:
        lines.append(("predicted_e0_spread_ev", f"{pred.average_e0_spread_ev:.2f}"))
    lines.append(("site_e0_ev", " ".join(f"{site}={pred.e0_ev[row]:.2f}" for site, row in rows)
                  + " (predicted absolute edge energy of each site)"))
    if interval is not None:
        lines.append((f"site_e0_{name}_ev",
                      " ".join(f"{site}={pred.e0_lo_ev[row]:.2f},{pred.e0_hi_ev[row]:.2f}" for site, row in rows)
                      + f" (calibrated {100 * pred.e0_band.level:.0f}% interval of each site's E0: "
                        f"{pred.e0_band.method}; predicted_e0_{name}_ev is the weighted mean of these bounds)"))
    if pred.e0_spread_ev is not None:
        lines.append(("site_e0_spread_ev", " ".join(f"{site}={pred.e0_spread_ev[row]:.2f}" for site, row in rows)
                      + " (members' standard deviation of each site's E0)"))
    return lines


def _domain_lines(result: SiteResult) -> list[tuple[str, str]]:
    """``domain_score`` (site=score pairs) and, when a site scores > 1, a ``warning``."""
    score = result.prediction.domain_score
    if score is None:
        return []
    pairs = [(int(site), float(score[row])) for site, row in zip(result.site_indices, result.rows)]
    lines = [("domain_score", " ".join(f"{site}={value:.2f}" for site, value in pairs)
              + " (distance to the training data; 95% of validation sites <= 1)")]
    far = [site for site, value in pairs if value > 1]
    if far:
        lines.append(("warning", f"site(s) {' '.join(map(str, far))} lie outside the model's training "
                                 "domain (domain_score > 1): treat their spectra as extrapolation"))
    return lines


def write_tidy(stream, results: list[tuple[SiteResult, object]], energy: str = "relative") -> None:
    models = sorted({f"{p.info.name} ({'trained' if p.info.trained else 'UNTRAINED'})" for _, p in results})
    devices = sorted({f"{p.info.device} ({p.info.device_name})" for _, p in results})
    write_metadata(stream, [
        ("models", "; ".join(models)),
        ("energy_reference", "; ".join(dict.fromkeys(energy_reference(energy, r.prediction.grid_origin_ev)
                                                     for r, _ in results))
         + ("; site 'average' on the grid of the wide CSV" if energy == "absolute" else "")),
        ("device", "; ".join(devices)),
        ("rows", "one per (source, site, energy); site 'average' is the multiplicity-weighted mean"),
        *([("trust_columns", "mu_lo,mu_hi: calibrated central interval (level in each model's card; "
                             "90% by default); domain_score: distance to the training data, > 1 outside "
                             "the model's domain (empty on 'average' rows)")]
          if any(r.prediction.mu_lo is not None or r.prediction.domain_score is not None
                 for r, _ in results) else []),
    ])
    # Trust columns appear when any input has them; empty where one input's model has none.
    with_band = any(r.prediction.mu_lo is not None for r, _ in results)
    with_domain = any(r.prediction.domain_score is not None for r, _ in results)
    stream.write("source,site,element,energy_ev,mu" + (",mu_lo,mu_hi" if with_band else "")
                 + (",domain_score" if with_domain else "") + "\n")
    for result, _ in results:
        pred = result.prediction
        grid = pred.energy_ev
        source = result.source.replace(",", "_")
        empty = np.full(len(energy), np.nan)
        for k, site in enumerate(result.site_indices):
            row = int(result.rows[k])
            lo = empty if pred.mu_lo is None else pred.mu_lo[row]
            hi = empty if pred.mu_hi is None else pred.mu_hi[row]
            score = "" if pred.domain_score is None else f"{pred.domain_score[row]:.3f}"
            own = grid + (pred.site_zero_ev[row] if energy == "absolute" else 0.0)
            for g, (e, mu) in enumerate(zip(own, result.spectra[k])):
                stream.write(f"{source},{site},{result.element},{e:.4f},{mu:.6g}"
                             + (f",{_cell(lo[g])},{_cell(hi[g])}" if with_band else "")
                             + (f",{score}" if with_domain else "") + "\n")
        average, band = result.average, pred.average_band
        if energy == "absolute":
            from model_core.spectra.absolute import on_absolute_grid

            placed = on_absolute_grid(pred)
            grid, average, band = placed.energy_ev, placed.average, placed.band
        band = band or (np.full(len(grid), np.nan),) * 2
        for g, (e, mu) in enumerate(zip(grid, average)):
            stream.write(f"{source},average,{result.element},{e:.4f},{mu:.6g}"
                         + (f",{_cell(band[0][g])},{_cell(band[1][g])}" if with_band else "")
                         + ("," if with_domain else "") + "\n")


def _cell(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.6g}"


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sites is not None and len(args.inputs) > 1:
        parser.error("--sites is allowed with one INPUT only")
    missing = check_paths(args.inputs)
    for problem in missing:
        print(f"error: {problem}", file=sys.stderr)
    sources = [source for source in args.inputs if not check_paths([source])]
    if not sources:
        return 2
    from tqdm import tqdm

    from model_core.inference import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as exc:
        fail(str(exc))
    models = ModelCache(args.device)
    results: list[tuple[SiteResult, object]] = []
    failures = len(missing)
    for source in tqdm(sources, desc="predicting", unit="file", file=sys.stderr,
                       disable=None if len(sources) > 3 else True):
        try:
            results.append(predict_one(source, args, models))
        except (CliError, ValueError, IndexError, OSError) as exc:
            failures += 1
            message = error_message(exc, [source])
            if not message.startswith(f"{source}: "):
                message = f"{source}: {message}"
            print(f"error: {message}{wrong_kind(source, 'structure')}", file=sys.stderr)
    if not results:
        return 2
    buffer = io.StringIO()
    if len(args.inputs) == 1:
        write_wide(buffer, *results[0], energy=args.energy)
    else:
        write_tidy(buffer, results, energy=args.energy)
    if args.attribution:
        from model_core.trust.attribution import write_attribution_json

        try:
            write_attribution_json(args.attribution, [(r.source, r.structure, r.prediction, p) for r, p in results],
                                   window_ev=args.window_ev)
        except OSError as exc:
            fail(f"{args.attribution}: cannot write ({exc.strerror or exc})")
    if args.out:
        try:
            Path(args.out).write_text(buffer.getvalue(), encoding="utf-8")
        except OSError as exc:
            fail(f"{args.out}: cannot write ({exc.strerror or exc})")
    else:
        sys.stdout.write(buffer.getvalue())
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    raise SystemExit(run(argv))


if __name__ == "__main__":
    main()
