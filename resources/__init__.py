"""Shipped data: pretrained models with model cards, example structures, icons.

Installed as the package ``xanes_resources`` so that a plain ``pip install .``
finds them through :mod:`importlib.resources`.
"""
