"""From a spectrum to a local structure: retrieval, a conditional equivariant diffusion
model, and candidates ranked by the forward model's round-trip fit.

Public API: :func:`model_core.inverse.api.invert` -> tuple of :class:`Candidate`.
"""
