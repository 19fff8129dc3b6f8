"""The editable install `make` builds: `import qfab` from the folder above a checkout named
qfab is the package, not the checkout folder as an empty namespace package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from qfab import editable

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(sysconfig.get_paths()["purelib"])
SETUPTOOLS_FILES = sorted(SITE.glob("__editable__*qfab*")) + sorted(
    SITE.glob("__editable___qfab_*_finder.py"))
WHAT_QFAB_IS = "import qfab; print(qfab.__file__, hasattr(qfab, 'compile'))"


def _venv_with(tmp_path: Path, ours: bool) -> Path:
    """A venv of its own holding this venv's editable install (setuptools' .pth and finder),
    with our .pth line or without it; the dependencies come from this venv."""
    venv = tmp_path / ("ours" if ours else "plain")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    for f in SETUPTOOLS_FILES:
        shutil.copy2(f, site / f.name)
    (site / "dependencies.pth").write_text(f"{SITE}\n")
    if ours:
        editable.install(site)
    return python


@pytest.mark.skipif(not SETUPTOOLS_FILES, reason="qfab is not installed in editable mode")
def test_import_qfab_above_a_checkout_named_qfab(tmp_path):
    above = tmp_path / "above"
    above.mkdir()
    (above / "qfab").symlink_to(ROOT)
    results = {}
    for ours in (False, True):
        python = _venv_with(tmp_path, ours)
        run = subprocess.run([python, "-c", WHAT_QFAB_IS], cwd=above, capture_output=True,
                             text=True, check=True)
        results[ours] = run.stdout.split()
    assert results[False] == ["None", "False"]  # setuptools alone: the namespace package
    assert results[True] == [str(ROOT / "qfab" / "__init__.py"), "True"]
