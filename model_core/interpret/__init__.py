"""Interpreting a measured spectrum with predictions (no Qt).

Submodules (import them directly):
    calibration: one energy shift per element, from a measured reference (metal foil)
        or tabulated edge energies (:class:`~model_core.interpret.calibration.Calibration`).
    fit: one least-squares fit of shift, Gaussian/Lorentzian broadening, scale and an
        optional background (:func:`~model_core.interpret.fit.fit_spectrum`, ``FitResult``).
    identify: ranking candidate structures against a measured spectrum.
    lcf: linear combinations of predicted spectra.
    refine: refining a local structure through the differentiable model.
    library: cached predictions of candidate structures.
"""
