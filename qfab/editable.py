"""Puts an editable install's finder first on ``sys.meta_path`` (``make`` runs this after
``pip install -e``).

setuptools' editable finder maps ``qfab.compiler`` to ``compiler/`` and so on, but it comes
after Python's path finder, which takes a folder named ``qfab`` without an ``__init__.py`` in
the current directory as a namespace package: Python started in the folder above a checkout
named qfab imported the checkout (``module 'qfab' has no attribute 'compile'``). A ``.pth``
line in site-packages, run at start-up after setuptools' own, moves the finder to the front;
it answers only for ``qfab`` and its subpackages."""

from __future__ import annotations

import sysconfig
from pathlib import Path

PTH_NAME = "qfab_editable_first.pth"
# One line, as site.py runs a .pth line that starts with "import". A stable sort keeps the
# order of every other finder.
PTH_LINE = ("import sys; sys.meta_path.sort(key=lambda finder: not getattr(finder, "
            "'__module__', '').startswith('__editable___qfab_'))\n")


def install(site_packages: str | Path | None = None) -> Path:
    """Write the .pth file into ``site_packages`` (this interpreter's by default)."""
    folder = Path(site_packages or sysconfig.get_paths()["purelib"])
    path = folder / PTH_NAME
    path.write_text(PTH_LINE)
    return path


if __name__ == "__main__":
    print(install())
