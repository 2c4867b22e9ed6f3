"""Spectrum file readers and spectrum processing (no Qt).

Submodules (import them directly; this package imports nothing heavy):
    simulated: parsers for simulated spectra (FEFF ``xmu.dat``, FDMNES outputs).
    measured: :func:`~model_core.spectra.measured.read_measured` for XDI, Athena
        projects, column/CSV files, KEK-PF 9809 beamline files, FEFF and FDMNES
        outputs (one reader module per format family), with channel guessing,
        repairs, :func:`~model_core.spectra.measured.inspect_columns` for an
        import preview and :class:`~model_core.spectra.measured.MeasuredReadError`.
    normalize: edge-step normalization with larch's ``pre_edge``
        (:class:`~model_core.spectra.normalize.NormParams`, ``normalize``).
    align: broadening, derivative cross-correlation alignment, similarity metrics,
        ``compare`` of measured and predicted spectra and CSV export.
    absolute: :func:`~model_core.spectra.absolute.on_absolute_grid`, a prediction's sites
        at their own predicted E0 on one shared absolute grid, and their weighted average.
    larch_compat: ``import_larch`` without larch's global warnings/logging side effects.
"""
