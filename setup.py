"""Package discovery for the folder layout of DESIGN.md.

The top-level folders (hw/, compiler/, sim/, ...) install as subpackages of ``qfab``:
``[tool.setuptools] package-dir`` in pyproject.toml maps each to its name there, and this
file adds every subpackage found under them, so a new subfolder with an ``__init__.py``
ships without editing a list (pyproject's own ``packages.find`` cannot rename folders).
"""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
PACKAGE_DIR = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"]


def discovered_packages(package_dir: dict[str, str]) -> list[str]:
    """Each mapped package and every package below its folder, named under the mapping."""
    names = []
    for name, folder in package_dir.items():
        names.append(name)
        names += [f"{name}.{sub}" for sub in find_packages(str(ROOT / folder))]
    return sorted(set(names))


setup(packages=discovered_packages(PACKAGE_DIR))
