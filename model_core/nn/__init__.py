"""XANE(3) network components (Grizzi et al., arXiv 2604.12140).

Modules: :mod:`radial` (basis and cutoff), :mod:`norm` (equivariant layer norm),
:mod:`blocks` (interaction block), :mod:`pooling` (absorber attention readout),
:mod:`readout` (spectrum / E0 heads), :mod:`model` (:class:`XANE3`).
"""

from model_core.nn.model import XANE3, count_parameters

__all__ = ["XANE3", "count_parameters"]
