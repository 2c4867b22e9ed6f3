"""First-principles XANES with FEFF10 (the ``feff10`` package of feff10-rs), no Qt.

Used by ``xanes-simulate`` (:mod:`trainer.cli.simulate`) and by the app. Submodules
(import them directly; this package imports nothing):

* :mod:`~model_core.feff.inputs` -- ``feff.inp`` of one site from named presets
  (``reference`` reproduces the Cu FEFF 9.9.1 dataset; ``medium`` and ``fast`` trade
  accuracy for time).
* :mod:`~model_core.feff.simulation` -- :func:`~model_core.feff.simulation.simulate`:
  many sites of a structure in the dataset's layout, resumable and cancellable, and
  its :class:`~model_core.feff.simulation.SimulationSummary`.
* :mod:`~model_core.feff.executors` -- where the sites run: a local thread or process
  pool, or Parsl.
* :mod:`~model_core.feff.tasks` -- one site's picklable task, result and ``run_site``.
* :mod:`~model_core.feff.process` -- one FEFF run in a child process group: timeouts,
  cancellation, killing the whole tree; ``check_feff_available``.
* :mod:`~model_core.feff.xmu` -- checks that a run's ``xmu.dat`` is usable, on top of
  the one xmu.dat reader in :mod:`model_core.spectra.simulated`.
* :mod:`~model_core.feff.errors` -- the error types.
* ``_process`` -- the child's entry point, ``python -m model_core.feff._process``.
"""
