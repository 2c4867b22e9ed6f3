"""The science services the GUI calls, gathered in one replaceable object.

The GUI never computes anything scientific itself: it reads structures,
analyses symmetry, chooses sites and predicts spectra through the functions in
:class:`Backend`. :func:`default_backend` binds them to :mod:`model_core`;
tests pass a backend made of fakes. Every default function imports its
``model_core`` module *inside* the call, because those modules pull in
pymatgen, ASE or torch, which take seconds to import and must never delay the
main window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from model_core.types import SiteSymmetry, Spectrum, Structure


def _read_structure(path: str) -> Structure:
    from model_core.io import read_structure

    return read_structure(path)


def _format_filter() -> str:
    from model_core.formats import file_filter

    return file_filter("structure")


def _analyze_symmetry(structure: Structure) -> SiteSymmetry:
    from model_core.symmetry import analyze_symmetry

    return analyze_symmetry(structure)


def _coordination_info(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    from model_core.sites import coordination_info

    return coordination_info(structure)


def _list_models() -> list[Any]:
    from model_core import registry

    return registry.list_models()


def _model_for_element(element: str) -> Any:
    from model_core import registry

    return registry.model_for_element(element)


def _load_model(name_or_path: str, device: str = "auto") -> Any:
    from model_core.inference import load_model

    return load_model(name_or_path, device=device)


def _available_devices() -> list[tuple[str, str]]:
    from model_core.inference import available_devices

    return available_devices()


def _warm_up_spectra() -> None:
    # larch takes seconds to import and changes warnings/logging globally;
    # import_larch does it once and restores that state.
    from model_core.spectra.larch_compat import import_larch

    import_larch()


def _measured_filter() -> str:
    from model_core.formats import file_filter

    return file_filter("spectrum")


def _classify_file(path: str) -> str:
    """"structure" or "measured": which reader an opened or dropped file goes to.

    The registry in :mod:`model_core.formats` decides; a file it cannot place
    goes to the structure readers, whose message says what is wrong with it.
    """
    from model_core.formats import classify

    return "measured" if classify(path) == "spectrum" else "structure"


def _read_measured(path: str, group: str | None = None, columns: Any = None) -> Any:
    from model_core.spectra.measured import read_measured

    return read_measured(path, group=group, columns=columns)


def _list_athena_groups(path: str) -> list[str]:
    from model_core.spectra.measured import list_athena_groups

    return list_athena_groups(path)


def _detect_measured_format(path: str) -> str:
    from model_core.spectra.measured import detect_measured_format

    return detect_measured_format(path)


def _measured_columns(path: str) -> list[str]:
    """Column names of a column or XDI file, for the column chooser."""
    from model_core.spectra.measured import list_columns

    return list_columns(path)


def _inspect_columns(path: str, group: str | None = None) -> Any:
    """Columns of a spectrum file with the reader's guess, for the import preview."""
    from model_core.spectra.measured import inspect_columns

    return inspect_columns(path, group=group)


def _normalize(energy_ev: np.ndarray, mu: np.ndarray, params: Any = None) -> Any:
    from model_core.spectra.normalize import normalize

    return normalize(energy_ev, mu, params)


def _compare(measured: Any, norm: Any, spectrum: Any, **kwargs: Any) -> Any:
    from model_core.spectra.align import compare

    return compare(measured, norm, spectrum, **kwargs)


def _comparison_to_csv(result: Any, path: Any, metadata: Mapping[str, Any] | None = None) -> None:
    from model_core.spectra.align import comparison_to_csv

    comparison_to_csv(result, path, metadata)


def _feff_presets() -> dict[str, Any]:
    from model_core.feff.inputs import PRESETS

    return dict(PRESETS)


def _check_feff_available() -> str:
    from model_core.feff.process import check_feff_available

    return check_feff_available()


def _simulate_feff(structure: Structure, selection: Any, out_dir: str, preset: str, edge: str = "K", *,
                   workers: int = 1, progress: Callable[[int, int, str], None] | None = None,
                   cancel_event: threading.Event | None = None, symmetry: SiteSymmetry | None = None) -> Any:
    from model_core.feff.simulation import simulate

    return simulate(structure, selection, out_dir, preset, edge, workers=workers, progress=progress,
                    cancel_event=cancel_event, symmetry=symmetry)


def _read_feff_xmu(path: str) -> Any:
    from model_core.spectra.simulated import read_feff_xmu

    return read_feff_xmu(path)


def _fit_measured(norm: Any, curve: np.ndarray, spectrum: Any, comparison: Any, calibration: Any = None,
                  element: str = "") -> Any:
    """One fit of shift, broadening and scale of ``spectrum`` to the measured ``curve``.

    Without a calibration the shift is free (``fit_comparison``: "free alignment");
    with one the prediction is placed at its base plus the calibration shift, and the
    shift stays within the identify tolerance of it.
    """
    from model_core.interpret.fit import fit_comparison, fit_spectrum

    if calibration is None:
        return fit_comparison(norm, spectrum, comparison)
    from model_core.interpret.calibration import placement_base
    from model_core.interpret.identify import DEFAULT_SHIFT_TOLERANCE_EV

    base = placement_base(spectrum, element)[0]
    shift = calibration.shift_ev
    return fit_spectrum(norm.energy_ev, curve, spectrum.energy_ev, spectrum.mu, offset_ev=base,
                        shift_start_ev=shift, window=comparison.window,
                        shift_bounds_ev=(shift - DEFAULT_SHIFT_TOLERANCE_EV, shift + DEFAULT_SHIFT_TOLERANCE_EV))


def _calibrate_reference(predictor: Any, energy_ev: np.ndarray, mu: np.ndarray, element: str, *,
                         structure: Structure | None = None, reference: str = "") -> Any:
    from model_core.interpret.calibration import calibrate_from_reference

    return calibrate_from_reference(predictor, energy_ev, mu, element, structure=structure, reference=reference)


def _calibrate_tabulated(predictor: Any, element: str, measured_e0_ev: float | None = None) -> Any:
    from model_core.interpret.calibration import calibrate_tabulated

    return calibrate_tabulated(predictor, element, measured_e0_ev=measured_e0_ev)


def _predict_candidates(predictor: Any, paths: list[str], element: str, progress: Callable[[int, int], None],
                        library: str | None = None) -> tuple[list[Any], list[str]]:
    """Expand files/folders and predict each candidate; (candidates, one-line problems)."""
    from pathlib import Path

    from model_core.interpret.library import (CACHE_DIR, CandidateError, expand_paths, member_predictors,
                                              predict_candidate)

    jobs = [(p, None) for p in expand_paths(paths)]
    if library:
        jobs += [(p, Path(library) / CACHE_DIR) for p in expand_paths([library])]
    members = member_predictors(predictor)
    candidates, skipped = [], []
    for k, (path, cache) in enumerate(jobs):
        progress(k, len(jobs))
        try:
            candidates.append(predict_candidate(predictor, path, element, members=members, cache_dir=cache))
        except CandidateError as exc:
            skipped.append(" ".join(str(exc).split()))
    progress(len(jobs), len(jobs))
    return candidates, skipped


def _rank_candidates(energy_ev: np.ndarray, mu: np.ndarray, candidates: list[Any], calibration: Any, *,
                     element: str, window: tuple[float, float] | None = None) -> list[Any]:
    from model_core.interpret.identify import rank_candidates

    return rank_candidates(energy_ev, mu, candidates, calibration, element=element, window=window)


def _linear_combinations(energy_ev: np.ndarray, mu: np.ndarray, candidates: list[Any], calibration: Any,
                         max_components: int, *, element: str, window: tuple[float, float] | None = None,
                         start: Any = None) -> list[Any]:
    from model_core.interpret.lcf import MAX_LCF_CANDIDATES, linear_combinations

    return linear_combinations(energy_ev, mu, list(candidates)[:MAX_LCF_CANDIDATES], calibration, max_components,
                               element=element, window=window, start=start)


def _predict_distorted(predictor: Any, structure: Structure, sites: Any, weights: Any, shell_scales: Any = (),
                       strain: float = 0.0) -> Any:
    from model_core.interpret.refine import predict_distorted

    return predict_distorted(predictor, structure, sites, weights, shell_scales, strain)


def _broaden_preview(energy_rel_ev: np.ndarray, mu: np.ndarray, gaussian_fwhm_ev: float) -> np.ndarray:
    from model_core.spectra.align import broaden

    return broaden(energy_rel_ev, mu, gaussian_fwhm_ev, "gaussian") if gaussian_fwhm_ev > 0.05 else np.asarray(mu)


def _refine_structure(predictor: Any, structure: Structure, sites: Any, weights: Any, energy_ev: np.ndarray,
                      mu: np.ndarray, calibration: Any, *, element: str, params: Any,
                      window: tuple[float, float] | None = None) -> Any:
    from model_core.interpret.refine import refine_structure

    return refine_structure(predictor, structure, sites, weights, energy_ev, mu, calibration, element=element,
                            params=params, window=window)


def _placement_base(spectrum: Any, element: str) -> float:
    from model_core.interpret.calibration import placement_base

    return placement_base(spectrum, element)[0]


def _site_attribution(predictor: Any, structure: Structure, site: int,
                      window_ev: tuple[float, float] | None = None) -> Any:
    from model_core.trust.attribution import site_attribution

    return site_attribution(predictor, structure, site, window_ev)


def _infer_structure(path: str, element: str, n_samples: int, progress: Callable[[int, int], None], *,
                     group: str | None = None, model: Any = None, device: str = "cpu",
                     spectrum: Spectrum | None = None) -> dict[str, Any]:
    """``xanes-invert``'s path: the file on the inverse model's grid, then ``invert``.

    With ``spectrum`` (edge-relative and in FEFF's normalization: a FEFF10 run's or a
    prediction's) that spectrum goes on the grid instead and ``path`` only names it.
    ``progress`` is called after loading, reading and every step of ``invert`` (each
    diffusion step), so a raise there (Cancel) stops the run within a step.

    Returns ``{"model": InverseModel, "spectrum": GridSpectrum, "candidates": (Candidate, ...)}``,
    best first; pass ``model`` back to skip loading it again.
    """
    from model_core.inverse.api import invert, load_inverse
    from model_core.inverse.spectrum import read_spectrum_on_grid, spectrum_on_grid

    progress(0, 3)
    if model is None:
        model = load_inverse(element=element, device=device)
    progress(1, 3)
    if spectrum is None:
        # The model's element places an FDMNES file as its training targets were placed.
        on_grid = read_spectrum_on_grid(path, model.energy_ev, group=group,
                                        edge_offset_ev=model.library.edge_offset_ev, element=model.element)
    elif spectrum.energy_reference != "edge":
        raise ValueError(f"{path}: the spectrum is not on an edge-relative energy axis")
    else:
        on_grid = spectrum_on_grid(spectrum.energy_ev, spectrum.mu, model.energy_ev, source=path,
                                   label=spectrum.label or path,
                                   e0_ev=float("nan") if spectrum.zero_ev is None else spectrum.zero_ev,
                                   alignment="edge and FEFF normalization of the simulated spectrum")
    progress(2, 3)
    candidates = invert(on_grid, element, n_samples, model=model,
                        progress=lambda done, total: progress(2 + done, 2 + total))
    return {"model": model, "spectrum": on_grid, "candidates": tuple(candidates)}


def _warm_up() -> None:
    # Importing the inference module (torch, e3nn, torch_geometric) is the slow
    # part of the first prediction; doing it once in the start-up worker keeps
    # the first click on "Predict" responsive.
    import model_core.inference  # noqa: F401
    import model_core.registry  # noqa: F401


@dataclass(frozen=True)
class Backend:
    """Functions the GUI uses to do science; each may be slow and runs in a worker.

    Attributes:
        read_structure: path -> Structure (raises a ValueError naming the file).
        format_filter: () -> file-dialog filter string for structures.
        measured_filter: () -> file-dialog filter string for spectra.
        analyze_symmetry: Structure -> SiteSymmetry.
        coordination_info: Structure -> ((N,) coordination numbers, (N,) nearest distances).
        list_models: () -> registry entries (name, element, edge, trained, path, card).
        model_for_element: element -> registry entry or None.
        load_model: (name_or_path, device) -> Predictor.
        available_devices: () -> [(device string, human name)], best first.
        warm_up: imports the inference stack (called once in the start-up worker).
        warm_up_spectra: imports larch (called in a worker after the engine started).
        classify_file: path -> "structure" or "measured" (which reader a dropped file goes to).
        read_measured: (path, group=None, columns=ChannelChoice|None) -> MeasuredData.
        list_athena_groups: path -> names of the Athena groups holding mu(E).
        detect_measured_format: path -> "athena", "xdi", "pf9809", "feff", "fdmnes" or "columns".
        measured_columns: path -> column names of a column/XDI file (for the chooser).
        inspect_columns: (path, group=None) -> ColumnPreview (columns, guessed ChannelChoice, notes).
        normalize: (energy_ev, mu, NormParams|None) -> NormResult.
        compare: (measured, norm, Spectrum, **options) -> ComparisonResult.
        comparison_to_csv: (ComparisonResult, path, metadata) -> None.
        feff_presets: () -> {name: FeffPreset}.
        check_feff_available: () -> feff10 version (raises FeffUnavailableError).
        simulate_feff: (structure, selection, out_dir, preset, edge, *, workers, progress,
            cancel_event, symmetry) -> SimulationSummary.
        read_feff_xmu: path -> Spectrum (absolute energies, metadata energy_rel_ev).
        fit_measured: (norm, curve, Spectrum, ComparisonResult, Calibration|None, element) -> FitResult.
        calibrate_reference: (predictor, energy_ev, mu, element, *, structure, reference) -> Calibration.
        calibrate_tabulated: (predictor, element, measured_e0_ev) -> Calibration.
        predict_candidates: (predictor, paths, element, progress, library=None) -> (candidates, problems).
        rank_candidates: (energy_ev, mu, candidates, calibration, *, element, window) -> [RankedCandidate].
        linear_combinations: (energy_ev, mu, candidates, calibration, K, *, element, window, start) -> [LcfResult].
        predict_distorted: (predictor, structure, sites, weights, shell_scales, strain) -> Spectrum (edge).
        broaden_preview: (energy_rel_ev, mu, gaussian_fwhm_ev) -> broadened mu.
        refine_structure: (predictor, structure, sites, weights, energy_ev, mu, calibration, *, element,
            params, window) -> RefineResult.
        placement_base: (Spectrum, element) -> where its zero goes before the calibration shift, eV.
        site_attribution: (predictor, structure, site, window_ev=None) -> SiteAttribution
            (occlusion; one forward pass per neighbour: seconds).
        infer_structure: (path, element, n_samples, progress, *, group, model, device, spectrum) ->
            {"model", "spectrum" (GridSpectrum), "candidates" (Candidate, best first)}; ``spectrum``:
            an edge-relative simulated Spectrum inverted instead of the file ``path``.
    """

    read_structure: Callable[[str], Structure] = _read_structure
    format_filter: Callable[[], str] = _format_filter
    measured_filter: Callable[[], str] = _measured_filter
    analyze_symmetry: Callable[[Structure], SiteSymmetry] = _analyze_symmetry
    coordination_info: Callable[[Structure], tuple[np.ndarray, np.ndarray]] = _coordination_info
    list_models: Callable[[], list[Any]] = _list_models
    model_for_element: Callable[[str], Any] = _model_for_element
    load_model: Callable[..., Any] = _load_model
    available_devices: Callable[[], list[tuple[str, str]]] = _available_devices
    warm_up: Callable[[], None] = _warm_up
    warm_up_spectra: Callable[[], None] = _warm_up_spectra
    classify_file: Callable[[str], str] = _classify_file
    read_measured: Callable[..., Any] = _read_measured
    list_athena_groups: Callable[[str], list[str]] = _list_athena_groups
    detect_measured_format: Callable[[str], str] = _detect_measured_format
    measured_columns: Callable[[str], list[str]] = _measured_columns
    inspect_columns: Callable[..., Any] = _inspect_columns
    normalize: Callable[..., Any] = _normalize
    compare: Callable[..., Any] = _compare
    comparison_to_csv: Callable[..., None] = _comparison_to_csv
    feff_presets: Callable[[], dict[str, Any]] = _feff_presets
    check_feff_available: Callable[[], str] = _check_feff_available
    simulate_feff: Callable[..., Any] = _simulate_feff
    read_feff_xmu: Callable[[str], Any] = _read_feff_xmu
    fit_measured: Callable[..., Any] = _fit_measured
    calibrate_reference: Callable[..., Any] = _calibrate_reference
    calibrate_tabulated: Callable[..., Any] = _calibrate_tabulated
    predict_candidates: Callable[..., Any] = _predict_candidates
    rank_candidates: Callable[..., Any] = _rank_candidates
    linear_combinations: Callable[..., Any] = _linear_combinations
    predict_distorted: Callable[..., Any] = _predict_distorted
    broaden_preview: Callable[..., Any] = _broaden_preview
    refine_structure: Callable[..., Any] = _refine_structure
    placement_base: Callable[..., float] = _placement_base
    site_attribution: Callable[..., Any] = _site_attribution
    infer_structure: Callable[..., Any] = _infer_structure


def default_backend() -> Backend:
    """The backend bound to :mod:`model_core`."""
    return Backend()
