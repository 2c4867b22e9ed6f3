"""Package discovery only; all metadata lives in pyproject.toml.

The data folder ``resources/`` is installed as the package ``xanes_resources``
(a bare top-level ``resources`` package would clash in site-packages), which
static pyproject configuration cannot combine with automatic discovery.
"""

from setuptools import find_packages, setup

code_packages = find_packages(include=["xanes_gui*", "model_core*", "trainer*"])
setup(
    packages=[*code_packages, "xanes_resources"],
    package_dir={"xanes_resources": "resources"},
)
