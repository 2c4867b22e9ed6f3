"""First-principles XANES with FEFF10: input generation, running, and bookkeeping.

* :mod:`trainer.feff.inputs` -- ``feff.inp`` for one site from named presets
  (``reference`` reproduces the Cu FEFF 9.9.1 dataset; ``medium`` and ``fast`` trade accuracy for time).
* :mod:`trainer.feff.runner` -- runs FEFF10 (the ``feff10`` package) on many sites in a
  local process pool or through Parsl, resumable and cancellable, in the dataset's layout.
"""
