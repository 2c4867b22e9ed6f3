"""How far to trust a prediction: calibrated bands, domain scores, attributions.

* :mod:`model_core.trust.calibration`: per-energy-point split-conformal scaling of the
  ensemble members' spread into a central interval of stated coverage.
* :mod:`model_core.trust.e0`: split-conformal interval of the predicted edge energy E0,
  scaled by the members' E0 spread for an ensemble.
* :mod:`model_core.trust.domain`: distance of a site's learned embedding to the training
  embeddings, scaled so 95% of validation sites score <= 1.
* :mod:`model_core.trust.attribution`: occlusion attribution per neighbouring atom and
  attention relative to its uniform share.
"""
