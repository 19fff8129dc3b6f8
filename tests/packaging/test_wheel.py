"""The wheel users install: every module and data file of the source tree is in it, and an
installed qfab co-simulates the built-in example bit-exact from a folder outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "setuptools"]["package-dir"]
BUILD_FILES = ("pyproject.toml", "setup.py", "README.md")


def _source_files() -> dict[str, Path]:
    """Each file of the packages' folders, by the path it must have inside the wheel."""
    files = {}
    for name, folder in PACKAGE_DIR.items():
        top = ROOT / folder
        for path in top.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                inside = "/".join(name.split(".") + list(path.relative_to(top).parts))
                files[inside] = path
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds (in an isolated build environment, as for a user) from a copy of
    the files the build reads, so the checkout gains no build/ or egg-info folder."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    for folder in set(PACKAGE_DIR.values()):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(src)], check=True, capture_output=True)
    (built,) = out.glob("qfab-*.whl")
    return built


def test_wheel_holds_every_source_file(wheel):
    with zipfile.ZipFile(wheel) as z:
        inside = {n for n in z.namelist() if ".dist-info/" not in n}
    missing = sorted(set(_source_files()) - inside)
    assert not missing, f"the wheel leaves out {missing}"


def test_installed_wheel_simulates_the_example_bit_exact(wheel, tmp_path):
    """A venv of its own holding the wheel, run from a folder outside the checkout. The
    dependencies come from this venv's site-packages (a .pth line) rather than a fresh
    install of about 900 MB: what is checked is the wheel's contents and entry point."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([python, "-c", "import qfab.compiler.frontend as m; print(m.__file__)"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(venv)
    digits = ROOT / "examples" / "digits"
    sim = subprocess.run([venv / "bin" / "qfab", "sim", digits / "digits_int8.onnx",
                          "--input", digits / "sample_images.npy"],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    assert sim.returncode == 0, sim.stderr
    assert "verdict: BIT-EXACT (80 output codes match the reference)" in sim.stdout
