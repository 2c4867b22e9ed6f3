"""One energy calibration per element, shared by every prediction of that element.

A prediction on edge-relative energies is placed on the absolute axis at

    E_abs = E_rel + base + shift_ev

where ``base`` is the prediction's own predicted E0 when the model has an E0 head, else
the tabulated K-edge energy of the element (the same for every compound, so relative
placements between compounds still come from the model alone), and ``shift_ev`` is
the element's calibration. Because every compound of the element gets the same
``shift_ev``, the chemical shifts between compounds that the model predicts (through
its E0) are kept instead of being aligned away.

Sources of a calibration:

* ``"reference"``: a spectrum measured with the sample (typically the metal foil)
  and its structure (``ase.build.bulk(element)`` unless given): the structure is
  predicted, and one fit (:func:`model_core.interpret.fit.fit_spectrum`) with a free
  shift, started from the derivative cross-correlation alignment, gives ``shift_ev``.
* ``"tabulated"``: the metal is predicted and placed at ``base``; ``shift_ev`` moves the
  maximum of its derivative (the convention measured foils are calibrated with) onto
  the tabulated edge energy (``xraydb.xray_edge``). This assumes the measured energy
  axis was calibrated the usual way (the foil's first inflection at the tabulated value).
* ``"none"``: ``shift_ev = 0``.

A free per-spectrum alignment is still available (``xanes-compare`` without ``--fit``,
or a fit with a free shift) and is labelled "free alignment" wherever it is used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from model_core.types import Spectrum, Structure

__all__ = ["Calibration", "calibrate_from_reference", "calibrate_tabulated", "placement_base",
           "metal_structure", "tabulated_edge_ev", "FREE_ALIGNMENT"]

#: The label of a shift fitted afresh for one spectrum.
FREE_ALIGNMENT = "free alignment"
_SOURCES = ("reference", "tabulated", "none")
# Upper end of the search for the derivative maximum of a predicted metal, eV relative
# to its placement: the rising edge, not the resonances above it.
_EDGE_SEARCH_HI_EV = 12.0


@dataclass(frozen=True)
class Calibration:
    """The energy shift of every prediction of one element (see module docstring).

    Attributes:
        element: absorbing element symbol.
        shift_ev: shift added after placing a prediction at its base, eV.
        source: "reference", "tabulated" or "none".
        reference: the reference file (source "reference"), else "".
        stderr_ev: standard error of ``shift_ev`` (NaN when not fitted).
        details: provenance: model, reference structure, tabulated edge, fitted
            broadening and metrics of the reference fit, ...
    """

    element: str
    shift_ev: float = 0.0
    source: str = "none"
    reference: str = ""
    stderr_ev: float = math.nan
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in _SOURCES:
            raise ValueError(f"calibration source must be one of {', '.join(_SOURCES)}, got {self.source!r}")
        if not math.isfinite(self.shift_ev):
            raise ValueError("the calibration shift must be finite")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN kept; callers map it to null)."""
        return {"element": self.element, "shift_ev": float(self.shift_ev), "stderr_ev": float(self.stderr_ev),
                "source": self.source, "reference": self.reference, "details": dict(self.details)}

    def header_items(self) -> list[tuple[str, str]]:
        """``(key, value)`` pairs for ``# key: value`` CSV header lines."""
        items = [("calibration_element", self.element), ("calibration_source", self.source),
                 ("calibration_shift_ev", f"{self.shift_ev:.3f}")]
        if math.isfinite(self.stderr_ev):
            items.append(("calibration_stderr_ev", f"{self.stderr_ev:.3f}"))
        if self.reference:
            items.append(("calibration_reference", self.reference))
        items.append(("calibration_details", json.dumps(_plain(dict(self.details)), sort_keys=True)))
        return items


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def tabulated_edge_ev(element: str, edge: str = "K") -> float:
    """Tabulated absorption edge energy (xraydb, shipped with xraylarch), eV."""
    import xraydb

    try:
        return float(xraydb.xray_edge(element, edge).energy)
    except Exception as exc:  # noqa: BLE001 - xraydb raises bare ValueErrors/KeyErrors
        raise ValueError(f"no tabulated {edge} edge for element {element!r}") from exc


def placement_base(spectrum: Spectrum, element: str, edge: str = "K") -> tuple[float, str]:
    """Where a prediction's zero goes before the calibration shift.

    Returns:
        ``(base_ev, how)``: the absolute energy of the prediction's grid zero and
        ``"model"`` (its predicted E0, or the fixed origin of an FDMNES-trained grid,
        :attr:`Spectrum.zero_ev`), or the tabulated edge energy and ``"tabulated"`` when
        the model predicts no E0.
    """
    zero = spectrum.zero_ev
    if zero is not None and math.isfinite(zero):
        return float(zero), "model"
    return tabulated_edge_ev(element, edge), "tabulated"


def metal_structure(element: str) -> Structure:
    """The element's metal as ASE builds it (``ase.build.bulk``)."""
    from ase.build import bulk

    from model_core.io.convert import from_ase

    try:
        atoms = bulk(element)
    except Exception as exc:  # noqa: BLE001 - ASE raises for elements without a reference state
        raise ValueError(f"ASE has no bulk structure for {element}; give the reference structure") from exc
    return from_ase(atoms, name=f"{element} metal (ase.build.bulk)")


def _predict_average(predictor: Any, structure: Structure, element: str) -> Spectrum:
    from model_core.sites import select_sites

    return predictor.predict(structure, select_sites(structure, element=element)).average_spectrum()


def calibrate_from_reference(predictor: Any, reference_energy_ev: np.ndarray, reference_mu: np.ndarray,
                             element: str, *, structure: Structure | None = None, reference: str = "",
                             window: tuple[float, float] | None = None) -> Calibration:
    """The calibration from a measured reference and its structure.

    Args:
        predictor: a :class:`~model_core.inference.Predictor` for ``element``.
        reference_energy_ev, reference_mu: (N,) the normalized (flattened) measured
            reference, absolute eV.
        element: the absorbing element.
        structure: the reference's structure; None builds the metal with ASE.
        reference: the reference file's name, recorded.
        window: absolute eV to fit over; None for the whole overlap.

    Raises:
        ValueError: no structure for the metal, or the spectra do not overlap.
    """
    from model_core.interpret.fit import fit_spectrum
    from model_core.spectra.align import auto_align

    structure = structure if structure is not None else metal_structure(element)
    spectrum = _predict_average(predictor, structure, element)
    base, how = placement_base(spectrum, element)
    start = auto_align(reference_energy_ev, reference_mu, spectrum.energy_ev + base, spectrum.mu,
                       window=window)
    result = fit_spectrum(reference_energy_ev, reference_mu, spectrum.energy_ev, spectrum.mu,
                          offset_ev=base, shift_start_ev=start, window=window)
    details = {
        "model": getattr(predictor.info, "name", ""), "structure": structure.source or structure.name,
        "placement": how, "base_ev": base, "alignment_start_ev": start,
        "broaden_fwhm_ev": result.broaden_fwhm_ev,
        "gaussian_fwhm_ev": result.parameters["gaussian_fwhm_ev"],
        "lorentzian_fwhm_ev": result.parameters["lorentzian_fwhm_ev"], "scale": result.scale,
        "metrics": dict(result.metrics_after), "tabulated_edge_ev": tabulated_edge_ev(element),
    }
    return Calibration(element=element, shift_ev=result.shift_ev, source="reference", reference=reference,
                       stderr_ev=result.stderr["shift_ev"], details=details)


def calibrate_tabulated(predictor: Any, element: str, *, measured_e0_ev: float | None = None) -> Calibration:
    """The calibration that puts the predicted metal's edge on the tabulated edge energy.

    Args:
        predictor: a predictor for ``element``.
        element: the absorbing element.
        measured_e0_ev: the sample's measured E0, recorded (its difference to the
            tabulated edge is the sample's apparent chemical shift plus any axis error).
    """
    spectrum = _predict_average(predictor, metal_structure(element), element)
    base, how = placement_base(spectrum, element)
    energy = np.asarray(spectrum.energy_ev)
    inside = energy <= _EDGE_SEARCH_HI_EV
    derivative = np.gradient(np.asarray(spectrum.mu), energy)
    inflection = float(energy[inside][np.argmax(derivative[inside])]) + base
    edge = tabulated_edge_ev(element)
    details = {"model": getattr(predictor.info, "name", ""), "structure": "ase.build.bulk",
               "placement": how, "base_ev": base, "predicted_inflection_ev": inflection,
               "tabulated_edge_ev": edge}
    if measured_e0_ev is not None:
        details["measured_e0_ev"] = float(measured_e0_ev)
        details["measured_e0_minus_tabulated_ev"] = float(measured_e0_ev) - edge
    return Calibration(element=element, shift_ev=edge - inflection, source="tabulated", details=details)
