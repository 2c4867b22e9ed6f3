"""Measured spectra and FEFF10 results as the GUI holds them, and the worker bodies that produce them.

Everything scientific (reading, normalizing, aligning, comparing, running FEFF)
is done by :mod:`model_core.spectra` and :mod:`model_core.feff` through the
:class:`~xanes_gui.backend.Backend`; this module only keeps the results in
frozen dataclasses and describes the jobs the parts of :mod:`xanes_gui.state`
send to workers.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from model_core.spectra.measured import ChannelChoice, MeasuredData, MeasuredReadError
from model_core.spectra.normalize import NormParams, NormResult
from model_core.types import SiteSelection, SiteSymmetry, Spectrum, Structure

#: Colours of measured spectra (dark, saturated; distinct from the site palette).
MEASURED_COLORS: tuple[tuple[int, int, int], ...] = (
    (200, 0, 90), (0, 120, 70), (110, 60, 180), (170, 95, 0), (0, 100, 160), (120, 120, 0))
#: Colours of FEFF10 curves (drawn dashed).
FEFF_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 150, 150), (180, 60, 160), (90, 140, 0), (200, 120, 40), (60, 90, 200))

#: Normalization parameters (the NormParams fields, in their order): saved in sessions, written to CSV.
NORM_FIELDS = tuple(f.name for f in fields(NormParams))


def column_signature(names: Sequence[str]) -> str:
    """Key under which a column choice is remembered: the column names, lower case, in order."""
    return "|".join(str(n).strip().lower() for n in names)


def choice_to_dict(choice: ChannelChoice | None) -> dict[str, Any] | None:
    """A ChannelChoice as JSON-able data (None stays None)."""
    if choice is None:
        return None
    return {"energy": choice.energy, "numerator": choice.numerator, "denominator": choice.denominator,
            "mode": choice.mode}


def choice_from_dict(data: Mapping[str, Any] | None) -> ChannelChoice | None:
    """Inverse of :func:`choice_to_dict`; None or bad data gives None."""
    if not data:
        return None
    try:
        return ChannelChoice(energy=data.get("energy") or None, numerator=data.get("numerator") or None,
                             denominator=data.get("denominator") or None, mode=str(data.get("mode") or "mu"))
    except (TypeError, ValueError, AttributeError):
        return None


def params_to_dict(params: NormParams) -> dict[str, Any]:
    """NormParams as JSON-able data (None = automatic)."""
    return {name: getattr(params, name) for name in NORM_FIELDS}


def params_from_dict(data: Mapping[str, Any] | None) -> NormParams:
    """Inverse of :func:`params_to_dict`; unknown or bad entries fall back to automatic."""
    params = NormParams()
    for name in NORM_FIELDS:
        value = (data or {}).get(name)
        if value is None:
            continue
        try:
            if name == "flatten":
                value = bool(value)
            elif name in ("nnorm", "nvict"):
                value = int(value)
            else:
                value = float(value)
        except (TypeError, ValueError):
            continue
        params = params.replace(**{name: value})
    return params


@dataclass(frozen=True, eq=False)
class MeasuredDoc:
    """One measured spectrum in the app.

    Attributes:
        id: stable id within the session ("m1", "m2", ...).
        data: the spectrum as read (absolute energies, raw mu).
        color: RGB colour of its curves and list swatch.
        params: the normalization parameters the user set (None fields = automatic).
        norm: the normalization (None until done, or when it failed).
        norm_error: why the normalization failed ("" when it did not).
        use_flat: show and compare the flattened (True) or the normalized spectrum.
        visible: drawn in the spectra panels.
        columns: the column choice made in the chooser (None: chosen by the reader).
        label: legend text (unique among measured spectra).
    """

    id: str
    data: MeasuredData
    color: tuple[int, int, int]
    label: str
    params: NormParams = field(default_factory=NormParams)
    norm: NormResult | None = None
    norm_error: str = ""
    use_flat: bool = True
    visible: bool = True
    columns: ChannelChoice | None = None

    @property
    def path(self) -> str:
        return self.data.source

    @property
    def curve(self) -> np.ndarray | None:
        """The normalized (or flattened) mu shown and compared, None without a normalization."""
        if self.norm is None:
            return None
        return self.norm.flat if self.use_flat else self.norm.norm


@dataclass(frozen=True)
class AlignSettings:
    """How the prediction is placed on the measured energy axis and compared.

    Attributes:
        shift_ev: shift added after placing the prediction at its E0 (eV); set by
            hand or by auto-align.
        broaden_fwhm_ev: FWHM of the broadening applied to the prediction (0 = none).
        broaden_kind: "gaussian" or "lorentzian".
        window: (lo, hi) absolute eV compared and aligned over; None = whole overlap.
        max_shift_ev: search range of auto-align (both signs).
    """

    shift_ev: float = 0.0
    broaden_fwhm_ev: float = 0.0
    broaden_kind: str = "gaussian"
    window: tuple[float, float] | None = None
    max_shift_ev: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return {"shift_ev": self.shift_ev, "broaden_fwhm_ev": self.broaden_fwhm_ev,
                "broaden_kind": self.broaden_kind, "window": list(self.window) if self.window else None,
                "max_shift_ev": self.max_shift_ev}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "AlignSettings":
        data = data or {}
        window = data.get("window")
        try:
            window = (float(window[0]), float(window[1])) if window else None
        except (TypeError, ValueError, IndexError):
            window = None
        kind = data.get("broaden_kind") if data.get("broaden_kind") in ("gaussian", "lorentzian") else "gaussian"
        try:
            return cls(shift_ev=float(data.get("shift_ev", 0.0) or 0.0),
                       broaden_fwhm_ev=max(0.0, float(data.get("broaden_fwhm_ev", 0.0) or 0.0)),
                       broaden_kind=kind, window=window,
                       max_shift_ev=float(data.get("max_shift_ev", 30.0) or 30.0))
        except (TypeError, ValueError):
            return cls()


# ---------------------------------------------------------------- worker bodies

def load_measured(backend: Any, path: str, group: str | None = None, columns: ChannelChoice | None = None,
                  memory: Mapping[str, ChannelChoice] | None = None) -> dict[str, Any]:
    """Worker body: read a measured file, or say which choice the user must make.

    Args:
        backend: the science services.
        path: the file.
        group: the Athena group (None: ask when the project has several).
        columns: an explicit column choice (None: the reader chooses, then a remembered choice).
        memory: remembered column choices by :func:`column_signature`.

    Returns:
        ``{"path", "data": MeasuredData, "columns": the explicit choice used or None}``, or
        ``{"path", "needs_group": [names]}``, or
        ``{"path", "needs_columns": [names], "message": why the reader could not choose}``.

    Raises:
        MeasuredReadError: the file cannot be read (message names the file).
    """
    kind = backend.detect_measured_format(path)
    if kind == "athena" and group is None:
        names = backend.list_athena_groups(path)
        if len(names) > 1:
            return {"path": path, "needs_group": list(names)}
        group = names[0]
    try:
        data = backend.read_measured(path, group=group, columns=columns)
        return {"path": path, "data": data, "columns": columns}
    except MeasuredReadError as exc:
        if columns is not None or kind not in ("columns", "xdi"):
            raise
        try:
            names = backend.measured_columns(path)
        except Exception:  # noqa: BLE001 - the reader's own message is the better one
            raise exc from None
        if len(names) < 2:
            raise
        remembered = (memory or {}).get(column_signature(names))
        if remembered is not None:
            try:
                data = backend.read_measured(path, columns=remembered)
            except MeasuredReadError:
                pass  # the remembered choice does not fit this file: ask
            else:
                return {"path": path, "data": data, "columns": remembered, "remembered": True}
        return {"path": path, "needs_columns": list(names), "message": str(exc)}


def compare_all(backend: Any, jobs: Sequence[tuple[str, MeasuredData, NormResult, bool]], target: Spectrum,
                align: AlignSettings) -> dict[str, Any]:
    """Worker body: compare every measured spectrum with the target spectrum at the current shift.

    Returns:
        measured id -> ComparisonResult, or the error message (str) of that comparison.
    """
    results: dict[str, Any] = {}
    for doc_id, data, norm, use_flat in jobs:
        try:
            results[doc_id] = backend.compare(
                data, norm, target, mode="manual", shift_ev=align.shift_ev, broaden_fwhm_ev=align.broaden_fwhm_ev,
                broaden_kind=align.broaden_kind, use_flat=use_flat, window=align.window)
        except ValueError as exc:
            results[doc_id] = str(exc)
    return results


def auto_align(backend: Any, data: MeasuredData, norm: NormResult, use_flat: bool, target: Spectrum,
               align: AlignSettings) -> float:
    """Worker body: the shift that aligns the target's dmu/dE with the measured one (eV).

    Starts from zero shift so repeated clicks give the same answer.
    """
    result = backend.compare(data, norm, target, mode="auto", shift_ev=0.0, broaden_fwhm_ev=align.broaden_fwhm_ev,
                             broaden_kind=align.broaden_kind, use_flat=use_flat, window=align.window,
                             max_shift=align.max_shift_ev)
    return float(result.shift_ev)


# ------------------------------------------------------------------------ FEFF

@dataclass(frozen=True, eq=False)
class FeffSite:
    """One FEFF10 run (a representative absorber).

    Attributes:
        site: absorber atom index.
        stands_for: every atom equivalent to it (its multiplicity is the length).
        run_dir: the run folder (holds feff.inp and, after success, xmu.dat).
        spectrum: FEFF's spectrum (absolute omega energies, metadata energy_rel_ev), None when missing.
        error: why there is no spectrum.
    """

    site: int
    stands_for: tuple[int, ...]
    run_dir: str
    spectrum: Spectrum | None = None
    error: str = ""


@dataclass(frozen=True, eq=False)
class FeffResult:
    """FEFF10 spectra of one structure with one preset.

    Attributes:
        preset: preset name.
        edge: absorption edge.
        structure_dir: the structure's output folder.
        sites: the runs, in selection order.
        average: multiplicity-weighted average of the successful sites (absolute
            energies; metadata energy_rel_ev), None with fewer than two.
        summary: the runner's description of what it did.
        cancelled: the run was cancelled (some sites may be missing).
    """

    preset: str
    edge: str
    structure_dir: str
    sites: tuple[FeffSite, ...]
    average: Spectrum | None = None
    summary: str = ""
    cancelled: bool = False

    @property
    def spectra(self) -> list[FeffSite]:
        return [s for s in self.sites if s.spectrum is not None]


def relative_energies(spectrum: Spectrum) -> np.ndarray:
    """Edge-relative energies of a FEFF spectrum (from its metadata, else omega - E0)."""
    rel = spectrum.metadata.get("energy_rel_ev") if spectrum.metadata else None
    if rel is not None and len(rel) == len(spectrum.energy_ev):
        return np.asarray(rel, dtype=float)
    return np.asarray(spectrum.energy_ev, dtype=float) - float(spectrum.e0_ev or 0.0)


def feff_average(sites: Sequence[FeffSite]) -> Spectrum | None:
    """Multiplicity-weighted mean of the site spectra on the first site's edge-relative grid.

    Each site has its own E0 (FEFF's edge energy differs per site), so the
    sites are averaged edge-relative, as the ML average is, and placed at the
    weighted mean E0; where a grid is shorter the last value is held (the
    presets share one grid, so in practice nothing is extrapolated).
    """
    good = [s for s in sites if s.spectrum is not None]
    if len(good) < 2:
        return None
    grid = relative_energies(good[0].spectrum)
    weights = np.array([len(s.stands_for) or 1 for s in good], dtype=float)
    mu = np.array([np.interp(grid, relative_energies(s.spectrum), s.spectrum.mu) for s in good])
    e0s = np.array([float(s.spectrum.e0_ev or 0.0) for s in good])
    e0 = float(np.average(e0s, weights=weights))
    return Spectrum(grid + e0, np.average(mu, axis=0, weights=weights), label="average",
                    energy_reference="absolute", e0_ev=e0,
                    metadata={"energy_rel_ev": tuple(grid.tolist()), "format": "feff-average"})


def read_feff_runs(backend: Any, runs: Sequence[tuple[int, Sequence[int], str]]) -> list[FeffSite]:
    """Read xmu.dat of each (site, stands_for, run_dir); missing or bad files become errors."""
    sites = []
    for site, stands_for, run_dir in runs:
        xmu = os.path.join(run_dir, "xmu.dat")
        if not os.path.isfile(xmu):
            log = os.path.join(run_dir, "feff.log")
            reason = "no xmu.dat" + (" (see feff.log)" if os.path.isfile(log) else "")
            sites.append(FeffSite(int(site), tuple(int(i) for i in stands_for), str(run_dir), None, reason))
            continue
        try:
            spectrum = backend.read_feff_xmu(xmu)
        except (ValueError, OSError) as exc:
            sites.append(FeffSite(int(site), tuple(int(i) for i in stands_for), str(run_dir), None, str(exc)))
            continue
        sites.append(FeffSite(int(site), tuple(int(i) for i in stands_for), str(run_dir), spectrum))
    return sites


class FeffNotAvailable(ValueError):
    """FEFF10 cannot run; the message says why and how to fix it (shown as is)."""


def check_feff(backend: Any) -> str:
    """Worker body: the feff10 version, or FeffNotAvailable with the runner's one clear message."""
    try:
        return str(backend.check_feff_available())
    except Exception as exc:  # noqa: BLE001 - a broken native extension raises anything
        raise FeffNotAvailable(" ".join(str(exc).split()) or type(exc).__name__) from exc


def run_feff(backend: Any, structure: Structure, selection: SiteSelection, symmetry: SiteSymmetry, out_dir: str,
             preset: str, edge: str, workers: int, cancel_event: threading.Event,
             progress: Callable[[int, int, str], None]) -> FeffResult:
    """Worker body: check FEFF10, simulate the selected sites, read the spectra.

    Raises:
        FeffUnavailableError: feff10 is missing or broken (one clear message).
    """
    check_feff(backend)
    summary = backend.simulate_feff(structure, selection, out_dir, preset, edge, workers=workers,
                                    progress=progress, cancel_event=cancel_event, symmetry=symmetry)
    failed = {str(path): reason for path, reason in summary.failed}
    runs = [(run.site, run.stands_for, str(run.run_dir)) for run in summary.runs]
    sites = []
    for site in read_feff_runs(backend, runs):
        if site.spectrum is None and site.run_dir in failed:
            site = FeffSite(site.site, site.stands_for, site.run_dir, None, failed[site.run_dir])
        sites.append(site)
    return FeffResult(preset=str(summary.preset), edge=str(summary.edge), structure_dir=str(summary.structure_dir),
                      sites=tuple(sites), average=feff_average(sites), summary=summary.describe(),
                      cancelled=bool(summary.cancelled) or cancel_event.is_set())


def load_feff_result(backend: Any, preset: str, edge: str, structure_dir: str,
                     runs: Sequence[tuple[int, Sequence[int], str]]) -> FeffResult:
    """Worker body: rebuild a FeffResult from run folders (session restore)."""
    sites = read_feff_runs(backend, runs)
    return FeffResult(preset=preset, edge=edge, structure_dir=structure_dir, sites=tuple(sites),
                      average=feff_average(sites), summary="restored from session")
